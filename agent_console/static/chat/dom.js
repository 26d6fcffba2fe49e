// Small DOM helpers for the workspace. Text only ever goes in through
// textContent (or attributes), never innerHTML: visitors' words are data.
import { lang } from "../i18n.js";

/**
 * @typedef {Record<string, string | number | boolean | null | undefined | EventListener>} Props
 * @typedef {Node | string | null | undefined | false} Child
 */

/**
 * Build an element: `el("button", {class: "x", type: "button", onclick: f}, "Send")`.
 * Keys starting with `on` add listeners; `class` and `text` are shortcuts; `true`
 * sets a boolean attribute, `false`/`null`/`undefined` leaves it out.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    } else if (key === "class") {
      node.className = String(value);
    } else if (key === "text") {
      node.textContent = String(value);
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

/** @param {Element} node @param {Child[]} children */
export function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

/** Replace an element's children. @param {Element} node @param {...Child} children */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** @param {string} id @returns {HTMLElement} */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from the page`);
  return node;
}

/** "3 s", "4 min", "2 h", "3 d": how long since `seconds` (Unix time). @param {number} seconds */
export function ago(seconds) {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** A duration in seconds as "45 s", "3 min 10 s", "1 h 5 min". @param {number} s */
export function duration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ""}`;
}

// In the page's language (<html lang>, agent_console/i18n.py).
const timeFormat = new Intl.DateTimeFormat(lang(), { hour: "2-digit", minute: "2-digit" });
const dateFormat = new Intl.DateTimeFormat(lang(), { dateStyle: "medium", timeStyle: "short" });

/** Clock time of a Unix timestamp. @param {number} seconds */
export const clock = (seconds) => timeFormat.format(new Date(seconds * 1000));

/** Date and time of a Unix timestamp. @param {number} seconds */
export const when = (seconds) => dateFormat.format(new Date(seconds * 1000));

/** Only http(s) URLs become links; anything else stays text. @param {string} url */
export function safeHref(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

// Avatars: an agent's uploaded picture (agent_console/avatars.py), else initials
// on a colour derived from the id, the same for everyone who looks. Decorative:
// the name is always written next to one (aria-hidden).

import { el } from "./dom.js";

/** @type {Map<string, string>} agent id -> URL of their picture */
const pictures = new Map();

/** Up to two letters: "Ann Smith" -> "AS" (agent_console/web.py `initials`). @param {string} name */
export function initials(name) {
  const words = name.split(/\s+/).filter((w) => /^[\p{L}\p{N}]/u.test(w));
  if (!words.length) return "?";
  return (words[0][0] + (words.length > 1 ? words[words.length - 1][0] : "")).toUpperCase();
}

/** A hue (0-359) from an id: 32-bit FNV-1a (agent_console/web.py `avatar_hue`). @param {string} seed */
export function hue(seed) {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 360;
}

/** @param {HTMLElement} node @param {string} name */
function draw(node, name) {
  const url = node.dataset.agent ? pictures.get(node.dataset.agent) : undefined;
  node.replaceChildren(url ? el("img", { src: url, alt: "" }) : initials(name));
  node.classList.toggle("initials", !url);
}

/**
 * An avatar: `kind` "agent" (the picture if they have one) or "visitor".
 * @param {"agent" | "visitor"} kind @param {string} id @param {string} name @param {string} [size] "sm" or "lg"
 */
export function avatar(kind, id, name, size = "") {
  const node = el("span", {
    class: `avatar${size ? ` avatar-${size}` : ""}`,
    "aria-hidden": "true",
    "data-agent": kind === "agent" ? id : null,
    "data-name": name,
    style: `--hue: ${hue(id)}`,
  });
  draw(node, name);
  return node;
}

/** The agents' pictures are known (or changed): redraw the avatars on the page. @param {{id: string, avatar?: string | null}[]} agents */
export function setPictures(agents) {
  pictures.clear();
  for (const a of agents) if (a.avatar) pictures.set(a.id, a.avatar);
  for (const node of document.querySelectorAll(".avatar[data-agent]")) {
    const span = /** @type {HTMLElement} */ (node);
    draw(span, span.dataset.name || "");
  }
}

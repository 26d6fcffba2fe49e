// Building DOM without HTML strings: text goes in as text nodes, never through
// innerHTML, so nothing a visitor, an agent or a shop string contains can
// become markup.

import { guard } from "../guard.js";
import { pageNonce } from "../nonce.js";

/**
 * An element with attributes (`class`, `aria-*`, `data-*`, ...) and children.
 * `false`/`null` attributes are left out; strings become text nodes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | boolean | null | undefined>} [attrs]
 * @param {(Node | string | null | undefined | false)[]} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child == null || child === false) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

/** Set an element's text only when it changed (keeps screen readers calm).
 * @param {Element} el @param {string} text */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Set or remove an attribute. @param {Element} el @param {string} name @param {string | null} value */
export function setAttr(el, name, value) {
  if (value == null) el.removeAttribute(name);
  else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

/**
 * Add a guarded event listener and return its removal.
 * @param {EventTarget} target @param {string} type @param {(event: any) => void} fn
 * @returns {() => void}
 */
export function listen(target, type, fn) {
  const safe = guard(fn);
  target.addEventListener(type, safe);
  return () => target.removeEventListener(type, safe);
}

/**
 * Add `css` to the styles of the shadow root `node` is in (or is) and return
 * its removal: a constructed sheet, which needs nothing of a CSP (no
 * 'unsafe-inline' styles), or in engines without those a <style> element
 * appended to `node`, with the page's nonce (nonce.js) for a `style-src`
 * policy of nonces.
 * @param {ShadowRoot | HTMLElement} node @param {string} css
 * @returns {() => void}
 */
export function addStyles(node, css) {
  const root = /** @type {ShadowRoot} */ (node.getRootNode());
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
    return () => {
      root.adoptedStyleSheets = root.adoptedStyleSheets.filter((s) => s !== sheet);
    };
  } catch {
    const style = h("style", {}, css);
    style.nonce = pageNonce();
    node.append(style);
    return () => style.remove();
  }
}

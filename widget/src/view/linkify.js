// Clickable links in message text, safely: the text is split into plain text
// nodes and <a> elements built with the DOM API; only http(s) URLs become
// links, opened in a new tab without access to this page (noopener) and
// without passing it as referrer.

const URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;

/**
 * Split `text` into strings and link descriptions.
 * @param {string} text
 * @returns {(string | {href: string, text: string})[]}
 */
export function tokenize(text) {
  /** @type {(string | {href: string, text: string})[]} */
  const out = [];
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let raw = match[0];
    const cut = raw.match(TRAILING);
    if (cut) raw = raw.slice(0, -cut[0].length);
    const start = match.index ?? 0;
    let href = "";
    try {
      const url = new URL(/^www\./i.test(raw) ? `https://${raw}` : raw);
      if (url.protocol === "http:" || url.protocol === "https:") href = url.href;
    } catch {
      // not a URL after all: leave as text
    }
    if (!href) continue;
    if (start > last) out.push(text.slice(last, start));
    out.push({ href, text: raw });
    last = start + raw.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/**
 * Nodes for a message body: text nodes and safe links.
 * @param {string} text
 * @param {string} newTab label appended for screen readers, e.g. "(opens in a new tab)"
 * @returns {Node[]}
 */
export function linkify(text, newTab) {
  return tokenize(text).map((part) => {
    if (typeof part === "string") return document.createTextNode(part);
    const a = document.createElement("a");
    a.href = part.href;
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow ugc";
    a.textContent = part.text;
    const hint = document.createElement("span");
    hint.className = "sr";
    hint.textContent = ` ${newTab}`;
    a.append(hint);
    return a;
  });
}

// The page's nonce for what the widget adds to it (docs/widget.md, "Content
// Security Policy"). The loader gives the chat bundle's script element the
// nonce of its own tag; every later script (the recorder, co-browsing) and any
// <style> fallback takes it from there. A bundle of its own (co-browsing) has
// its own copy of this module, so the nonce is read from the page, not kept.

/**
 * The nonce of the chat bundle's script element (the one with `data-site` and
 * `data-base`, added by the loader), or "" when the page gave none.
 * @returns {string}
 */
export function pageNonce() {
  const script = document.querySelector("script[data-site][data-base]");
  return (script instanceof HTMLScriptElement && script.nonce) || "";
}

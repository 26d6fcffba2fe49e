// Adding our other bundles (the recorder, co-browsing) to the page, each URL
// once: classic scripts from the chat server with their Subresource Integrity
// hash (crossorigin="anonymous": the server allows any origin) and the page's
// nonce (nonce.js), so they run under a strict Content-Security-Policy.

import { pageNonce } from "./nonce.js";

/** @type {Map<string, Promise<void>>} */
const added = new Map();

/**
 * Add the script at `src` unless it is already there; resolves once it ran,
 * rejects if it could not be loaded, or its bytes do not match `integrity`
 * (a later call tries again).
 * @param {string} src
 * @param {string} integrity its `sha384-...` hash (baked in at build time)
 * @returns {Promise<void>}
 */
export function loadScript(src, integrity) {
  let loaded = added.get(src);
  if (!loaded) {
    loaded = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.async = true;
      script.crossOrigin = "anonymous";
      script.integrity = integrity;
      script.nonce = pageNonce();
      script.src = src;
      script.onload = () => resolve();
      script.onerror = () => {
        added.delete(src);
        reject(new Error(`could not load ${src}`));
      };
      (document.head || document.documentElement).appendChild(script);
    });
    added.set(src, loaded);
  }
  return loaded;
}

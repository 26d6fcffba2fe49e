// Adding our other bundles (the recorder, co-browsing) to the page: classic
// scripts from the chat server, so no CORS is needed, each URL added once.

/** @type {Map<string, Promise<void>>} */
const added = new Map();

/**
 * Add the script at `src` unless it is already there; resolves once it ran,
 * rejects if it could not be loaded (a later call tries again).
 * @param {string} src
 * @returns {Promise<void>}
 */
export function loadScript(src) {
  let loaded = added.get(src);
  if (!loaded) {
    loaded = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.async = true;
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

// The chat bundle's entry. The loader (loader.js) added this script with the
// site key and its own URL in data attributes; read them and start.

import { guard, warn } from "./guard.js";
import { start } from "./widget.js";

guard(() => {
  const script = /** @type {HTMLScriptElement | null} */ (document.currentScript);
  const data = script?.dataset;
  if (!data?.site || !data.base) {
    warn("the chat bundle must be loaded by widget.js");
    return;
  }
  const w = /** @type {Record<string, any>} */ (/** @type {unknown} */ (window));
  if (w.__chatserverStarted) return; // the script tag was pasted twice
  w.__chatserverStarted = true;
  start({ site: data.site, base: data.base, dept: data.dept, consent: data.consent === "required", theme: data.theme });
})();

// Route changes of single-page apps: `history.pushState` / `replaceState`
// (wrapped) and `popstate` (back, forward, fragment links). The wrappers call
// the page's own functions first, with the same `this` and arguments, and
// return what they return, so the page sees no difference; our callback runs
// afterwards, on a timer (the app usually sets the new title just after the
// state change), guarded. Teardown puts the originals back unless someone
// wrapped them after us; then our wrapper stays in place but does nothing.

import { guard } from "./guard.js";
import { listen } from "./view/dom.js";

/**
 * @param {() => void} onChange called (at most once per tick) after a route change
 * @returns {() => void} teardown
 */
export function watchRoutes(onChange) {
  let live = true;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const changed = () => {
    if (!live || timer !== undefined) return;
    timer = setTimeout(guard(() => {
      timer = undefined;
      if (live) onChange();
    }), 0);
  };
  const h = /** @type {Record<string, any>} */ (/** @type {unknown} */ (history));
  const undo = ["pushState", "replaceState"].map((name) => {
    const original = h[name];
    if (typeof original !== "function") return () => {};
    /** @this {unknown} @param {unknown[]} args */
    const wrapper = function (...args) {
      const result = original.apply(this, args);
      guard(changed)();
      return result;
    };
    try {
      h[name] = wrapper;
    } catch {
      return () => {}; // a frozen History: popstate still works
    }
    return () => {
      if (h[name] === wrapper) h[name] = original;
    };
  });
  const stopPop = listen(window, "popstate", changed);
  return () => {
    live = false;
    clearTimeout(timer);
    stopPop();
    undo.forEach((u) => guard(u)());
  };
}

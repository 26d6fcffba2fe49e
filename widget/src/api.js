// The JS API: a command queue in `window.$chat` that works before the loader
// ran. The page (or the loader) makes `$chat` an array and pushes calls such as
// `["open"]` or `["on", "message", fn]`; once the chat bundle runs it runs the
// calls queued so far, in order, and replaces `push` on that same array so
// every later push runs at once. On teardown `push` is the array's own again,
// so calls queue up as before.

import { guard, warn } from "./guard.js";

/** @typedef {(name: string, args: unknown[]) => void} Run */

/**
 * @param {string} name the global's name (`$chat`)
 * @param {Run} run
 * @returns {() => void} teardown
 */
export function takeOver(name, run) {
  const w = /** @type {Record<string, any>} */ (/** @type {unknown} */ (window));
  /** @type {unknown[]} */
  const queue = Array.isArray(w[name]) ? w[name] : [];
  w[name] = queue;
  const one = guard((/** @type {unknown} */ call) => {
    if (!Array.isArray(call) || typeof call[0] !== "string") {
      warn(`${name}.push takes an array: ["command", ...arguments]`);
      return;
    }
    run(call[0], call.slice(1));
  });
  const earlier = queue.splice(0);
  Object.defineProperty(queue, "push", {
    configurable: true,
    writable: true,
    value: (/** @type {unknown[]} */ ...calls) => {
      calls.forEach(one);
      return queue.length;
    },
  });
  earlier.forEach(one);
  return () => {
    delete (/** @type {any} */ (queue)).push;
  };
}

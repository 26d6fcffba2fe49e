// Nothing the widget does may throw into the shop's page: every entry point
// (event listeners, timers, socket callbacks, the shop's own callbacks) runs
// through `guard`, which reports to the console as a warning instead.

/** Log a warning prefixed with the widget's name; never throws.
 * @param {...unknown} args */
export function warn(...args) {
  try {
    console.warn("chatserver:", ...args);
  } catch {
    // a page that replaced console.warn with something broken
  }
}

/**
 * Wrap `fn` so that an exception becomes a console warning.
 * @template {unknown[]} A
 * @template R
 * @param {(...args: A) => R} fn
 * @returns {(...args: A) => R | undefined}
 */
export function guard(fn) {
  return (...args) => {
    try {
      return fn(...args);
    } catch (err) {
      warn(err);
      return undefined;
    }
  };
}

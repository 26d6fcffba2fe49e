// What the page itself reports for the server's signals (recordings/signals.py,
// docs/recordings.md "Signals"): uncaught errors and unhandled rejections,
// requests to the page's own origin that failed (status 500 or more, or no
// answer), and form submissions (so a checkout form left half filled can be
// told from one that was sent). Part of the recorder bundle: nothing of this
// runs unless the tab records, so it follows the site's switch and consent.
//
// Privacy: an error's message has e-mail addresses and runs of digits masked
// and is cut at 300 characters; a request's URL loses its query and fragment;
// stack frames keep file, line and column.

import { guard } from "./guard.js";

const MESSAGE_LIMIT = 300;
const FRAMES = 10;

/** @param {string} text */
export function maskMessage(text) {
  return String(text)
    .replace(/[^\s@<>()"']+@[^\s@<>()"']+/g, (m) => "*".repeat(m.length))
    .replace(/\d{3,}/g, (m) => "*".repeat(m.length))
    .slice(0, MESSAGE_LIMIT);
}

/** A URL without its query and fragment. @param {string} url */
export function bare(url) {
  return String(url || "").split(/[?#]/)[0].slice(0, 2000);
}

/** @param {unknown} stack */
function frames(stack) {
  if (typeof stack !== "string") return [];
  return stack
    .split("\n")
    .slice(1, FRAMES + 1)
    .map((line) => line.trim().replace(/\?[^\s):]*/g, "").slice(0, 200))
    .filter(Boolean);
}

/** @param {string} url */
function sameOrigin(url) {
  try {
    return new URL(url, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

/**
 * Report the page's failures through `custom(tag, payload)` until the returned
 * function is called.
 * @param {(tag: string, payload: Record<string, unknown>) => void} custom
 */
export function watchFailures(custom) {
  const failed = (/** @type {string} */ method, /** @type {string} */ url, /** @type {number} */ status) => {
    if (sameOrigin(url)) custom("request", { method: method.toUpperCase().slice(0, 10), url: bare(url), status });
  };
  const onError = guard((/** @type {ErrorEvent} */ e) => {
    if (!e.message && !e.error) return; // a resource that failed to load, not a script error
    custom("error", { message: maskMessage(e.message || String(e.error)), source: bare(e.filename), frames: frames(e.error?.stack) });
  });
  const onRejection = guard((/** @type {PromiseRejectionEvent} */ e) => {
    const reason = e.reason;
    const message = reason instanceof Error ? reason.message : String(reason);
    custom("error", { message: maskMessage(`Unhandled rejection: ${message}`), source: "", frames: frames(reason?.stack) });
  });
  const onSubmit = guard(() => custom("submit", {}));
  addEventListener("error", onError);
  addEventListener("unhandledrejection", onRejection);
  document.addEventListener("submit", onSubmit, true);

  const realFetch = window.fetch;
  if (typeof realFetch === "function") {
    window.fetch = function (input, init) {
      const answer = realFetch.apply(this, /** @type {any} */ (arguments));
      guard(() => {
        const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
        const method = init?.method || (input instanceof Request ? input.method : "GET");
        answer.then(
          (r) => r.status >= 500 && failed(method, url, r.status),
          () => failed(method, url, 0),
        );
      })();
      return answer;
    };
  }
  const proto = XMLHttpRequest.prototype;
  const realOpen = proto.open;
  /** @type {WeakMap<XMLHttpRequest, [string, string]>} */
  const opened = new WeakMap();
  proto.open = /** @type {typeof proto.open} */ (function (/** @type {string} */ method, /** @type {string | URL} */ url) {
    opened.set(this, [method, String(url)]);
    this.addEventListener("loadend", guard(() => {
      const [m, u] = opened.get(this) || ["GET", ""];
      if (this.status >= 500 || this.status === 0) failed(m, u, this.status);
    }));
    return realOpen.apply(this, /** @type {any} */ (arguments));
  });

  return () => {
    removeEventListener("error", onError);
    removeEventListener("unhandledrejection", onRejection);
    document.removeEventListener("submit", onSubmit, true);
    if (typeof realFetch === "function") window.fetch = realFetch;
    proto.open = realOpen;
  };
}

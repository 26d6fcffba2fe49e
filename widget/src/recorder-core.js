// The recorder: rrweb's record() with our privacy defaults, page and click
// events for the server's index, and the uploader. It lives in its own bundle
// (recorder.<hash>.js), loaded by the chat bundle only when this tab records.
//
// Controllable for live use (co-browsing): `stop()`, `snapshot()` for a fresh
// full snapshot on demand, and `on(fn)` to receive every event as it is made.

import { record } from "@rrweb/record";
import { guard, warn } from "./guard.js";
import { BLOCK, MASK, describeClick, maskInput } from "./recorder-privacy.js";
import { watchFailures } from "./recorder-signals.js";
import { createUploader } from "./recorder-upload.js";
import { watchRoutes } from "./routes.js";
import { listen } from "./view/dom.js";

const CHECKOUT_EVERY = 5 * 60 * 1000; // a full snapshot this often too, for seeking

/**
 * @typedef {import("./recorder-upload.js").Transport} Transport
 * @typedef {import("./storage.js").KeyValue} KeyValue
 * @typedef {(event: Record<string, any>) => void} Listener
 */

/** Clicks anywhere, seen first (capture), even when the page stops them later.
 * @param {(target: EventTarget | null) => void} fn */
function clicks(fn) {
  const safe = guard((/** @type {Event} */ event) => fn(event.target));
  const options = { capture: true, passive: true };
  document.addEventListener("click", safe, options);
  return () => document.removeEventListener("click", safe, options);
}

/** Live use only (co-browsing on a site that does not record): nothing is kept or sent. */
const NO_UPLOAD = {
  session: "",
  add() {},
  now() {},
  reply() {},
  online() {},
  offline() {},
  leave() {},
  stop() {},
};

/**
 * Start recording this page.
 *
 * `upload: false` records for the `on` listeners only (co-browsing's live
 * mode): no uploader, no `rec` frames, nothing kept; `transport` and
 * `storage` are then not used. The privacy defaults are the same.
 * @param {{transport?: Transport, storage?: KeyValue, onStop?: (why: string) => void, upload?: boolean}} options
 */
export function createRecorder({ transport, storage, onStop, upload = true }) {
  /** @type {Set<Listener>} */
  const listeners = new Set();
  /** @type {(() => void) | undefined} */
  let stopRecord;
  let live = true;

  const custom = (/** @type {string} */ tag, /** @type {Record<string, unknown>} */ payload) => {
    if (live && stopRecord) record.addCustomEvent(tag, payload);
  };
  /** @type {number[]} */
  let recent = [];
  let recentSelector = "";
  /** Whether this click makes three on one element within a second. @param {string} selector */
  const burst = (selector) => {
    const now = Date.now();
    recent = selector === recentSelector ? [...recent.filter((t) => now - t <= 1000), now] : [now];
    recentSelector = selector;
    return recent.length >= 3;
  };
  const page = () => custom("page", { url: location.href.slice(0, 2000), title: document.title.slice(0, 300) });

  const uploader = !upload || !transport || !storage ? NO_UPLOAD : createUploader({
    transport,
    storage,
    onRestart: () => {
      if (!live || !stopRecord) return;
      record.takeFullSnapshot(true);
      page();
    },
    onGap: (dropped) => custom("gap", { dropped }),
    onStop: (why) => {
      warn(`recording stopped: ${why}`);
      api.stop();
      onStop?.(why);
    },
  });

  stopRecord = record({
    emit: guard((/** @type {any} */ event) => {
      if (!live) return;
      if (uploader !== NO_UPLOAD) uploader.add(JSON.stringify(event));
      for (const fn of listeners) guard(fn)(event);
    }),
    maskAllInputs: true,
    maskInputFn: maskInput,
    maskTextSelector: MASK,
    blockSelector: BLOCK,
    checkoutEveryNms: CHECKOUT_EVERY,
    sampling: { mousemove: 50, scroll: 150, media: 800, input: "last" },
    slimDOMOptions: { script: true, comment: true, headFavicon: true, headWhitespace: true },
    recordCanvas: false,
    collectFonts: false,
    inlineImages: false,
    errorHandler: () => true, // an rrweb failure must never reach the page
  }) || undefined;
  if (!stopRecord) {
    uploader.stop();
    throw new Error("rrweb did not start");
  }
  page();

  const teardown = [
    watchRoutes(page),
    clicks((target) => {
      const click = describeClick(target);
      if (!click) return;
      custom("click", click);
      if (burst(click.selector)) uploader.now(); // a rage click: the server should know now
    }),
    listen(window, "pagehide", () => uploader.leave()),
  ];
  if (upload) {
    // recorded only, not for co-browsing alone; sent at once, for the triggers
    teardown.push(watchFailures((tag, payload) => {
      custom(tag, payload);
      if (tag !== "submit") uploader.now();
    }));
  }

  const api = {
    /** The recording id this tab writes now. */
    get session() {
      return uploader.session;
    },
    /** A fresh full snapshot now (for a viewer that joins late). */
    snapshot() {
      if (live && stopRecord) record.takeFullSnapshot(true);
    },
    /** The page's node of an rrweb node id (what a viewer points at), if it is there. @param {number} id */
    node(id) {
      return live && stopRecord ? record.mirror.getNode(id) : null;
    },
    /** Every event as it is made, until the returned function is called. @param {Listener} fn */
    on(fn) {
      listeners.add(fn);
      return () => void listeners.delete(fn);
    },
    /** The server's answer to a `rec` frame. @param {Record<string, any>} frame */
    reply: (frame) => uploader.reply(frame),
    /** Send what waits now (the visitor wrote: the agents' rewind should hold it). */
    now: () => uploader.now(),
    online: () => uploader.online(),
    offline: () => uploader.offline(),
    stop() {
      if (!live) return;
      uploader.leave();
      live = false;
      teardown.forEach((undo) => guard(undo)());
      guard(() => stopRecord?.())();
      stopRecord = undefined;
      uploader.stop();
      listeners.clear();
    },
  };
  return api;
}

/** @typedef {ReturnType<typeof createRecorder>} Recorder */

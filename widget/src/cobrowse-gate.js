// Co-browsing, the chat bundle's side (docs/cobrowse.md). The visitor's side
// of co-browsing (cobrowse.js and view/cobrowse.js: the consent prompt, the
// stream, the banner, the agent's pointer and highlight) is its own small
// bundle, cobrowse.<hash>.js, which this gate adds only when the tab needs
// it: an agent's fresh request in the visitor's open conversation, or a
// co-browse this tab allowed on an earlier page (to resume it). Most visits
// never load it. rrweb (the recorder bundle) comes later still, once the
// visitor allows it: the prompt needs only this small bundle.

import { guard, warn } from "./guard.js";
import { loadScript } from "./script.js";

/** @typedef {import("./types.js").Entry} Entry */

const REQUEST_FRESH = 10 * 60; // s: an older unanswered request is not shown

/** The latest co-browse entry of `conv` among `entries`. @param {Entry[]} entries @param {string} conv */
export function latest(entries, conv) {
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i];
    if (e.conv === conv && e.kind === "event" && e.data?.event === "cobrowse") return e;
  }
  return null;
}

/** Whether `entry` is a request the visitor should still be asked. @param {Entry | null} entry */
export const askable = (entry) =>
  entry?.data?.state === "requested" && Date.now() / 1000 - entry.ts < REQUEST_FRESH;

/**
 * @param {{
 *   bundle: string,
 *   integrity: string,
 *   store: import("./store.js").Store,
 *   link: ReturnType<import("./client.js").createClient>["cobrowse"],
 *   session: import("./storage.js").KeyValue,
 *   live: (use: (r: import("./recorder-core.js").Recorder | null) => void) => () => void,
 *   addStrings: (tables: Record<string, Record<string, string>>) => void,
 * }} options `bundle`: the co-browse bundle's URL, `integrity` its SRI hash; the
 *   rest is for cobrowse.js
 */
export function createCobrowseGate(options) {
  const { bundle, integrity, store, session } = options;
  /** @type {import("./cobrowse.js").Cobrowse | null} */
  let cobrowse = null;
  /** @type {[HTMLElement, import("./cobrowse.js").Ctx] | null} where the UI is */
  let ui = null;
  let opened = false; // the bundle is loading, loaded or failed: asked once per page
  let stopped = false;

  const needed = () => {
    if (session.get("cobrowse")) return true; // allowed on an earlier page of this tab
    const { conv, entries } = store.get();
    return !!conv && conv.state !== "closed" && askable(latest(entries, conv.id));
  };
  const check = () => {
    if (opened || stopped || !needed()) return;
    opened = true;
    loadScript(bundle, integrity).then(
      guard(() => {
        const create = /** @type {any} */ (window).__chatserverCobrowse?.createCobrowse;
        if (stopped || !create) return;
        cobrowse = /** @type {import("./cobrowse.js").Cobrowse} */ (create(options));
        if (ui) cobrowse.mount(...ui);
      }),
      () => warn("could not load co-browsing from", bundle),
    );
  };
  const stopWatching = store.subscribe((s, prev) => {
    if (s.entries !== prev.entries || s.conv !== prev.conv) check();
  });

  return {
    /** The widget's UI is up (after welcome). @param {HTMLElement} box @param {import("./cobrowse.js").Ctx} ctx */
    mount(box, ctx) {
      ui = [box, ctx];
      if (cobrowse) cobrowse.mount(box, ctx);
      else check();
    },
    unmount() {
      ui = null;
      cobrowse?.unmount();
    },
    stop() {
      stopped = true;
      stopWatching();
      cobrowse?.stop();
    },
  };
}

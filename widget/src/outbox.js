// The visitor's messages the server has not stored yet. Each keeps its cid
// from the first try, so sending it again after a drop or a reload stores it
// once (protocol §7.4). Kept in the store (the views show them as "Sending…")
// and, while pending, in this tab's sessionStorage.

import { randomId } from "./ids.js";
import { guard } from "./guard.js";

/** @typedef {import("./types.js").Outgoing} Outgoing */
/** @typedef {import("./types.js").Entry} Entry */

/**
 * @param {{
 *   store: import("./store.js").Store,
 *   session: import("./storage.js").KeyValue,
 *   transmit: (item: Outgoing) => void,
 * }} options
 */
export function createOutbox({ store, session, transmit }) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  /** @param {(list: Outgoing[]) => Outgoing[]} change */
  const update = (change) => {
    const before = store.get().outbox;
    const outbox = change(before);
    if (outbox === before) return;
    store.set({ outbox });
    session.set("outbox", outbox.filter((o) => o.state === "pending"));
  };
  /** @param {string} cid @param {Outgoing["state"]} state */
  const mark = (cid, state) =>
    update((list) => (list.some((o) => o.cid === cid) ? list.map((o) => (o.cid === cid ? { ...o, state } : o)) : list));

  const flush = () => {
    clearTimeout(timer);
    for (const item of store.get().outbox) if (item.state === "pending") transmit(item);
  };

  // What this tab wrote before a reload and never saw stored goes out again.
  const saved = session.get("outbox");
  if (Array.isArray(saved)) {
    const items = saved.filter((o) => o && typeof o.cid === "string" && typeof o.body === "string");
    if (items.length) update(() => items.map((o) => ({ cid: o.cid, body: o.body, ts: Number(o.ts) || 0, state: "pending" })));
  }

  return {
    /** A new pending message. @param {string} body @returns {Outgoing} */
    add(body) {
      /** @type {Outgoing} */
      const item = { cid: randomId(), body, ts: Date.now() / 1000, state: "pending" };
      update((list) => [...list, item]);
      return item;
    },
    /** Send every pending message (again), same cid. */
    flush,
    /** Flush after `ms` (a temporary refusal: the server asked to retry later). @param {number} ms */
    later(ms) {
      clearTimeout(timer);
      timer = setTimeout(guard(flush), ms);
    },
    /** Stored (ack): no resend; shown until its entry arrives. @param {string} cid */
    acked: (/** @type {string} */ cid) => mark(cid, "sent"),
    /** Refused for good. @param {string} cid */
    failed: (/** @type {string} */ cid) => mark(cid, "failed"),
    /** Take a message out (to write it again). @param {string} cid @returns {Outgoing | undefined} */
    take(cid) {
      const item = store.get().outbox.find((o) => o.cid === cid);
      update((list) => list.filter((o) => o.cid !== cid));
      return item;
    },
    /** Drop the messages whose entries have arrived. @param {Entry[]} entries */
    settle(entries) {
      const stored = new Set(entries.filter((e) => e.cid && e.from.kind === "visitor").map((e) => e.cid));
      if (!stored.size) return;
      update((list) => (list.some((o) => stored.has(o.cid)) ? list.filter((o) => !stored.has(o.cid)) : list));
    },
    stop() {
      clearTimeout(timer);
    },
  };
}

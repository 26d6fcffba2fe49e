// Co-browsing, the visitor's side (docs/cobrowse.md): consent, the live
// stream of this page to the agent, and the agent's pointer and highlights.
//
// The conversation's co-browse state is its latest `cobrowse` event entry
// (requested, active, declined, ended), which this page holds like any
// other entry. A request shows the consent prompt; nothing of the page is
// recorded or sent before the visitor allows it (the recorder bundle is not
// even loaded). Allowing it makes this tab the streaming one: its consent
// ({conv, offset of the "active" entry}) is kept in sessionStorage, so the
// next page of the same tab resumes (the server checks that the co-browse
// is still the one allowed) with a fresh full snapshot, and a closed tab
// forgets it. Stop (here or by the agent) or a closed conversation ends it.
//
// This is the co-browse bundle (cobrowse-bundle.js), which the chat bundle
// adds once a request or an earlier page's consent needs it
// (cobrowse-gate.js), so it may start after the connection is up.

import { askable, latest } from "./cobrowse-gate.js";
import { guard } from "./guard.js";
import STRINGS from "./i18n/cobrowse.js";
import { mountCobrowseView } from "./view/cobrowse.js";

const FLUSH_EVERY = 50; // ms between stream frames
const WHOLE_BYTES = 60000; // a batch this small goes in one frame
const PART_CHARS = 16000; // else parts of this much JSON text (≤ 48 KB encoded)
const SNAPSHOT_EVERY = 1000; // ms: snapshot requests in between are folded

/**
 * @typedef {import("./types.js").Entry} Entry
 * @typedef {import("./recorder-core.js").Recorder} Recorder
 * @typedef {import("./view/cobrowse.js").CobrowseView} View
 * @typedef {{t: import("./i18n/index.js").Translate}} Ctx
 * @typedef {{conv: string, offset: number}} Consent
 */

/**
 * @param {{
 *   store: import("./store.js").Store,
 *   link: ReturnType<import("./client.js").createClient>["cobrowse"],
 *   session: import("./storage.js").KeyValue,
 *   live: (use: (r: Recorder | null) => void) => () => void,
 *   addStrings: (tables: Record<string, Record<string, string>>) => void,
 * }} options `live`: the recording's `live` (recording.js); `addStrings`: adds
 *   the prompt's and banner's strings (i18n/cobrowse.js) to the widget's languages
 */
export function createCobrowse({ store, link, session, live, addStrings }) {
  addStrings(STRINGS);
  /** @type {View | null} */
  let view = null;
  /** Offsets of requests this page answered (or dismissed). */
  const answered = new Set();
  /** @type {Consent | null} */
  let streaming = null; // the co-browse this tab streams now
  let resumed = false; // asked the server to resume on this connection
  /** @type {Recorder | null} */
  let recorder = null;
  /** @type {(() => void) | null} */
  let release = null;
  /** @type {(() => void) | null} */
  let unlisten = null;
  /** @type {string[]} */
  let pending = [];
  let pendingChars = 0;
  let seq = 0;
  let lastFlush = 0;
  let lastSnapshot = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let flushTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let snapshotTimer;
  let agentName = "";
  let promptFor = 0; // the offset of the request the prompt answers

  const consent = () => /** @type {Consent | null} */ (session.get("cobrowse"));

  const send = (/** @type {string} */ text) => link.sendText(text);
  const flush = () => {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    if (!streaming || !pending.length) return;
    lastFlush = Date.now();
    const text = `[${pending.join(",")}]`;
    pending = [];
    pendingChars = 0;
    const head = `{"t":"cobrowse_events","conv":${JSON.stringify(streaming.conv)},"seq":${seq++}`;
    if (text.length * 3 <= WHOLE_BYTES || new TextEncoder().encode(text).length <= WHOLE_BYTES) {
      send(`${head},"events":${text}}`);
      return;
    }
    const parts = Math.ceil(text.length / PART_CHARS);
    for (let part = 0; part < parts; part++) {
      const data = JSON.stringify(text.slice(part * PART_CHARS, (part + 1) * PART_CHARS));
      if (!send(`${head},"part":${part},"parts":${parts},"data":${data}}`)) return;
    }
  };
  /** One rrweb event from the recorder. @param {Record<string, any>} event */
  const add = (event) => {
    if (!streaming) return;
    const json = JSON.stringify(event);
    pending.push(json);
    pendingChars += json.length;
    if (pendingChars >= PART_CHARS) return flush();
    if (flushTimer === undefined) flushTimer = setTimeout(guard(flush), Math.max(0, lastFlush + FLUSH_EVERY - Date.now()));
  };
  const snapshot = () => {
    clearTimeout(snapshotTimer);
    const wait = lastSnapshot + SNAPSHOT_EVERY - Date.now();
    if (wait > 0) {
      snapshotTimer = setTimeout(guard(snapshot), wait);
      return;
    }
    lastSnapshot = Date.now();
    recorder?.snapshot();
  };

  /** Start streaming the co-browse this tab allowed. @param {Consent} allowed @param {string} name */
  const begin = (allowed, name) => {
    agentName = name;
    view?.banner(name, stopByVisitor);
    if (streaming && streaming.conv === allowed.conv && streaming.offset === allowed.offset) {
      snapshot(); // back after a drop: the viewer starts again from here
      return;
    }
    streaming = allowed;
    release = live((r) => {
      unlisten?.();
      unlisten = null;
      recorder = r;
      if (!r) return;
      unlisten = r.on(add);
      lastSnapshot = 0;
      snapshot(); // the first one, made before we listened, was not sent
    });
  };
  /** Stop streaming here (the server already knows, or is told by the caller). */
  const end = () => {
    if (streaming) session.remove("cobrowse");
    streaming = null;
    clearTimeout(flushTimer);
    clearTimeout(snapshotTimer);
    flushTimer = undefined;
    pending = [];
    pendingChars = 0;
    unlisten?.();
    unlisten = null;
    release?.();
    release = null;
    recorder = null;
    view?.hideBanner();
  };
  const stopByVisitor = () => {
    const conv = streaming?.conv;
    end();
    if (conv) link.request({ t: "cobrowse", conv, action: "stop" });
  };

  /** The conversation's entries changed: prompt, start or end. */
  const update = () => {
    const { conv, entries } = store.get();
    if (!conv) return;
    const entry = latest(entries, conv.id);
    const state = conv.state === "closed" ? "ended" : entry?.data?.state;
    const name = entry?.data?.agent?.name || "";
    // After the "active" entry of ours, any later co-browse entry means it is over.
    if (streaming && (streaming.conv !== conv.id || (entry && entry.offset > streaming.offset) || conv.state === "closed")) {
      end();
    }
    if (entry && state === "requested" && askable(entry) && !answered.has(entry.offset)) {
      if (promptFor !== entry.offset) view?.hidePrompt(); // asked again: answer the new request
      promptFor = entry.offset;
      view?.prompt(name, (yes) => {
        answered.add(entry.offset);
        link.request({ t: "cobrowse", conv: conv.id, action: yes ? "accept" : "decline", offset: entry.offset });
      });
    } else {
      promptFor = 0;
      view?.hidePrompt();
    }
  };

  /** The page was (re)connected: a tab that allowed co-browsing resumes it. */
  const resume = () => {
    const allowed = consent();
    if (!allowed || resumed) return;
    resumed = true;
    link.request({ t: "cobrowse", conv: allowed.conv, action: "resume", offset: allowed.offset });
  };

  /** Replies to our `cobrowse` requests and the server's `cobrowse_*` frames. @param {Record<string, any>} f */
  const frame = (f) => {
    if (f.t === "cobrowse") {
      if (f.state === "active") {
        /** @type {Consent} */
        const allowed = { conv: f.conv, offset: f.offset };
        session.set("cobrowse", allowed);
        begin(allowed, f.agent?.name || "");
      } else if (streaming && streaming.conv === f.conv) {
        end();
      }
      return;
    }
    if (f.t === "error") {
      // refused: an answer to a request that is gone, or nothing left to resume
      if (!streaming) session.remove("cobrowse");
      return;
    }
    if (!streaming || f.conv !== streaming.conv) return;
    if (f.t === "cobrowse_snapshot") return snapshot();
    if (f.t === "cobrowse_pointer") {
      return view?.pointer(typeof f.x === "number" ? { x: f.x, y: f.y, name: f.agent?.name || agentName } : null);
    }
    if (f.t === "cobrowse_highlight") {
      let el = typeof f.node === "number" ? recorder?.node(f.node) : null;
      if (!(el instanceof Element) && typeof f.selector === "string") {
        try {
          el = document.querySelector(f.selector);
        } catch {
          el = null;
        }
      }
      if (el instanceof Element && !el.closest("chatserver-chat")) view?.highlight(el);
    }
  };

  /** A (new) connection is up: the server must hear again that this tab streams. */
  const online = () => {
    resumed = false;
    if (streaming) {
      resumed = true;
      link.request({ t: "cobrowse", conv: streaming.conv, action: "resume", offset: streaming.offset });
    } else resume();
  };

  const stopWatching = store.subscribe((s, prev) => {
    if (s.entries !== prev.entries || s.conv !== prev.conv) update();
  });
  link.attach({
    frame: guard(frame),
    online: guard(online),
    offline: guard(() => {
      pending = [];
      pendingChars = 0;
    }),
  });

  if (store.get().link === "online") online(); // loaded after the welcome

  return {
    /** The widget's UI is up (after welcome): show what the state asks for.
     * @param {HTMLElement} box the widget's box in its shadow root @param {Ctx} ctx */
    mount(box, ctx) {
      view = mountCobrowseView(box, ctx);
      if (streaming) view.banner(agentName, stopByVisitor);
      update();
    },
    unmount() {
      view?.teardown();
      view = null;
    },
    stop() {
      stopWatching();
      link.attach(null);
      streaming = null;
      clearTimeout(flushTimer);
      clearTimeout(snapshotTimer);
      unlisten?.();
      release?.();
    },
  };
}

/** @typedef {ReturnType<typeof createCobrowse>} Cobrowse */

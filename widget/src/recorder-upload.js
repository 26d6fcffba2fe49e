// The recorder's uploads (docs/protocol.md, the `rec` frame): events are
// batched (every 3 s, or 32 KB, or 500 events), numbered (`seq`, kept per tab
// in sessionStorage, so it goes on across the page loads of a visit) and sent
// one batch at a time over the chat's socket. A batch leaves the queue only
// when the server says it is stored (`recorded`); after a drop or a page load
// it is sent again, and the server stores it once. A batch too big for one
// frame (a large page's full snapshot) goes in parts of its JSON text.
//
// Memory is bounded: while the socket is down, events and batches wait up to
// 512 KB; past that everything waiting is dropped, a `gap` event records how
// many events were lost, and a fresh full snapshot follows when the socket is
// back, so the replay goes on from there.

import { randomId } from "./ids.js";
import { guard } from "./guard.js";

const BATCH_EVERY = 3000; // ms
const BATCH_CHARS = 32 * 1024;
const BATCH_EVENTS = 500;
const BUFFER_CAP = 512 * 1024; // characters of events and batches waiting
const KEEP_ON_LEAVE = 256 * 1024; // characters of unsent batches carried to the next page
const PART_CHARS = 32000; // JSON text per part (escaped, it stays under the frame limit)
const WHOLE_CHARS = 16000; // a batch this short always fits one frame
const FRAME_BYTES = 60000; // under the server's 65536
const REPLY_TIMEOUT = 15000;
const VISIT_GAP = 30 * 60 * 1000; // a tab quiet this long starts a new recording

/**
 * @typedef {{send(build: (id: number) => string): number | null, online(): boolean}} Transport
 *   `send` sends the JSON text `build(id)` as a request with id `id`; null when offline.
 * @typedef {import("./storage.js").KeyValue} KeyValue
 * @typedef {{session: string, seq: number, text: string, count: number}} Batch
 * @typedef {{id: string, seq: number, last: number}} State
 */

const utf8 = (/** @type {string} */ s) => new TextEncoder().encode(s).length;

/**
 * @param {{
 *   transport: Transport,
 *   storage: KeyValue,
 *   onRestart: () => void,
 *   onGap: (dropped: number) => void,
 *   onStop: (why: string) => void,
 * }} options
 */
export function createUploader({ transport, storage, onRestart, onGap, onStop }) {
  /** @type {State} */
  let state = /** @type {State} */ (storage.get("rec")) || { id: "", seq: 0, last: 0 };
  if (!state.id || typeof state.seq !== "number" || Date.now() - (state.last || 0) > VISIT_GAP) {
    state = { id: `r_${randomId()}`, seq: 0, last: Date.now() };
  }
  /** @type {string[]} */
  let buffer = [];
  let bufferChars = 0;
  /** @type {Batch[]} */
  let queue = /** @type {Batch[]} */ (storage.get("rec-pending")) || [];
  storage.remove("rec-pending");
  if (!Array.isArray(queue)) queue = [];
  queue = queue.filter((b) => b && typeof b.session === "string" && typeof b.text === "string");
  /** @type {{batch: Batch, rid: number, part: number, parts: number} | null} */
  let inflight = null;
  let dropped = 0;
  let snapshotDue = false;
  let failures = 0;
  let stopped = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let replyTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retryTimer;

  const save = () => storage.set("rec", state);
  save();
  const waiting = () => bufferChars + queue.reduce((n, b) => n + b.text.length, 0);

  const cut = () => {
    if (!buffer.length) return;
    queue.push({ session: state.id, seq: state.seq++, text: `[${buffer.join(",")}]`, count: buffer.length });
    buffer = [];
    bufferChars = 0;
    state.last = Date.now();
    save();
    pump();
  };

  /** Drop everything waiting; the replay resumes at the next full snapshot. */
  const overflow = () => {
    dropped += buffer.length + queue.reduce((n, b) => n + b.count, 0);
    buffer = [];
    bufferChars = 0;
    queue = [];
    snapshotDue = true;
  };

  /** @param {Batch} batch @param {number} part */
  const transmit = (batch, part) => {
    const head = `{"t":"rec","session":${JSON.stringify(batch.session)}`;
    // The batch's JSON text goes as a string (`data`): the server checks it and
    // stores it as it is. Escaped, it may grow; a big batch goes in parts.
    const whole = batch.text.length <= WHOLE_CHARS || utf8(JSON.stringify(batch.text)) <= FRAME_BYTES - 200;
    const parts = whole ? 1 : Math.ceil(batch.text.length / PART_CHARS);
    const data = whole ? batch.text : batch.text.slice(part * PART_CHARS, (part + 1) * PART_CHARS);
    const body = JSON.stringify(data);
    if (!whole && utf8(body) > FRAME_BYTES) return refused(batch); // text that escapes badly
    const rid = transport.send(
      (id) => `${head},"id":${id},"seq":${batch.seq},"now":${Date.now()},"part":${part},"parts":${parts},"data":${body}}`,
    );
    if (rid === null) return;
    inflight = { batch, rid, part, parts };
    clearTimeout(replyTimer);
    replyTimer = setTimeout(guard(() => { inflight = null; pump(); }), REPLY_TIMEOUT);
  };

  const pump = () => {
    if (stopped || inflight || !transport.online()) return;
    if (snapshotDue) {
      snapshotDue = false;
      if (dropped) onGap(dropped);
      dropped = 0;
      onRestart(); // a fresh snapshot, batched like any event
      cut();
      return;
    }
    if (queue.length) transmit(queue[0], 0);
  };

  const later = () => {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(guard(pump), Math.min(30000, 2000 * 2 ** failures++));
  };

  /** A new recording: new id, seq 0, nothing waiting, and a full snapshot. */
  const restart = () => {
    state = { id: `r_${randomId()}`, seq: 0, last: Date.now() };
    save();
    buffer = [];
    bufferChars = 0;
    queue = [];
    onRestart();
  };

  /** A batch that can never be stored: drop it, note the loss, snapshot afresh. @param {Batch} batch */
  const refused = (batch) => {
    if (queue[0] === batch) queue.shift();
    dropped += batch.count;
    snapshotDue = true;
    pump();
  };

  const tick = setInterval(guard(cut), BATCH_EVERY);

  return {
    /** One event, as JSON text. @param {string} json */
    add(json) {
      if (stopped) return;
      buffer.push(json);
      bufferChars += json.length;
      if (waiting() > BUFFER_CAP) overflow();
      else if (bufferChars >= BATCH_CHARS || buffer.length >= BATCH_EVENTS) cut();
    },
    /** The server's answer to one of our requests. @param {Record<string, any>} f */
    reply(f) {
      if (!inflight || f.re !== inflight.rid) return;
      clearTimeout(replyTimer);
      const { batch, part, parts } = inflight;
      inflight = null;
      if (f.t === "ok" && part + 1 < parts) return transmit(batch, part + 1);
      if (f.t === "recorded") {
        failures = 0;
        if (queue[0] === batch) queue.shift();
        return pump();
      }
      if (f.t !== "error") return pump();
      if (f.code < 200) return later(); // busy, rate limited or storage down: retry
      if (f.code === 205 || f.code === 206) return restart(); // deleted, or not ours
      if (f.code === 204 || f.code === 207) { // recording off, or this recording is full
        stopped = true;
        return onStop(f.message || String(f.code));
      }
      refused(batch); // for good (too big, malformed)
    },
    /** Send what waits now, not at the next tick (a signal the server should see soon). */
    now: () => cut(),
    /** The socket is up (welcome): send what waits. */
    online: () => pump(),
    /** The socket dropped: what was in flight goes again later. */
    offline() {
      clearTimeout(replyTimer);
      inflight = null;
    },
    /** The page is going away: send what we can and keep the rest for the next page. */
    leave() {
      cut();
      const text = JSON.stringify(queue);
      if (queue.length && text.length <= KEEP_ON_LEAVE) storage.set("rec-pending", queue);
      state.last = Date.now();
      save();
    },
    /** The recording this tab writes (its id changes after `restart`). */
    get session() {
      return state.id;
    },
    stop() {
      stopped = true;
      clearInterval(tick);
      clearTimeout(replyTimer);
      clearTimeout(retryTimer);
    },
  };
}

/** @typedef {ReturnType<typeof createUploader>} Uploader */

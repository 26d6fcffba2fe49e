// The visitor side of the protocol (docs/protocol.md) over a Connection:
// hello with the stored token, recovery of the conversation from the last
// offset held (§7), idempotent sends with an outbox that survives drops and
// reloads (§7.4), throttled draft previews (§8.1) and read receipts (§8.3);
// the widget features: offline form, ratings, file uploads (HTTP, then an
// `attach` frame), tracked events and identify with its record switch.
// It turns frames into store updates; it renders nothing.

import { createConnection } from "./connection.js";
import { guard, warn } from "./guard.js";
import { randomId } from "./ids.js";
import { patternsOf, redact } from "./redact.js";
import { createOutbox } from "./outbox.js";

/** @typedef {import("./types.js").Entry} Entry */
/** @typedef {import("./types.js").Conversation} Conversation */
/** @typedef {import("./store.js").Store} Store */
/** @typedef {import("./storage.js").KeyValue} KeyValue */
/** @typedef {{reply(f: Record<string, any>): void, online(): void, offline(): void, now(): void}} RecorderHooks */
/** @typedef {{frame(f: Record<string, any>): void, online(): void, offline(): void}} CobrowseHooks */

const TYPING_HIDE_AFTER = 8000; // the server never times agent typing out (§5.8)
const PAGES_WAITING = 20; // page views kept while offline (the oldest are dropped)
const EVENTS_WAITING = 20; // tracked events kept while offline
const MAX_FILE = 10 * 1024 * 1024; // the server's limit (docs/widget.md)
const FILE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"];

/** @param {unknown} s @param {number} n */
const cut = (s, n) => (typeof s === "string" ? s.slice(0, n) : "");
/** The visitor's IANA time zone, for the agent's "local time" (undefined if unknown). */
const timeZone = () => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || undefined; } catch { return undefined; } };

/**
 * Insert entries into a list sorted by time then offset, skipping those held.
 * @param {Entry[]} list
 * @param {Entry[]} more
 * @returns {Entry[]}
 */
export function mergeEntries(list, more) {
  const held = new Set(list.map((e) => `${e.conv}:${e.offset}`));
  const fresh = more.filter((e) => !held.has(`${e.conv}:${e.offset}`) && e.kind !== "note");
  if (!fresh.length) return list;
  return [...list, ...fresh].sort((a, b) => a.ts - b.ts || a.offset - b.offset);
}

/**
 * @typedef {{
 *   url: string,
 *   base: string,
 *   site: string,
 *   dept?: string,
 *   store: Store,
 *   local: KeyValue,
 *   session: KeyValue,
 *   onReady: () => void,
 *   onMessage: (entry: Entry) => void,
 *   onServer?: (frame: Record<string, any>) => void,
 *   onDisabled: (code: number, reason: string) => void,
 * }} ClientOptions
 */

/** @param {ClientOptions} options */
export function createClient({ url, base, site, dept, store, local, session, onReady, onMessage, onServer, onDisabled }) {
  let rid = 0;
  let ready = false;
  /** @type {Map<number, {t: string, cid?: string, conv?: string, upTo?: number}>} */
  const requests = new Map();
  /** What this page holds of each conversation: epoch, `last` (complete up to), and
   * the highest live offset seen while a recovery is in flight (§7.1, §7.2).
   * @type {Map<string, {epoch: string, last: number, live: number, syncing: boolean}>} */
  const held = new Map();
  let sentDraft = "";
  let draftNow = "";
  let lastDraftAt = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let draftTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let typingTimer;
  /** The read receipt sent last (per conversation: offsets start at 1 in each). */
  let readSent = { conv: "", offset: 0 };
  let previewInterval = 100;
  // Tracking (§4.2 page, identify, attrs): what waits for a connection.
  let pageSent = "";
  /** @type {{url: string, title: string, referrer: string}[]} */
  let pages = [];
  /** @type {Record<string, string>} */
  let profile = {};
  /** @type {Record<string, unknown> | null} */
  let attrs = null;
  /** Session recording (recording.js): its `rec` replies and the link go to it.
   * @type {RecorderHooks | null} */
  let recorder = null;
  /** @type {{name: string, props?: Record<string, unknown>}[]} */
  let events = [];
  /** Co-browsing (cobrowse.js): its replies, its server frames and the link go to it.
   * @type {CobrowseHooks | null} */
  let cobrowse = null;

  const sendDraft = () => {
    draftTimer = undefined;
    lastDraftAt = Date.now();
    if (draftNow === sentDraft) return;
    if (conn.send({ t: "typing", draft: draftNow })) sentDraft = draftNow;
  };

  /** @param {Record<string, unknown>} frame @returns {number | null} the request id, if sent */
  const request = (frame, note = {}) => {
    const id = ++rid;
    if (!conn.send({ ...frame, id })) return null;
    requests.set(id, { t: String(frame.t), ...note });
    return id;
  };

  /** @param {import("./types.js").Outgoing} item */
  const transmit = (item) => request({ t: "send", cid: item.cid, body: item.body }, { cid: item.cid });
  const outbox = createOutbox({ store, session, transmit });

  /** @param {string} conv @param {number} upTo */
  const recover = (conv, upTo) => {
    const h = held.get(conv);
    if (!h) return;
    h.syncing = true;
    request({ t: "history", conv, since: h.last, epoch: h.epoch || undefined }, { conv, upTo });
  };

  /** An entry with its attachment's URL made absolute (it comes relative to the server).
   * @param {Entry} e @returns {Entry} */
  const absolute = (e) => {
    const att = e.data?.attachment;
    if (!att || typeof att.url !== "string") return e;
    return { ...e, data: { ...e.data, attachment: { ...att, url: new URL(att.url, base).href } } };
  };

  /** @param {string} cid @param {Partial<import("./types.js").Upload> | null} patch (null: drop) */
  const setUpload = (cid, patch) =>
    store.set((s) => ({
      uploads: patch ? s.uploads.map((u) => (u.cid === cid ? { ...u, ...patch } : u)) : s.uploads.filter((u) => u.cid !== cid),
    }));
  /** Post an uploaded file (again, same cid) with an `attach` frame. @param {string} cid */
  const post = (cid) => {
    const u = store.get().uploads.find((x) => x.cid === cid);
    if (u && u.state === "posting" && u.id) request({ t: "attach", cid, attachment: u.id }, { cid });
  };
  /** Uploads whose entries arrived are done. @param {Entry[]} entries */
  const settleUploads = (entries) => {
    const done = new Set(entries.filter((e) => e.cid && e.from.kind === "visitor").map((e) => e.cid));
    if (store.get().uploads.some((u) => done.has(u.cid))) store.set((s) => ({ uploads: s.uploads.filter((u) => !done.has(u.cid)) }));
  };

  /** `identify` proved us to be a customer whose record is another: move onto it. @param {string} next */
  const switchTo = (next) => {
    token = next;
    local.set("token", next);
    local.remove("seen");
    held.clear();
    readSent = { conv: "", offset: 0 };
    store.set({ link: "connecting", conv: null, entries: [], agentRead: 0, seen: 0 });
    conn.restart();
  };

  /** @param {string} conv */
  const forget = (conv) =>
    store.set((s) => ({ entries: s.entries.filter((e) => e.conv !== conv) }));

  /** Send what tracking calls are waiting, when online. */
  const flushTracking = () => {
    if (store.get().link !== "online") return;
    while (pages.length && request({ t: "page", ...pages[0] }) !== null) pages.shift();
    if (Object.keys(profile).length && request({ t: "identify", ...profile }) !== null) profile = {};
    if (attrs && request({ t: "attrs", set: attrs }) !== null) attrs = null;
    while (events.length && request({ t: "track", ...events[0] }) !== null) events.shift();
  };

  /** @param {Record<string, any>} f */
  const welcome = (f) => {
    token = f.token;
    local.set("token", f.token);
    previewInterval = Math.max(50, (f.limits?.preview_interval ?? 0.1) * 1000);
    const current = store.get().conv;
    // Our conversation was closed while we were away: fetch its end (§7.3 step 2).
    if (current && current.id !== f.conv && current.state !== "closed") {
      store.set({ conv: { ...current, state: "closed" } });
      recover(current.id, current.offset);
    }
    store.set({
      link: "online",
      site: f.site,
      agentsOnline: f.agents_online,
      maxChars: f.limits?.max_message_chars ?? 4000,
    });
    conn.healthy();
    outbox.flush();
    for (const u of store.get().uploads) post(u.cid);
    flushTracking();
    recorder?.online();
    cobrowse?.online();
    if (!ready) {
      ready = true;
      onReady();
    }
  };

  /** @param {Conversation} c @param {Record<string, any>[]} [reads] a follow start's markers (§5.4) */
  const conversation = (c, reads) => {
    let h = held.get(c.id);
    if (h && h.epoch && h.epoch !== c.epoch) {
      forget(c.id);
      h = undefined;
    }
    if (!h) held.set(c.id, (h = { epoch: c.epoch, last: 0, live: 0, syncing: false }));
    h.epoch = c.epoch;
    const prev = store.get().conv;
    const position = c.state === "queued" ? c.position ?? (prev?.id === c.id ? prev.position : undefined) : undefined;
    store.set({ conv: { ...c, position }, ...(prev?.id !== c.id ? { agentRead: 0, seen: seenOf(c.id) } : {}) });
    for (const r of reads || []) read({ ...r, conv: c.id }); // "Seen" survives a reload
    if (c.offset > h.last && !h.syncing) recover(c.id, c.offset);
  };

  /** @param {string} conv */
  const seenOf = (conv) => {
    const seen = /** @type {{conv?: string, offset?: number} | null} */ (local.get("seen"));
    return seen && seen.conv === conv ? Number(seen.offset) || 0 : 0;
  };

  /** @param {Record<string, any>} f */
  const history = (f, /** @type {{conv?: string, upTo?: number}} */ req) => {
    const h = held.get(f.conv) || { epoch: f.epoch, last: 0, live: 0, syncing: false };
    held.set(f.conv, h);
    if (!f.complete) forget(f.conv);
    /** @type {Entry[]} */
    const messages = (f.messages || []).map(absolute);
    const top = messages.reduce((m, e) => Math.max(m, e.offset), 0);
    h.epoch = f.epoch;
    // complete: everything after `since`; else the latest page replaces our copy.
    h.last = Math.max(f.complete ? h.last : 0, req.upTo || 0, top, h.live);
    h.live = 0;
    h.syncing = false;
    store.set((s) => ({ entries: mergeEntries(s.entries, messages) }));
    outbox.settle(messages);
    settleUploads(messages);
    // The conversation moved on meanwhile (a conv frame we did not act on).
    const conv = store.get().conv;
    if (conv && conv.id === f.conv && conv.offset > h.last) recover(f.conv, conv.offset);
  };

  /** @param {Entry} raw */
  const live = (raw) => {
    if (raw.kind === "note") return;
    const e = absolute(raw);
    const h = held.get(e.conv);
    if (h) {
      if (h.syncing) h.live = Math.max(h.live, e.offset);
      else h.last = Math.max(h.last, e.offset);
    }
    const before = store.get().entries;
    const entries = mergeEntries(before, [e]);
    if (entries === before) return;
    const patch = /** @type {Partial<import("./types.js").State>} */ ({ entries });
    if (e.from.kind === "agent") {
      clearTimeout(typingTimer);
      patch.typing = null;
    }
    const conv = store.get().conv;
    if (conv && conv.id === e.conv && e.offset > conv.offset) patch.conv = { ...conv, offset: e.offset };
    store.set(patch);
    outbox.settle([e]);
    settleUploads([e]);
    if (e.kind === "text") onMessage(e);
  };

  /** @param {Record<string, any>} f @param {{t: string, cid?: string, conv?: string} | undefined} req */
  const refused = (f, req) => {
    if (req?.t === "attach" && req.cid) {
      const cid = req.cid;
      if (f.code < 200) setTimeout(guard(() => post(cid)), 2000);
      else setUpload(cid, { state: "failed", error: "upload_failed" });
    } else if (req?.t === "offline") {
      store.set({ form: "error" });
    } else if (req?.t === "transcript") {
      store.set({ mailed: "error" });
    } else if (req?.t === "send" && req.cid) {
      if (f.code < 200) outbox.later(2000); // 1xx: retry later
      else outbox.failed(req.cid); // 2xx: the same frame would fail again
    } else if (req?.t === "history" && req.conv) {
      const h = held.get(req.conv);
      if (h) h.syncing = false;
    } else if (req && ["page", "identify", "attrs", "track", "rate"].includes(req.t)) {
      warn(`${req.t === "attrs" ? "set" : req.t} refused: ${f.message}`);
    } else if (f.re == null && f.code === 102) {
      // Rate limited: the dropped frame is unknown (no `re`); sends are idempotent.
      outbox.later(1500);
    }
  };

  /** @param {Record<string, any>} f */
  const onFrame = (f) => {
    const req = f.re != null ? requests.get(f.re) : undefined;
    if (f.re != null) requests.delete(f.re);
    if (req?.t === "rec") return recorder?.reply(f);
    if (req?.t === "cobrowse" || f.t.startsWith("cobrowse_")) return cobrowse?.frame(f);
    switch (f.t) {
      case "welcome":
        return welcome(f);
      case "conv":
        return conversation(f.conv, f.reads);
      case "history":
        return history(f, req || {});
      case "msg":
        return live(/** @type {Entry} */ (f));
      case "ok":
        if (req?.t === "identify" && typeof f.token === "string") switchTo(f.token);
        if (req?.t === "transcript") store.set({ mailed: "sent" });
        return;
      case "ack":
        if (req?.t === "offline") store.set({ form: "idle" });
        outbox.acked(f.cid);
        return outbox.settle(store.get().entries); // a duplicate's entry may be here already
      case "queue": {
        const conv = store.get().conv;
        store.set({
          agentsOnline: f.agents_online,
          ...(conv && conv.id === f.conv ? { conv: { ...conv, position: f.position } } : {}),
        });
        return;
      }
      case "agents":
        return store.set({ agentsOnline: f.online });
      case "typing":
        if (f.from?.kind !== "agent") return;
        clearTimeout(typingTimer);
        if (f.on) typingTimer = setTimeout(guard(() => store.set({ typing: null })), TYPING_HIDE_AFTER);
        return store.set({ typing: f.on ? f.from.name || "" : null });
      case "read":
        return read(f);
      case "error":
        return refused(f, req);
      case "open": // a proactive trigger (protocol §5.17)
        return onServer?.(f);
    }
  };

  /** A read marker, live or from a follow start. @param {Record<string, any>} f */
  const read = (f) => {
    const conv = store.get().conv;
    if (!conv || conv.id !== f.conv) return;
    if (f.by?.kind === "agent") return store.set((s) => ({ agentRead: Math.max(s.agentRead, f.offset) }));
    if (f.by?.kind === "visitor") {
      if (readSent.conv !== f.conv || readSent.offset < f.offset) readSent = { conv: f.conv, offset: f.offset };
      markSeen(f.offset);
    }
  };

  /** @param {number} offset */
  const markSeen = (offset) => {
    const conv = store.get().conv;
    if (!conv || offset <= store.get().seen) return;
    local.set("seen", { conv: conv.id, offset });
    store.set({ seen: offset });
  };

  let token = /** @type {string | null} */ (local.get("token"));
  const conn = createConnection({
    url,
    onOpen() {
      requests.clear();
      for (const h of held.values()) h.syncing = false;
      const page = { url: cut(location.href, 2000), title: cut(document.title, 500), tz: timeZone() };
      conn.send({ t: "hello", id: ++rid, v: 1, kind: "visitor", site, token: local.get("token") || token || undefined, dept: dept || undefined, page });
    },
    onFrame,
    onDown() {
      recorder?.offline();
      cobrowse?.offline();
      clearTimeout(typingTimer);
      store.set((s) => ({
        link: s.link === "connecting" ? "connecting" : "offline",
        typing: null,
        form: s.form === "sending" ? "error" : s.form,
        mailed: s.mailed === "sending" ? "error" : s.mailed,
      }));
    },
    onTerminal(code, reason) {
      store.set({ link: "disabled" });
      onDisabled(code, reason);
    },
  });

  /** What may leave the page of a visitor's text (redact.js). @param {string} text @param {boolean} [draft] */
  const clean = (text, draft) => redact(text, patternsOf(store.get().site?.settings), draft).text;

  const api = {
    start: () => conn.start(),
    stop() {
      clearTimeout(draftTimer);
      clearTimeout(typingTimer);
      outbox.stop();
      conn.stop();
    },
    /** Queue a message (sent now when online, else on reconnect). @param {string} text */
    send(text) {
      const body = clean(String(text)).trim().slice(0, store.get().maxChars);
      if (!body) return;
      const item = outbox.add(body);
      clearTimeout(draftTimer);
      draftTimer = undefined;
      sentDraft = draftNow = "";
      if (store.get().link === "online") transmit(item);
      recorder?.now(); // the agents' rewind should hold the moments before this message
    },
    /** The composer changed. Sends the draft (site preview on) or only whether
     * something is being typed (preview off: the text never leaves the page),
     * at most once per preview interval, and only in an open conversation (§8.1).
     * @param {string} draft */
    draft(draft) {
      const { conv, site, link } = store.get();
      if (!conv || conv.state === "closed" || link !== "online") return;
      const limit = 2000;
      draftNow = site?.settings.typing_preview ? clean(draft, true).slice(0, limit) : draft.trim() ? "…" : "";
      if (draftTimer !== undefined) return;
      const wait = lastDraftAt + previewInterval - Date.now();
      if (wait <= 0) sendDraft();
      else draftTimer = setTimeout(guard(sendDraft), wait);
    },
    /** The visitor has seen everything shown: send a read receipt. */
    read() {
      const { conv, entries } = store.get();
      if (!conv) return;
      const top = entries.reduce((m, e) => (e.conv === conv.id ? Math.max(m, e.offset) : m), 0);
      markSeen(top);
      const already = readSent.conv === conv.id ? readSent.offset : 0;
      if (top > already && conn.send({ t: "read", conv: conv.id, offset: top })) readSent = { conv: conv.id, offset: top };
    },
    /** Report the current page (at start and after a route change); the same URL
     * twice in a row counts once. Kept until connected. */
    page() {
      const url = cut(location.href, 2000);
      if (!url || url === pageSent) return;
      const referrer = cut(pageSent || document.referrer, 2000);
      pageSent = url;
      pages = [...pages, { url, title: cut(document.title, 500), referrer }].slice(-PAGES_WAITING);
      flushTracking();
    },
    /** `["identify", {id, name, email, hash}]`: set who the visitor is; `hash`
     * (from the shop's server) proves `id`. @param {any} who */
    identify(who) {
      if (!who || typeof who !== "object") return warn("identify takes {id, name, email, hash}");
      const next = { ...profile };
      if (typeof who.name === "string") next.name = cut(who.name, 200);
      if (typeof who.email === "string") next.email = cut(who.email, 320);
      if ((typeof who.id === "string" && who.id) || typeof who.id === "number") next.user_id = cut(String(who.id), 200);
      if (typeof who.hash === "string") next.hash = cut(who.hash, 128);
      profile = next;
      flushTracking();
    },
    /** `["set", {key: value}]`: merge custom attributes (null deletes a key). @param {any} more */
    set(more) {
      if (!more || typeof more !== "object" || Array.isArray(more)) return warn("set takes {key: value}");
      attrs = { ...attrs, ...more };
      flushTracking();
    },
    /** The recorder's way out: raw `rec` frames (built with the request id) and
     * whether we are online; `attach` routes the replies to it. */
    recording: {
      /** @param {RecorderHooks | null} r */
      attach(r) {
        recorder = r;
      },
      /** @param {(id: number) => string} build @returns {number | null} */
      send(build) {
        const id = ++rid;
        if (!conn.sendText(build(id))) return null;
        requests.set(id, { t: "rec" });
        return id;
      },
      online: () => store.get().link === "online",
    },
    /** `["track", name, props]`: a custom event for the agents. @param {unknown} name @param {unknown} props */
    track(name, props) {
      if (typeof name !== "string" || !name.trim()) return warn('track takes ["track", "name", {props}]');
      const ok = props && typeof props === "object" && !Array.isArray(props);
      events = [...events, { name: cut(name, 64), ...(ok ? { props: /** @type {Record<string, unknown>} */ (props) } : {}) }].slice(-EVENTS_WAITING);
      flushTracking();
    },
    /** The offline form: name, e-mail and message (stored once, answered by e-mail).
     * @param {{name: string, email: string, body: string}} form */
    offline(form) {
      const body = clean(form.body).trim().slice(0, store.get().maxChars);
      const frame = { t: "offline", cid: randomId(), name: cut(form.name.trim(), 200), email: cut(form.email.trim(), 320), body };
      store.set({ form: request(frame) === null ? "error" : "sending" });
    },
    /** Rate the (closed) current conversation. @param {string} rating @param {string} comment */
    rate(rating, comment) {
      const conv = store.get().conv;
      if (!conv || conv.state !== "closed") return;
      request({ t: "rate", conv: conv.id, rating, comment: cut(comment.trim(), 1000) || undefined });
      store.set({ conv: { ...conv, rating: { value: rating, comment } } });
    },
    /** Mail the current conversation to `email` (protocol `transcript`). @param {string} email */
    transcript(email) {
      const s = store.get();
      if (!s.conv) return;
      const lang = ["en", "ca", "es"].includes(s.locale) ? s.locale : undefined;
      const sent = request({ t: "transcript", conv: s.conv.id, email: cut(email.trim(), 320), lang });
      store.set({ mailed: sent === null ? "error" : "sending" });
    },
    /** Send a file: checked here (type, size), uploaded over HTTP, then posted. @param {File} file */
    attach(file) {
      const u = { cid: randomId(), name: cut(file.name || "file", 200), ts: Date.now() / 1000 };
      const error = file.size > MAX_FILE ? "too_big" : !FILE_TYPES.includes(file.type) ? "wrong_type" : "";
      store.set((s) => ({ uploads: [...s.uploads, error ? { ...u, state: "failed", error } : { ...u, state: "uploading" }] }));
      if (error) return;
      const target = new URL("api/attachments", base);
      target.searchParams.set("name", u.name);
      fetch(target.href, { method: "POST", body: file, headers: { Authorization: `Bearer ${local.get("token") || token}` } })
        .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
        .then((att) => {
          setUpload(u.cid, { state: "posting", id: String(att.id) });
          post(u.cid);
        })
        .catch((status) => setUpload(u.cid, {
          state: "failed", error: status === 413 ? "too_big" : status === 415 ? "wrong_type" : "upload_failed",
        }))
        .catch(warn);
    },
    /** Forget a failed upload. @param {string} cid */
    dismiss: (/** @type {string} */ cid) => setUpload(cid, null),
    /** Co-browsing's way out: `cobrowse` requests (replies go to the attached
     * hooks, as do the server's `cobrowse_*` frames) and raw stream frames. */
    cobrowse: {
      /** @param {CobrowseHooks | null} h */
      attach(h) {
        cobrowse = h;
      },
      /** @param {Record<string, unknown>} frame @returns {boolean} whether it was sent */
      request: (frame) => request(frame) !== null,
      /** @param {string} text a frame already in JSON @returns {boolean} */
      sendText: (text) => store.get().link === "online" && conn.sendText(text),
    },
    /** Try a failed message again (new cid: the old one was refused). @param {string} cid */
    retry(cid) {
      const item = outbox.take(cid);
      if (item) api.send(item.body);
    },
  };
  return api;
}

/** @typedef {ReturnType<typeof createClient>} Client */

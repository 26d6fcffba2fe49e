// What the workspace knows of the site's conversations, kept in step with the
// server by the recovery rules of docs/protocol.md §7: per conversation an
// epoch and `last` (the offset up to which our copy is complete), one
// `history` request per follow start, live entries deduplicated by offset,
// unacknowledged messages resent with the same `cid` after a reconnect.
//
// No DOM here: the views subscribe with `on(listener)` and read the records.

const SIGNALS_KEPT = 20; // per visitor, the newest

/**
 * @typedef {import("./connection.js").Connection} Connection
 * @typedef {import("./connection.js").Frame} Frame
 * @typedef {{id: string, name: string}} Person
 * @typedef {{id: string, visitor: string, state: string, epoch: string, offset: number,
 *   department: string | null, agents: Person[], created_at: number, offline?: boolean,
 *   tags?: string[], position?: number, rating?: unknown}} Conv
 * @typedef {{conv: string, offset: number, kind: string, from: {kind: string, id: string, name: string},
 *   body: string, ts: number, cid?: string, data?: Record<string, any>}} Entry
 * @typedef {{cid: string, conv: string, body: string, note: boolean, ts: number,
 *   failed: string | null, inflight: boolean}} Pending
 * @typedef {{id: string, name: string, typing: boolean}} Viewer
 * @typedef {{conv: string, by: {kind: string, id: string}, offset: number}} ReadMarker
 * @typedef {{id: string, name: string, email: string, role: string, capacity: number, departments: string[]}} Me
 * @typedef {{t: "signal", visitor: string, kind: string, url: string, ts: number, session: string, detail: Record<string, any>}} Signal
 * @typedef {"conv" | "entries" | "live" | "welcome" | "status" | "visitor" | "invite" | "notify" | "problem"} Change
 * @typedef {(change: Change, id: string | null, detail?: any) => void} Listener
 */

const READ_KEY = "chatserver.console.read";
const RESEND_AFTER = 8000; // ms after welcome: pending messages of conversations not followed again
const PAGE = 50;

export class ConvRecord {
  /** @param {Conv} conv */
  constructor(conv) {
    this.id = conv.id;
    this.conv = conv;
    this.epoch = conv.epoch;
    /** @type {Map<number, Entry>} */
    this.entries = new Map();
    this.last = 0; // our copy is complete up to here
    this.loaded = false; // we hold a copy (after a follow start or a page)
    this.following = false; // this connection follows it (a follow start arrived)
    this.watching = false; // we asked to watch it
    this.recovering = false; // the follow start's history request is in flight
    this.liveMax = 0; // highest live offset seen while recovering
    this.older = false; // entries exist before the lowest we hold
    this.loadingOlder = false;
    this.joining = false; // our own join is on its way (no "assigned" alert for it)
    this.preview = ""; // the visitor's draft
    this.visitorTyping = false; // preview off: only that the visitor types
    /** @type {Map<string, {name: string, note: boolean, at: number}>} */
    this.typing = new Map();
    /** @type {Viewer[]} */
    this.viewers = [];
    this.read = 0; // my read marker
    this.visitorRead = 0;
  }

  /** Entries in offset order. */
  sorted() {
    return [...this.entries.values()].sort((a, b) => a.offset - b.offset);
  }

  get lowest() {
    let low = Infinity;
    for (const offset of this.entries.keys()) low = Math.min(low, offset);
    return low === Infinity ? 0 : low;
  }

  /** The newest text entry (the list's "last message"). */
  get lastText() {
    let found = /** @type {Entry | null} */ (null);
    for (const e of this.entries.values()) {
      if ((e.kind === "text" || e.kind === "note") && (!found || e.offset > found.offset)) found = e;
    }
    return found;
  }

  /** When the visitor's unanswered message came (0: nothing waits for an answer). */
  get waitingSince() {
    let since = 0;
    for (const e of this.sorted()) {
      if (e.kind !== "text") continue;
      if (e.from.kind === "visitor") since = since || e.ts;
      else since = 0;
    }
    return since;
  }

  /** Visitor messages after my read marker and after my last answer. */
  unreadAfter(/** @type {string} */ me) {
    let mark = this.read;
    for (const e of this.entries.values()) {
      if (e.from.kind === "agent" && e.from.id === me) mark = Math.max(mark, e.offset);
    }
    let n = 0;
    for (const e of this.entries.values()) if (e.kind === "text" && e.from.kind === "visitor" && e.offset > mark) n++;
    return n;
  }
}

const ASK_BATCH = 5; // visitor records asked for per second (the protocol allows 20 frames/s)

export class Store {
  /** @param {Connection} conn */
  constructor(conn) {
    this.conn = conn;
    /** @type {Map<string, ConvRecord>} */
    this.records = new Map();
    /** @type {Me | null} */
    this.me = null;
    /** @type {{id: string, name: string, departments: string[], settings: Record<string, any>} | null} */
    this.site = null;
    this.status = "online";
    /** @type {string[]} */
    this.queue = [];
    /** @type {Map<string, Pending>} */
    this.pending = new Map();
    /** @type {Map<string, Record<string, any>>} visitors as the last `visitor` frame showed them */
    this.visitors = new Map();
    /** @type {Map<string, Signal[]>} the newest signals of each visitor (recordings/signals.py) */
    this.signals = new Map();
    /** @type {Set<Listener>} */
    this.listeners = new Set();
    this.welcomed = false; // the first welcome has been handled (later conv frames are news)
    /** @type {number | undefined} */
    this.resendTimer = undefined;
    /** Visitors asked for by `learnVisitor` (at most ASK_BATCH a second). */
    this.asked = new Set();
    /** @type {string[]} */
    this.askQueue = [];
    /** @type {number | undefined} */
    this.askTimer = undefined;
  }

  /**
   * Learn the name of a visitor this tab knows only by id (a conversation in
   * the welcome, or from before a colleague's offline form named them), so
   * the lists do not say "Visitor 1a2b" for long. @param {string} id
   */
  learnVisitor(id) {
    if (!id || this.visitors.has(id) || this.asked.has(id)) return;
    this.asked.add(id);
    this.askQueue.push(id);
    if (this.askTimer === undefined) this.askTimer = window.setTimeout(() => this.askNext(), 0);
  }

  askNext() {
    this.askTimer = undefined;
    if (this.conn.state !== "online") {
      this.askQueue.forEach((id) => this.asked.delete(id)); // asked again after the next welcome
      this.askQueue = [];
      return;
    }
    for (const id of this.askQueue.splice(0, ASK_BATCH)) {
      this.conn
        .request({ t: "visitor", visitor: id })
        .then((reply) => {
          if (!reply?.visitor || this.visitors.has(id)) return;
          this.visitors.set(id, reply.visitor);
          this.emit("visitor", id);
        })
        .catch(() => this.asked.delete(id));
    }
    if (this.askQueue.length) this.askTimer = window.setTimeout(() => this.askNext(), 1000);
  }

  /** @param {Listener} listener */
  on(listener) {
    this.listeners.add(listener);
  }

  /** @param {Change} change @param {string | null} id @param {any} [detail] */
  emit(change, id, detail) {
    for (const listener of this.listeners) {
      try {
        listener(change, id, detail);
      } catch (err) {
        console.error(err);
      }
    }
  }

  /** @param {Conv} conv */
  upsert(conv) {
    let rec = this.records.get(conv.id);
    if (!rec) {
      rec = new ConvRecord(conv);
      rec.read = this.savedRead(conv.id);
      this.records.set(conv.id, rec);
      this.learnVisitor(conv.visitor);
    } else {
      rec.conv = conv;
    }
    return rec;
  }

  /** @param {string} id */
  get(id) {
    return this.records.get(id);
  }

  /** @param {ConvRecord} rec */
  isMine(rec) {
    return !!this.me && rec.conv.agents.some((a) => a.id === this.me?.id);
  }

  /** Conversations I am in that are still open. */
  mine() {
    return [...this.records.values()].filter((r) => r.conv.state === "active" && this.isMine(r));
  }

  /** @param {Frame} f */
  onFrame(f) {
    switch (f.t) {
      case "welcome":
        return this.welcome(f);
      case "conv":
        return f.follow ? this.followStart(f.conv, f.reads) : this.snapshot(f.conv);
      case "msg":
        return this.live(/** @type {Entry} */ (f));
      case "preview": {
        const rec = this.records.get(f.conv);
        if (rec) {
          rec.preview = f.text;
          this.emit("live", rec.id);
        }
        return;
      }
      case "typing":
        return this.typing(f);
      case "read":
        return this.marker(/** @type {ReadMarker} */ (f));
      case "queue": {
        const rec = this.records.get(f.conv);
        if (rec) {
          rec.conv = { ...rec.conv, position: f.position };
          this.emit("conv", rec.id);
        }
        return;
      }
      case "status":
        this.status = f.status;
        return this.emit("status", null);
      case "visitor":
        this.visitors.set(f.visitor.id, f.visitor);
        return this.emit("visitor", f.visitor.id, f);
      case "signal": {
        const seen = [...(this.signals.get(f.visitor) || []), /** @type {Signal} */ (f)].slice(-SIGNALS_KEPT);
        this.signals.set(f.visitor, seen);
        return this.emit("visitor", f.visitor, f);
      }
      case "viewers": {
        const rec = this.records.get(f.conv);
        if (rec) {
          rec.viewers = f.agents;
          this.emit("live", rec.id);
        }
        return;
      }
      case "invite":
        this.upsert(f.conv);
        this.emit("conv", f.conv.id);
        return this.emit("invite", f.conv.id, f);
      case "error":
        if (f.re == null) this.emit("problem", null, f.message);
        return;
    }
  }

  /** @param {Frame} f */
  welcome(f) {
    this.me = f.agent;
    this.site = f.site;
    this.status = f.status;
    this.queue = f.queue;
    const open = new Set();
    for (const conv of f.conversations) {
      open.add(conv.id);
      this.upsert(conv);
    }
    for (const rec of this.records.values()) {
      rec.following = false;
      rec.recovering = false;
      // Not listed as open any more: it closed while we were away.
      if (!open.has(rec.id) && rec.conv.state !== "closed" && f.conversations.length < 500) {
        rec.conv = { ...rec.conv, state: "closed" };
      }
      if (rec.watching && rec.conv.state !== "closed") {
        rec.watching = false;
        this.watch(rec);
      }
    }
    clearTimeout(this.resendTimer);
    this.resendTimer = window.setTimeout(() => {
      for (const p of this.pending.values()) if (!p.failed && !p.inflight) this.transmit(p);
    }, RESEND_AFTER);
    this.emit("welcome", null);
    this.welcomed = true;
  }

  /** @param {Conv} conv */
  snapshot(conv) {
    const known = this.records.get(conv.id);
    const wasMine = !!known && this.isMine(known);
    const rec = this.upsert(conv);
    if (conv.state === "queued") {
      if (!this.queue.includes(conv.id)) this.queue.push(conv.id);
    } else {
      this.queue = this.queue.filter((id) => id !== conv.id);
    }
    if (wasMine && !this.isMine(rec)) {
      // Transferred away or left: the server stopped our follow; a tab still shows it.
      rec.following = false;
      if (rec.watching) {
        rec.watching = false;
        this.watch(rec);
      }
    }
    if (this.welcomed && (!known || known.conv.state === "closed") && conv.state === "queued") {
      this.emit("notify", conv.id, { kind: "chat" });
    }
    this.emit("conv", conv.id);
  }

  /**
   * A read marker, live (`read`) or from a follow start's `reads` (§5.4, §8.3):
   * the visitor's read position, and my own (other agents' are not shown).
   * @param {ReadMarker} f
   */
  marker(f) {
    const rec = this.records.get(f.conv);
    if (!rec) return;
    if (f.by.kind === "visitor") rec.visitorRead = Math.max(rec.visitorRead, f.offset);
    else if (f.by.id === this.me?.id) rec.read = Math.max(rec.read, f.offset);
    this.emit("conv", rec.id);
  }

  /**
   * A follow start: this connection now gets the entries after `conv.offset`
   * live; fetch what we lack before it (§7.2). Its `reads` restore the read
   * markers a reload or reconnect would otherwise lose until the next `read`.
   * @param {Conv} conv @param {Omit<ReadMarker, "conv">[]} [reads]
   */
  followStart(conv, reads) {
    const wasMine = this.records.get(conv.id);
    const mineBefore = !!wasMine && wasMine.following && this.isMine(wasMine);
    const rec = this.upsert(conv);
    rec.following = true;
    if (rec.epoch !== conv.epoch) {
      rec.entries.clear();
      rec.last = 0;
      rec.loaded = false;
    }
    rec.epoch = conv.epoch;
    for (const r of reads || []) this.marker({ ...r, conv: conv.id });
    if (this.welcomed && !mineBefore && this.isMine(rec) && !rec.watching && !rec.joining) {
      this.emit("notify", rec.id, { kind: "assigned" });
    }
    if (rec.loaded && conv.offset <= rec.last) {
      this.recovered(rec);
    } else {
      this.recover(rec, conv.offset);
    }
    this.emit("conv", rec.id);
  }

  /**
   * The one history request of a follow start. With a copy, ask for what
   * came after it (§7.3); without one, only the newest page: older entries
   * are paged in when the agent scrolls up (§7.5).
   * @param {ConvRecord} rec @param {number} at the follow start's offset
   */
  async recover(rec, at) {
    rec.recovering = true;
    rec.liveMax = 0;
    const fresh = !rec.loaded;
    try {
      const reply = await this.conn.request(
        fresh ? { t: "history", conv: rec.id, limit: PAGE } : { t: "history", conv: rec.id, since: rec.last, epoch: rec.epoch },
      );
      /** @type {Entry[]} */
      const messages = reply.messages;
      const top = messages.reduce((m, e) => Math.max(m, e.offset), 0);
      if (fresh) {
        for (const e of messages) this.add(rec, e);
        rec.last = Math.max(at, top, rec.liveMax);
        rec.older = reply.more;
      } else if (reply.complete) {
        for (const e of messages) this.add(rec, e);
        rec.last = Math.max(at, top, rec.liveMax, rec.last);
      } else {
        rec.entries.clear();
        for (const e of messages) this.add(rec, e);
        rec.last = Math.max(top, at);
        rec.older = reply.more;
      }
      rec.epoch = reply.epoch;
      rec.loaded = true;
      rec.recovering = false;
      this.recovered(rec);
    } catch (err) {
      rec.recovering = false; // a drop: the next welcome follows again
      if (err instanceof Error && /** @type {any} */ (err).code) this.emit("problem", rec.id, err.message);
    }
    this.emit("entries", rec.id);
    this.emit("conv", rec.id);
  }

  /** Our copy is complete: resend what waits for an ack. @param {ConvRecord} rec */
  recovered(rec) {
    rec.loaded = true;
    for (const p of this.pending.values()) {
      if (p.conv === rec.id && !p.failed && !p.inflight) this.transmit(p);
    }
  }

  /** @param {ConvRecord} rec @param {Entry} e */
  add(rec, e) {
    if (rec.entries.has(e.offset)) return false;
    rec.entries.set(e.offset, e);
    if (e.cid && e.from.kind === "agent" && e.from.id === this.me?.id) this.pending.delete(e.cid);
    if (e.from.kind === "visitor" && e.kind === "text") {
      rec.preview = "";
      rec.visitorTyping = false;
    }
    if (e.from.kind === "agent") rec.typing.delete(e.from.id);
    return true;
  }

  /** A live `msg`. @param {Entry} e */
  live(e) {
    const rec = this.records.get(e.conv);
    if (!rec) return;
    if (rec.recovering) {
      this.add(rec, e);
      rec.liveMax = Math.max(rec.liveMax, e.offset);
    } else {
      if (rec.loaded && e.offset <= rec.last) return;
      this.add(rec, e);
      rec.last = Math.max(rec.last, e.offset);
    }
    rec.conv = { ...rec.conv, offset: Math.max(rec.conv.offset, e.offset) };
    if (e.kind === "event") {
      const event = e.data?.event;
      if (event === "closed") rec.conv = { ...rec.conv, state: "closed" };
    }
    this.emit("entries", rec.id, e);
    this.emit("conv", rec.id);
    if (e.from.kind !== "system") this.emit("live", rec.id); // add() ended its author's draft or typing
    if (e.kind === "text" && e.from.kind === "visitor") this.emit("notify", rec.id, { kind: "message", entry: e });
  }

  /** @param {Frame} f */
  typing(f) {
    const rec = this.records.get(f.conv);
    if (!rec) return;
    if (f.from.kind === "visitor") rec.visitorTyping = f.on;
    else if (f.on) rec.typing.set(f.from.id, { name: f.from.name, note: !!f.note, at: Date.now() });
    else rec.typing.delete(f.from.id);
    this.emit("live", rec.id);
  }

  // -- actions ---------------------------------------------------------------

  /** Follow a conversation we are not in (to read it live). @param {ConvRecord} rec */
  watch(rec) {
    if (rec.following || rec.watching || rec.conv.state === "closed") return;
    rec.watching = true;
    this.conn.request({ t: "watch", conv: rec.id }).catch(() => {
      rec.watching = false;
    });
  }

  /** Take the conversation (join it). @param {ConvRecord} rec */
  join(rec) {
    rec.joining = true;
    return this.conn.request({ t: "join", conv: rec.id }).finally(() => {
      rec.joining = false;
    });
  }

  /** @param {ConvRecord} rec */
  unwatch(rec) {
    if (!rec.watching) return;
    rec.watching = false;
    if (!this.isMine(rec)) {
      rec.following = false;
      this.conn.send({ t: "unwatch", conv: rec.id });
    }
  }

  /** A conversation we neither follow nor watch (a closed one): its newest page. @param {ConvRecord} rec */
  async loadPage(rec) {
    if (rec.loaded || rec.loadingOlder) return;
    rec.loadingOlder = true;
    try {
      const reply = await this.conn.request({ t: "history", conv: rec.id, limit: PAGE });
      for (const e of reply.messages) this.add(rec, e);
      rec.older = reply.more;
      rec.loaded = true;
      rec.last = Math.max(rec.last, ...reply.messages.map((/** @type {Entry} */ e) => e.offset));
    } catch (err) {
      this.emit("problem", rec.id, err instanceof Error ? err.message : String(err));
    } finally {
      rec.loadingOlder = false;
    }
    this.emit("entries", rec.id);
  }

  /** Page backwards (§7.5). @param {ConvRecord} rec */
  async loadOlder(rec) {
    if (!rec.older || rec.loadingOlder || !rec.lowest) return;
    rec.loadingOlder = true;
    try {
      const reply = await this.conn.request({ t: "history", conv: rec.id, before: rec.lowest, limit: PAGE });
      for (const e of reply.messages) this.add(rec, e);
      rec.older = reply.more;
    } catch (err) {
      this.emit("problem", rec.id, err instanceof Error ? err.message : String(err));
    } finally {
      rec.loadingOlder = false;
    }
    this.emit("entries", rec.id, { older: true });
  }

  /**
   * Write a message (or a note): shown at once as pending, resent with the
   * same cid after a reconnect until acknowledged.
   * @param {string} conv @param {string} body @param {boolean} note
   */
  sendMessage(conv, body, note) {
    const cid = `c${Date.now().toString(36)}-${crypto.getRandomValues(new Uint32Array(2)).join("")}`;
    /** @type {Pending} */
    const p = { cid, conv, body, note, ts: Date.now() / 1000, failed: null, inflight: false };
    this.pending.set(cid, p);
    this.emit("entries", conv);
    this.transmit(p);
  }

  /** @param {Pending} p */
  transmit(p) {
    if (this.conn.state !== "online") return;
    p.inflight = true;
    const frame = { t: "send", conv: p.conv, cid: p.cid, body: p.body, ...(p.note ? { note: true } : {}) };
    this.conn
      .request(frame)
      .then((ack) => {
        p.inflight = false;
        if (ack.duplicate) this.pending.delete(p.cid); // its entry comes with recovery
        this.emit("entries", p.conv);
      })
      .catch((err) => {
        p.inflight = false;
        if (err.code) {
          p.failed = err.message; // the server refused it: say so, offer a retry
          this.emit("entries", p.conv);
        }
      });
  }

  /** @param {string} cid */
  retry(cid) {
    const p = this.pending.get(cid);
    if (!p) return;
    p.failed = null;
    this.emit("entries", p.conv);
    this.transmit(p);
  }

  /** @param {string} cid */
  discard(cid) {
    const p = this.pending.get(cid);
    this.pending.delete(cid);
    if (p) this.emit("entries", p.conv);
  }

  /** @param {string} conv */
  pendingOf(conv) {
    return [...this.pending.values()].filter((p) => p.conv === conv);
  }

  /** Everything shown is read: move my marker and tell the server. @param {ConvRecord} rec */
  markRead(rec) {
    if (!rec.loaded || rec.last <= rec.read) return;
    rec.read = rec.last;
    if (rec.following) this.conn.send({ t: "read", conv: rec.id, offset: rec.last });
    this.saveRead(rec.id, rec.last);
    this.emit("conv", rec.id);
  }

  /** @param {string} conv */
  savedRead(conv) {
    try {
      const all = JSON.parse(localStorage.getItem(READ_KEY) || "{}");
      return Number(all[conv]) || 0;
    } catch {
      return 0;
    }
  }

  /** @param {string} conv @param {number} offset */
  saveRead(conv, offset) {
    try {
      const all = JSON.parse(localStorage.getItem(READ_KEY) || "{}");
      delete all[conv];
      all[conv] = offset;
      const keys = Object.keys(all);
      for (const key of keys.slice(0, Math.max(0, keys.length - 300))) delete all[key];
      localStorage.setItem(READ_KEY, JSON.stringify(all));
    } catch {
      // storage full or disabled: markers live as long as the page
    }
  }
}

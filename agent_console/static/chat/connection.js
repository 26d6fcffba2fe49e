// The agent's WebSocket: hello, requests and replies, pacing, keep-alive and
// reconnection with exponential backoff and jitter (docs/protocol.md §3.8).
//
// The connection knows nothing of conversations: it hands every server frame
// to `onFrame` and reports its state ("connecting", "online", "offline",
// "stopped") to `onState`. Recovery of what was missed is the store's job
// (conversations.js), started by each `welcome`.

import { t } from "../i18n.js";

const BACKOFF_FIRST = 1000; // ms
const BACKOFF_MAX = 30000;
const PING_EVERY = 25000; // an application ping finds dead sockets the browser keeps
const PONG_WITHIN = 10000;
const REQUEST_TIMEOUT = 15000;
const WELCOME_WITHIN = 10000; // a socket that opens but never welcomes is a dead network

/**
 * @typedef {Record<string, any>} Frame
 * @typedef {"connecting" | "online" | "offline" | "stopped"} LinkState
 * @typedef {{
 *   url: string,
 *   token: string,
 *   refreshToken: () => Promise<string | null>,  // null: signed out; throws when unreachable
 *   onFrame: (frame: Frame) => void,
 *   onState: (state: LinkState, detail: {retryIn?: number, code?: number}) => void,
 *   status?: () => string | undefined,
 * }} Options
 */

/** A failed request: the server's `error` frame, or a local reason (code 0). */
export class RequestError extends Error {
  /** @param {number} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class Connection {
  /** @param {Options} options */
  constructor(options) {
    this.options = options;
    this.token = options.token;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {LinkState} */
    this.state = "stopped";
    this.attempt = 0;
    this.rid = 0;
    /** @type {Map<number, {resolve: (f: Frame) => void, reject: (e: Error) => void, timer: number}>} */
    this.waiting = new Map();
    /** @type {Frame[]} frames waiting for the pacer */
    this.queue = [];
    // Token bucket mirroring the server's rate limit (welcome.limits), kept at 90 %.
    this.rate = 18;
    this.burst = 54;
    this.tokens = this.burst;
    this.filled = performance.now();
    /** @type {number | undefined} */ this.pacer = undefined;
    /** @type {number | undefined} */ this.retry = undefined;
    /** @type {number | undefined} */ this.pinger = undefined;
    /** @type {number | undefined} */ this.pongTimer = undefined;
    addEventListener("online", () => this.state === "offline" && this.reconnectNow());
  }

  start() {
    this.state = "connecting";
    this.options.onState("connecting", {});
    this.open();
  }

  /** Stop for good (signing out, account gone). */
  stop() {
    this.state = "stopped";
    clearTimeout(this.retry);
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000);
    this.failAll("stopped");
  }

  reconnectNow() {
    clearTimeout(this.retry);
    if (this.state !== "stopped" && !this.ws) this.open();
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(new URL(this.options.url, `${scheme}://${location.host}`), "chatserver.json");
    this.ws = ws;
    this.state = "connecting";
    this.options.onState("connecting", {});
    clearTimeout(this.pongTimer);
    this.pongTimer = window.setTimeout(() => this.dead(ws), WELCOME_WITHIN);
    ws.onopen = () => {
      const hello = { t: "hello", id: ++this.rid, v: 1, kind: "agent", token: this.token, status: this.options.status?.() };
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      let frame;
      try {
        frame = JSON.parse(String(event.data));
      } catch {
        return;
      }
      this.received(frame);
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.dropped(event.code);
    };
  }

  /** @param {Frame} frame */
  received(frame) {
    if (frame.t === "welcome") {
      clearTimeout(this.pongTimer);
      this.attempt = 0;
      const limits = frame.limits || {};
      this.rate = 0.9 * (limits.rate_per_second || 20);
      this.burst = Math.max(1, Math.floor(0.9 * (limits.rate_burst || 60)));
      this.state = "online";
      this.options.onState("online", {});
      this.keepAlive();
    }
    if (frame.t === "pong") clearTimeout(this.pongTimer);
    const pending = frame.re != null ? this.waiting.get(frame.re) : undefined;
    if (pending) {
      this.waiting.delete(frame.re);
      clearTimeout(pending.timer);
      if (frame.t === "error") pending.reject(new RequestError(frame.code, frame.message));
      else pending.resolve(frame);
    }
    this.options.onFrame(frame);
  }

  /** @param {number} code */
  async dropped(code) {
    this.ws = null;
    clearInterval(this.pinger);
    clearTimeout(this.pongTimer);
    clearTimeout(this.pacer);
    this.pacer = undefined;
    this.queue = [];
    this.failAll(t("the connection dropped"));
    if (this.state === "stopped") return;
    if (code === 4102 || code === 4106) {
      // The token expired (12 h), or its session ended (signed out elsewhere,
      // a new password): the session cookie gets a fresh one, when it still can.
      let token;
      try {
        token = await this.options.refreshToken();
      } catch {
        token = undefined; // unreachable now: retry later with backoff
      }
      if (token === null) {
        this.state = "stopped";
        this.options.onState("stopped", { code });
        return;
      }
      if (token) {
        this.token = token;
        this.attempt = 0;
      }
    } else if (code >= 4100 && code < 4200) {
      this.state = "stopped";
      this.options.onState("stopped", { code });
      return;
    }
    const delay = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
    this.state = "offline";
    this.options.onState("offline", { retryIn: delay, code });
    this.retry = window.setTimeout(() => this.open(), delay);
  }

  keepAlive() {
    clearInterval(this.pinger);
    this.pinger = window.setInterval(() => {
      const ws = this.ws;
      if (!ws || this.state !== "online") return;
      this.send({ t: "ping" });
      clearTimeout(this.pongTimer);
      this.pongTimer = window.setTimeout(() => this.dead(ws), PONG_WITHIN);
    }, PING_EVERY);
  }

  /** No answer in time: give the socket up and reconnect. @param {WebSocket} ws */
  dead(ws) {
    if (this.ws !== ws) return;
    this.ws = null;
    ws.close(4000);
    this.dropped(1006);
  }

  /** @param {string} why */
  failAll(why) {
    for (const { reject, timer } of this.waiting.values()) {
      clearTimeout(timer);
      reject(new RequestError(0, why));
    }
    this.waiting.clear();
  }

  /**
   * Send a frame (paced under the server's rate limit). Returns its request id,
   * or null when not connected (the frame is dropped).
   * @param {Frame} frame
   * @returns {number | null}
   */
  send(frame) {
    if (this.state !== "online" || !this.ws) return null;
    const id = ++this.rid;
    this.queue.push({ ...frame, id });
    this.pump();
    return id;
  }

  /**
   * Send and wait for the reply (`ok`, `ack`, `history`, ...); an `error`
   * reply, a drop or a timeout rejects with a RequestError.
   * @param {Frame} frame
   * @returns {Promise<Frame>}
   */
  request(frame) {
    return new Promise((resolve, reject) => {
      const id = this.send(frame);
      if (id === null) {
        reject(new RequestError(0, t("not connected")));
        return;
      }
      const timer = window.setTimeout(() => {
        this.waiting.delete(id);
        reject(new RequestError(0, t("no answer in time")));
      }, REQUEST_TIMEOUT);
      this.waiting.set(id, { resolve, reject, timer });
    });
  }

  pump() {
    if (this.pacer !== undefined) return;
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.filled) / 1000) * this.rate);
    this.filled = now;
    while (this.queue.length && this.tokens >= 1 && this.ws) {
      this.tokens -= 1;
      this.ws.send(JSON.stringify(this.queue.shift()));
    }
    if (this.queue.length) {
      this.pacer = window.setTimeout(() => {
        this.pacer = undefined;
        this.pump();
      }, Math.ceil(1000 / this.rate));
    }
  }
}

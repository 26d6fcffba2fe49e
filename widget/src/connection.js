// One WebSocket to /ws in the JSON codec, kept up: reconnects with
// exponential backoff and jitter (protocol §3.8), stops for good on a
// terminal close (4100-4199), and drops a connection that went silent.
// It knows nothing of frames beyond JSON: the visitor client (client.js)
// says hello on every open and handles what comes back.

import { guard } from "./guard.js";

const BASE_DELAY = 1000;
const MAX_DELAY = 30000;
const PING_AFTER = 25000; // quiet this long: send an application ping
const DEAD_AFTER = 60000; // quiet this long: the connection is gone

/**
 * Delay before reconnect attempt `attempt` (0, 1, 2, ...): 1 s doubling up
 * to 30 s, of which a random half is taken away ("equal jitter"), so that
 * visitors dropped together do not come back together.
 * @param {number} attempt
 * @param {() => number} [random]
 */
export function backoff(attempt, random = Math.random) {
  const ceiling = Math.min(MAX_DELAY, BASE_DELAY * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/**
 * @typedef {{
 *   url: string,
 *   onOpen: () => void,
 *   onFrame: (frame: any) => void,
 *   onDown: (code: number) => void,
 *   onTerminal: (code: number, reason: string) => void,
 * }} ConnectionOptions
 */

/**
 * @param {ConnectionOptions} options
 */
export function createConnection({ url, onOpen, onFrame, onDown, onTerminal }) {
  /** @type {WebSocket | null} */
  let ws = null;
  let open = false;
  let stopped = false;
  let attempt = 0;
  let lastHeard = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retry;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let watchdog;

  /** Forget the socket without waiting for its close handshake. */
  const detach = () => {
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(1000);
    } catch {
      // already closing
    }
    ws = null;
    open = false;
  };

  /** @param {number} code */
  const down = (code) => {
    detach();
    if (stopped) return;
    onDown(code);
    clearTimeout(retry);
    retry = setTimeout(guard(connect), backoff(attempt++));
  };

  const connect = () => {
    clearTimeout(retry);
    if (stopped || ws) return;
    let sock;
    try {
      sock = new WebSocket(url, "chatserver.json");
    } catch (err) {
      stopped = true;
      onTerminal(0, String(err));
      return;
    }
    ws = sock;
    sock.onopen = guard(() => {
      open = true;
      lastHeard = Date.now();
      onOpen();
    });
    sock.onmessage = guard((event) => {
      lastHeard = Date.now();
      if (typeof event.data === "string") onFrame(JSON.parse(event.data));
    });
    sock.onclose = guard((event) => {
      if (event.code >= 4100 && event.code < 4200) {
        detach();
        stopped = true;
        onTerminal(event.code, event.reason);
      } else {
        down(event.code);
      }
    });
  };

  const tick = guard(() => {
    if (!open) return;
    const quiet = Date.now() - lastHeard;
    if (quiet > DEAD_AFTER) down(1006);
    else if (quiet > PING_AFTER) send({ t: "ping" });
  });

  /** Come back at once when the browser says the network is back. */
  const online = guard(() => {
    if (!ws && !stopped) {
      attempt = 0;
      connect();
    }
  });

  /** @param {string} text a frame already in JSON @returns {boolean} whether it was sent */
  const sendText = (text) => {
    if (!ws || !open) return false;
    ws.send(text);
    return true;
  };
  /** @param {Record<string, unknown>} frame @returns {boolean} whether it was sent */
  const send = (frame) => sendText(JSON.stringify(frame));

  return {
    start() {
      stopped = false;
      watchdog = setInterval(tick, 5000);
      addEventListener("online", online);
      connect();
    },
    send,
    sendText,
    /** The server accepted us (welcome): the next drop starts the backoff afresh. */
    healthy() {
      attempt = 0;
    },
    /** Drop this connection and open a new one now (a new hello). */
    restart() {
      if (stopped) return;
      detach();
      attempt = 0;
      connect();
    },
    /** Close and stay closed. */
    stop() {
      stopped = true;
      clearTimeout(retry);
      clearInterval(watchdog);
      removeEventListener("online", online);
      detach();
    },
  };
}

/** @typedef {ReturnType<typeof createConnection>} Connection */

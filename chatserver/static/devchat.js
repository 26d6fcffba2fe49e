// devchat.js: the minimal visitor chat box (a stand-in until the real widget exists).
// Embed: <script src="https://chat.example/static/devchat.js" data-site="SITE_KEY" defer></script>
// Classic script on purpose (document.currentScript); every entry point is guarded so
// that nothing here can ever throw into the shop's page.
(() => {
  "use strict";
  /** @param {unknown} err */
  const warn = (err) => console.warn("devchat:", err);
  /**
   * Wrap a callback so that it never throws into the page.
   * @template {unknown[]} A
   * @param {(...args: A) => void} fn
   * @returns {(...args: A) => void}
   */
  const guard = (fn) => (...args) => {
    try { fn(...args); } catch (err) { warn(err); }
  };

  guard(() => {
    const script = /** @type {HTMLScriptElement | null} */ (document.currentScript);
    const site = script?.dataset.site;
    if (!script || !site || document.getElementById("devchat")) return;
    const origin = new URL(script.src, location.href);
    const wsUrl = `${origin.protocol === "https:" ? "wss:" : "ws:"}//${origin.host}/ws`;
    const tokenKey = `devchat:${site}:token`;
    const getToken = () => { try { return localStorage.getItem(tokenKey); } catch { return null; } };
    /** @param {string} v */
    const saveToken = (v) => { try { localStorage.setItem(tokenKey, v); } catch { /* private mode */ } };

    // -- DOM ---------------------------------------------------------------
    const root = document.createElement("div");
    root.id = "devchat";
    root.innerHTML = `<style>
#devchat{--dc:#2563eb;font:14px/1.4 system-ui,sans-serif;color:#1f2937} #devchat *{box-sizing:border-box}
#devchat-button{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;padding:12px 20px;background:var(--dc);color:#fff;font:600 15px system-ui,sans-serif;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.2)}
#devchat-button[data-unread]::after{content:attr(data-unread);margin-left:8px;background:#dc2626;border-radius:9px;padding:0 6px}
#devchat-panel{position:fixed;right:20px;bottom:76px;z-index:2147483000;width:340px;max-width:calc(100vw - 40px);height:460px;max-height:calc(100vh - 100px);display:flex;flex-direction:column;background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);overflow:hidden}
#devchat-panel[hidden]{display:none}
#devchat .devchat-head{background:var(--dc);color:#fff;padding:12px 14px;font-weight:600}
#devchat .devchat-log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px;background:#f9fafb}
#devchat .devchat-msg{max-width:80%;padding:7px 10px;border-radius:10px;white-space:pre-wrap;overflow-wrap:anywhere;background:#e5e7eb;align-self:flex-start}
#devchat .devchat-msg.me{background:var(--dc);color:#fff;align-self:flex-end}
#devchat .devchat-msg.pending{opacity:.6} #devchat .devchat-msg.failed{outline:2px solid #dc2626}
#devchat .devchat-who{display:block;font-size:11px;opacity:.7}
#devchat .devchat-sys{align-self:center;font-size:12px;color:#6b7280}
#devchat .devchat-status,#devchat .devchat-typing{padding:0 12px;font-size:12px;color:#6b7280} #devchat .devchat-typing{font-style:italic}
#devchat form{display:flex;gap:6px;padding:10px;border-top:1px solid #e5e7eb}
#devchat textarea{flex:1;resize:none;height:40px;border:1px solid #d1d5db;border-radius:8px;padding:8px;font:inherit}
#devchat form button{border:0;border-radius:8px;padding:0 14px;background:var(--dc);color:#fff;font:inherit;cursor:pointer}
</style>
<div id="devchat-panel" role="dialog" aria-label="Chat" hidden>
<div class="devchat-head">Chat with us</div>
<div class="devchat-log" role="log" aria-live="polite"></div>
<div class="devchat-typing" aria-live="polite"></div>
<div class="devchat-status" aria-live="polite"></div>
<form><textarea id="devchat-input" maxlength="4000" placeholder="Write a message…" aria-label="Message"></textarea><button type="submit">Send</button></form>
</div>
<button id="devchat-button" type="button" aria-expanded="false">Chat with us</button>`;
    document.body.appendChild(root);
    /** @param {string} sel */
    const $ = (sel) => /** @type {HTMLElement} */ (root.querySelector(sel));
    const [button, panel, head, log] = ["#devchat-button", "#devchat-panel", ".devchat-head", ".devchat-log"].map($);
    const [typingLine, statusLine] = [".devchat-typing", ".devchat-status"].map($);
    const input = /** @type {HTMLTextAreaElement} */ ($("#devchat-input"));
    const form = /** @type {HTMLFormElement} */ ($("form"));

    // -- state -------------------------------------------------------------
    /** @type {WebSocket | null} */
    let ws = null;
    let ready = false; // welcome received on ws
    let [attempt, unread, rid, agentsOnline, lastTyping] = [0, 0, 0, 0, 0];
    let stopped = false;
    /** @type {string | null} the open conversation */
    let current = null;
    /** @type {Map<string, {epoch: string, last: number}>} what we hold of each conversation */
    const seen = new Map();
    /** @type {Map<string, HTMLElement>} sent messages by cid, until the server stored them */
    const pending = new Map();
    /** @type {Map<number, string>} request id -> cid of a send */
    const sends = new Map();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let typingTimer, agentTypingTimer;

    /** @param {Record<string, unknown>} frame */
    const transmit = (frame) => {
      if (ws && ready) ws.send(JSON.stringify(frame));
    };
    const randomId = () =>
      Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
    /** @param {string} text */
    const setStatus = (text) => { statusLine.textContent = text; };
    /** @param {number} position */
    const showQueue = (position) => setStatus(agentsOnline
      ? `You are number ${position} in line; an agent will be with you shortly.`
      : "No agent is online right now: leave a message and we will reply here.");

    /** A div with a class and a text (never HTML). @param {string} className @param {string} text */
    const make = (className, text) => Object.assign(document.createElement("div"), { className, textContent: text });
    /** Insert a line in time order (lines without a time stay at the end). @param {HTMLElement} el @param {number} [ts] */
    const place = (el, ts) => {
      if (ts !== undefined) el.dataset.ts = String(ts);
      const later = ts === undefined ? null
        : [...log.children].find((c) => Number(/** @type {HTMLElement} */ (c).dataset.ts ?? Infinity) > ts);
      log.insertBefore(el, later || null);
      log.scrollTop = log.scrollHeight;
      return el;
    };
    /** @param {string} text @param {number} [ts] */
    const systemLine = (text, ts) => place(make("devchat-sys", text), ts);

    /**
     * Render one history entry once (keyed by conversation and offset); true if it was new.
     * @param {{conv: string, offset: number, kind: string, from: {kind: string, name: string}, body: string, ts: number, cid?: string, data?: any}} m
     */
    const render = (m) => {
      const state = seen.get(m.conv) || { epoch: "", last: 0 };
      seen.set(m.conv, state);
      if (log.querySelector(`[data-key="${CSS.escape(`${m.conv}:${m.offset}`)}"]`)) return false;
      state.last = Math.max(state.last, m.offset);
      /** @type {HTMLElement} */
      let el;
      if (m.kind === "text") {
        el = (m.cid && pending.get(m.cid)) || document.createElement("div");
        if (m.cid) pending.delete(m.cid);
        el.className = `devchat-msg ${m.from.kind === "visitor" ? "me" : "them"}`;
        el.textContent = m.body;
        if (m.from.kind === "agent") {
          el.prepend(make("devchat-who", m.from.name));
          typingLine.textContent = "";
        }
        el.remove();
        place(el, m.ts);
      } else if (m.kind === "event") {
        const d = m.data || {};
        const name = d.agent?.name || d.to?.name || d.by?.name || "An agent";
        const text = { joined: `${name} joined`, left: `${name} left`, transferred: "The chat was transferred",
          closed: "The chat was closed" }[/** @type {string} */ (d.event)] || String(d.event);
        el = systemLine(text, m.ts);
      } else return false;
      el.dataset.key = `${m.conv}:${m.offset}`;
      return true;
    };

    /** @param {any} f a frame from the server */
    const onFrame = (f) => {
      switch (f.t) {
        case "welcome":
          [attempt, ready, agentsOnline] = [0, true, f.agents_online];
          saveToken(f.token);
          root.style.setProperty("--dc", f.site.settings.color || "#2563eb");
          head.textContent = f.site.name;
          if (!log.childElementCount && f.site.settings.greeting) systemLine(f.site.settings.greeting, 0);
          if (f.agents_online) setStatus(""); else showQueue(0);
          for (const [cid, el] of pending) send(cid, /** @type {string} */ (el.textContent));
          break;
        case "conv": {
          const c = f.conv;
          const state = seen.get(c.id) || { epoch: c.epoch, last: 0 };
          seen.set(c.id, state);
          if (c.state === "closed") {
            if (current === c.id) current = null;
            setStatus("This chat is closed. Write again to start a new one.");
          } else {
            current = c.id;
            if (c.agents.length) setStatus(""); else if (c.position) showQueue(c.position);
          }
          if (c.offset > state.last || state.epoch !== c.epoch) {
            transmit({ t: "history", conv: c.id, since: state.last, epoch: state.epoch });
          }
          state.epoch = c.epoch;
          break;
        }
        case "history":
          if (!f.complete) { // the recovery window was exceeded or the epoch changed: start over
            log.querySelectorAll(`[data-key^="${CSS.escape(f.conv)}:"]`).forEach((el) => el.remove());
            seen.set(f.conv, { epoch: f.epoch, last: 0 });
          }
          f.messages.forEach(render);
          break;
        case "msg": // a live entry; count the agent's replies while the panel is closed
          if (render(f) && f.kind === "text" && f.from.kind === "agent" && panel.hidden) {
            button.dataset.unread = String(++unread);
          }
          break;
        case "ack":
          sends.delete(f.re);
          pending.get(f.cid)?.classList.remove("pending");
          break;
        case "queue":
          agentsOnline = f.agents_online;
          if (f.conv === current) showQueue(f.position);
          break;
        case "typing":
          if (f.from?.kind !== "agent") break;
          typingLine.textContent = f.on ? `${f.from.name} is typing…` : "";
          clearTimeout(agentTypingTimer);
          if (f.on) agentTypingTimer = setTimeout(() => (typingLine.textContent = ""), 8000);
          break;
        case "error": {
          const cid = sends.get(f.re);
          if (cid) pending.get(cid)?.classList.add("failed");
          warn(f.message);
          break;
        }
      }
    };

    /** @param {string} cid @param {string} body */
    const send = (cid, body) => {
      sends.set(++rid, cid);
      transmit({ t: "send", id: rid, cid, body });
    };

    const connect = () => {
      if (ws || stopped) return;
      const sock = (ws = new WebSocket(wsUrl, "chatserver.json"));
      sock.onopen = guard(() => {
        const hello = { t: "hello", v: 1, kind: "visitor", site };
        const token = getToken();
        sock.send(JSON.stringify(token ? { ...hello, token } : hello));
      });
      sock.onmessage = guard((event) => onFrame(JSON.parse(event.data)));
      sock.onclose = guard((event) => {
        [ws, ready] = [null, false];
        if (event.code >= 4100 && event.code < 4200) { // terminal: do not retry
          stopped = true;
          setStatus("The chat is unavailable right now.");
          return;
        }
        const delay = Math.min(30000, 500 * 2 ** attempt++) * (0.5 + Math.random() / 2);
        setStatus("Connection lost, reconnecting…");
        setTimeout(guard(connect), delay);
      });
    };

    const sendTyping = () => {
      typingTimer = undefined;
      lastTyping = Date.now();
      if (current) transmit({ t: "typing", draft: input.value });
    };

    // -- events ------------------------------------------------------------
    button.addEventListener("click", guard(() => {
      panel.hidden = !panel.hidden;
      button.setAttribute("aria-expanded", String(!panel.hidden));
      button.textContent = panel.hidden ? "Chat with us" : "Close chat";
      if (!panel.hidden) {
        unread = 0;
        delete button.dataset.unread;
        connect();
        input.focus();
        log.scrollTop = log.scrollHeight;
      }
    }));
    input.addEventListener("input", guard(() => {
      if (typingTimer !== undefined) return; // a send is scheduled and will read the newest draft
      const wait = lastTyping + 100 - Date.now();
      if (wait <= 0) sendTyping();
      else typingTimer = setTimeout(guard(sendTyping), wait);
    }));
    input.addEventListener("keydown", guard((event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    }));
    form.addEventListener("submit", guard((event) => {
      event.preventDefault();
      const body = input.value.trim();
      if (!body) return;
      input.value = "";
      clearTimeout(typingTimer);
      typingTimer = undefined;
      const cid = randomId();
      pending.set(cid, place(make("devchat-msg me pending", body)));
      connect();
      send(cid, body);
    }));

    // A returning visitor may have a conversation going: reconnect right away.
    // A new one connects on first opening the chat (no visitor record per page view).
    if (getToken()) connect();
  })();
})();

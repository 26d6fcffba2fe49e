// The co-browse page (docs/cobrowse.md): the visitor's page live, ask / stop,
// and the agent's pointer and highlights. An ES module with no build step.
//
// Entry point for other console pages: `mountCobrowse(section, {conv, token})`
// where `section` holds the markup of templates/cobrowse.html (data-view,
// data-url, .cobrowse-state, [data-action=request|stop]); it returns the
// teardown. The page itself mounts `#cobrowse` on load. The replay bundle
// (/widget/replay.<hash>.js, `window.chatserverReplay`) must be loaded first.
//
// The page opens its own agent WebSocket (JSON codec), says hello with the
// token the server rendered, and `view`s the conversation's co-browse: the
// state comes back, and while the visitor streams, `cobrowse_events` frames
// (whole, or in parts to join) feed the replay. The state follows the
// conversation's `cobrowse` event entries.

import { t } from "./i18n.js";

const POINTER_EVERY = 50; // ms: at most 20 pointer frames a second
const MARK_FOR = 2000; // ms a highlight stays outlined in the view

const STATES = {
  connecting: t("Connecting…"),
  none: t("Not sharing. Ask the visitor to show you their page."),
  requested: t("Waiting for the visitor to allow it…"),
  active: t("Live: you see the visitor's page."),
  declined: t("The visitor declined."),
  ended: t("Sharing ended."),
  offline: t("Connection lost, reconnecting…"),
};

/**
 * @param {HTMLElement} section
 * @param {{conv: string, token: string, url?: string}} options
 * @returns {() => void} teardown
 */
export function mountCobrowse(section, { conv, token, url }) {
  const wsUrl = url || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  const stateLine = /** @type {HTMLElement} */ (section.querySelector(".cobrowse-state"));
  const view = /** @type {HTMLElement} */ (section.querySelector("[data-view]"));
  const urlLine = /** @type {HTMLElement} */ (section.querySelector("[data-url]"));
  const askButton = /** @type {HTMLButtonElement} */ (section.querySelector("[data-action=request]"));
  const stopButton = /** @type {HTMLButtonElement} */ (section.querySelector("[data-action=stop]"));
  const { createReplayer } = /** @type {any} */ (window).chatserverReplay;

  /** @type {WebSocket | null} */
  let ws = null;
  let rid = 0;
  let closed = false;
  let attempt = 0;
  let state = "connecting";
  let viewing = false;
  /** @type {any} */
  let replay = null;
  /** @type {{seq: number, parts: number, chunks: string[]} | null} */
  let joining = null;
  let lastPointer = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pointerTimer;
  /** @type {{x: number, y: number} | null} */
  let pointerAt = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retry;

  const send = (/** @type {Record<string, unknown>} */ frame) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ ...frame, id: ++rid }));
  };
  const show = (/** @type {string} */ next) => {
    state = next;
    stateLine.textContent = STATES[/** @type {keyof typeof STATES} */ (next)] || next;
    stateLine.classList.toggle("live", next === "active");
    askButton.hidden = !["none", "declined", "ended"].includes(next);
    stopButton.hidden = !["requested", "active"].includes(next);
    stopButton.textContent = next === "requested" ? t("Cancel") : t("Stop");
  };
  show("connecting");

  const resetView = () => {
    replay?.destroy();
    replay = null;
    joining = null;
    view.replaceChildren();
  };

  /** One rrweb event from the visitor's page. @param {any} event */
  const add = (event) => {
    if (!replay) {
      if (event.type !== 4) return; // wait for a page (Meta, then its full snapshot)
      replay = createReplayer(view, {
        live: true,
        onPage: (/** @type {{url: string}} */ page) => {
          if (page.url) urlLine.textContent = page.url;
        },
      });
    }
    replay.add(event);
  };

  /** @param {any} f */
  const events = (f) => {
    if (f.conv !== conv) return;
    if (Array.isArray(f.events)) return f.events.forEach(add);
    if (typeof f.part !== "number") return;
    if (f.part === 0) joining = { seq: f.seq, parts: f.parts, chunks: [] };
    if (!joining || joining.seq !== f.seq || joining.chunks.length !== f.part) {
      joining = null; // joined mid-batch or lost a part: wait for the next page
      return;
    }
    joining.chunks.push(f.data);
    if (joining.chunks.length < joining.parts) return;
    const text = joining.chunks.join("");
    joining = null;
    let list;
    try {
      list = JSON.parse(text);
    } catch {
      send({ t: "cobrowse", conv, action: "snapshot" });
      return;
    }
    if (Array.isArray(list)) list.forEach(add);
  };

  /** The conversation's co-browse state changed (an entry, or a reply). @param {string} next */
  const changed = (next) => {
    // The visitor allowed it: view (again: an ended co-browse let go of our
    // view), which also asks their tab for a fresh snapshot.
    if (next === "active") send({ t: "cobrowse", conv, action: "view" });
    if (next === "declined" || next === "ended") viewing = false;
    show(next);
  };

  /** @param {any} f */
  const onFrame = (f) => {
    switch (f.t) {
      case "welcome":
        attempt = 0;
        send({ t: "cobrowse", conv, action: "view" });
        return;
      case "cobrowse":
        if (f.conv !== conv) return;
        if (f.viewing) viewing = true;
        return show(f.state);
      case "cobrowse_events":
        return events(f);
      case "msg":
        if (f.conv === conv && f.kind === "event" && f.data?.event === "cobrowse") changed(f.data.state);
        if (f.conv === conv && f.kind === "event" && f.data?.event === "closed") show("ended");
        return;
      case "error":
        if (f.code === 206 || f.code === 205) stateLine.textContent = f.message;
        return;
    }
  };

  const connect = () => {
    if (closed) return;
    const sock = new WebSocket(wsUrl, "chatserver.json");
    ws = sock;
    sock.onopen = () => sock.send(JSON.stringify({ t: "hello", v: 1, kind: "agent", token, id: ++rid }));
    sock.onmessage = (event) => {
      try {
        onFrame(JSON.parse(event.data));
      } catch (err) {
        console.warn("cobrowse:", err);
      }
    };
    sock.onclose = (event) => {
      ws = null;
      viewing = false;
      if (closed) return;
      if (event.code >= 4100 && event.code < 4200) {
        stateLine.textContent = t("Disconnected: %(reason)s. Reload the page.", { reason: event.reason || String(event.code) });
        return;
      }
      show("offline");
      retry = setTimeout(connect, Math.min(30000, 1000 * 2 ** attempt++));
    };
  };

  // Pointing: where the mouse is over the page, at most every 50 ms; leaving hides it.
  const sendPointer = () => {
    pointerTimer = undefined;
    lastPointer = Date.now();
    if (pointerAt) send({ t: "cobrowse_pointer", conv, x: pointerAt.x, y: pointerAt.y });
    else send({ t: "cobrowse_pointer", conv });
  };
  const queuePointer = () => {
    if (state !== "active" || pointerTimer !== undefined) return;
    pointerTimer = setTimeout(sendPointer, Math.max(0, lastPointer + POINTER_EVERY - Date.now()));
  };
  const onMove = (/** @type {MouseEvent} */ event) => {
    const hit = replay?.at(event.clientX, event.clientY);
    pointerAt = hit ? { x: hit.x, y: hit.y } : null;
    queuePointer();
  };
  const onLeave = () => {
    pointerAt = null;
    queuePointer();
  };
  const onClick = (/** @type {MouseEvent} */ event) => {
    if (state !== "active") return;
    const hit = replay?.at(event.clientX, event.clientY);
    if (!hit || (!hit.node && !hit.selector)) return;
    send({ t: "cobrowse_highlight", conv, ...(hit.node ? { node: hit.node } : {}), ...(hit.selector ? { selector: hit.selector } : {}) });
    const box = hit.element && replay.rect(hit.element);
    if (!box) return;
    const mark = document.createElement("div");
    mark.className = "cobrowse-mark";
    Object.assign(mark.style, { left: `${box.left - 3}px`, top: `${box.top - 3}px`, width: `${box.width + 6}px`, height: `${box.height + 6}px` });
    document.body.append(mark);
    setTimeout(() => (mark.style.opacity = "0"), MARK_FOR - 600);
    setTimeout(() => mark.remove(), MARK_FOR);
  };
  const onAsk = () => send({ t: "cobrowse", conv, action: "request" });
  const onStop = () => send({ t: "cobrowse", conv, action: "stop" });

  view.addEventListener("mousemove", onMove);
  view.addEventListener("mouseleave", onLeave);
  view.addEventListener("click", onClick);
  askButton.addEventListener("click", onAsk);
  stopButton.addEventListener("click", onStop);
  connect();

  return () => {
    closed = true;
    clearTimeout(retry);
    clearTimeout(pointerTimer);
    view.removeEventListener("mousemove", onMove);
    view.removeEventListener("mouseleave", onLeave);
    view.removeEventListener("click", onClick);
    askButton.removeEventListener("click", onAsk);
    stopButton.removeEventListener("click", onStop);
    if (viewing) send({ t: "cobrowse", conv, action: "unview" });
    ws?.close(1000);
    resetView();
  };
}

const section = document.getElementById("cobrowse");
if (section && section.dataset.conv && section.dataset.token) {
  mountCobrowse(section, { conv: section.dataset.conv, token: section.dataset.token });
}

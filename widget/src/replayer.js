// A replay view of rrweb events, for the console (co-browsing's live view;
// the analysts' replay page can use it too): `@rrweb/replay` in a container,
// scaled to fit, with what a viewer needs to point at the page. Built into
// its own bundle (replay.<hash>.js, also /widget/replay.js), which sets
// `window.chatserverReplay = {createReplayer}`.
//
// Scripts never run in the replayed page: rrweb rebuilds it in an iframe
// sandboxed to `allow-same-origin` (no `allow-scripts`), so the page's own
// scripts are not even in it (the recorder drops them).

import { Replayer } from "@rrweb/replay";
import CSS from "@rrweb/replay/dist/style.css";
import { selectorOf } from "./recorder-privacy.js";
import { watchFinish } from "./replayer-finish.js";

const META = 4;
const CUSTOM = 5;

/**
 * @typedef {{type: number, timestamp: number, data?: any, delay?: number}} RrwebEvent
 * @typedef {{
 *   live?: boolean,
 *   events?: RrwebEvent[],
 *   onPage?: (page: {url: string, title?: string}) => void,
 *   onReady?: (size: {width: number, height: number}) => void,
 *   title?: string,
 * }} ReplayOptions
 *   `live` (default true): events are shown as they are added, on this
 *   machine's clock (the sender's clock does not matter); else `events`
 *   are a recording to play with `replayer.play()`. `onPage`: the page's URL
 *   changed (a new snapshot or a route change); `onReady`: a page is shown,
 *   at the sender's viewport size. `title`: the replayed page's frame's
 *   accessible name.
 */

let styled = false;
function addStyles() {
  if (styled) return;
  styled = true;
  const style = document.createElement("style");
  style.textContent = `${CSS}
.cb-stage{transform-origin:0 0;position:absolute;left:0;top:0}
.cb-stage iframe{border:0;background:#fff;display:block}
.cb-stage .replayer-mouse{z-index:1}`;
  document.head.append(style);
}

/**
 * Show rrweb events in `container` (emptied first). The returned object's
 * `replayer` is rrweb's Replayer of the current page (a new one for every
 * full snapshot in live mode), for what this API does not cover.
 * @param {HTMLElement} container
 * @param {ReplayOptions} [options]
 */
export function createReplayer(container, { live = true, events = [], onPage, onReady, title = "The visitor's page, replayed" } = {}) {
  addStyles();
  container.replaceChildren();
  const stage = document.createElement("div");
  stage.className = "cb-stage";
  container.append(stage);
  let size = { width: 0, height: 0 };
  let scale = 1;
  /** @type {Replayer | null} */
  let replayer = null;
  let offset = 0; // this machine's clock minus the sender's

  const fit = () => {
    if (!size.width || !size.height) return;
    const w = container.clientWidth || size.width;
    const h = container.clientHeight || size.height;
    scale = Math.min(1, w / size.width, h / size.height);
    stage.style.width = `${size.width}px`;
    stage.style.height = `${size.height}px`;
    stage.style.transform = `scale(${scale})`;
  };
  const observer = typeof ResizeObserver === "function" ? new ResizeObserver(fit) : null;
  observer?.observe(container);

  /** @param {RrwebEvent[]} initial */
  const make = (initial) => {
    replayer?.destroy();
    stage.replaceChildren();
    replayer = new Replayer(/** @type {any} */ (initial), {
      root: stage,
      liveMode: live,
      useVirtualDom: !live, // live: every change goes straight to the page shown
      mouseTail: false,
      triggerFocus: false,
      showWarning: false,
      UNSAFE_replayCanvas: false, // keep the sandbox: no scripts in the replayed page
    });
    // the frame's accessible name (axe: frame-title)
    replayer.iframe?.setAttribute("title", title);
    replayer.on("resize", (/** @type {any} */ d) => {
      size = { width: d.width, height: d.height };
      fit();
      onReady?.(size);
    });
    replayer.on("custom-event", (/** @type {any} */ e) => {
      if (e.data?.tag === "page" && e.data.payload?.url) onPage?.({ url: String(e.data.payload.url), title: e.data.payload.title });
    });
    if (live) replayer.startLive(Date.now());
    return replayer;
  };

  /** @type {(fn: () => void) => void} */
  let onFinish = () => {}; // live: there is no end
  if (!live) {
    onFinish = watchFinish(make(events));
    const meta = events.find((e) => e.type === META);
    if (meta?.data?.href) onPage?.({ url: meta.data.href });
  }

  return {
    /** The rrweb Replayer showing the current page (null before the first page in live mode). */
    get replayer() {
      return replayer;
    },
    /**
     * Call `fn` when the recording has played to its end (not live). Use this,
     * not the replayer's own "finish", which can come late, from an earlier
     * run (replayer-finish.js).
     * @param {() => void} fn
     */
    onFinish(fn) {
      onFinish(fn);
    },
    /** The page's size (the sender's viewport) and the scale it is shown at. */
    get size() {
      return { ...size, scale };
    },
    /**
     * One event, live: a `Meta` event starts a new page (a fresh replayer;
     * its full snapshot follows); events before the first page are dropped.
     * @param {RrwebEvent} event
     */
    add(event) {
      if (!live) return replayer?.addEvent(/** @type {any} */ (event));
      const now = Date.now();
      if (event.type === META) {
        offset = now - event.timestamp;
        make([]);
        if (event.data?.href) onPage?.({ url: String(event.data.href) });
      }
      if (!replayer) return;
      // On this clock: never in the future, so it is shown at once.
      if (event.timestamp + offset > now) offset = now - event.timestamp;
      const shifted = { ...event, timestamp: event.timestamp + offset };
      if (shifted.type === CUSTOM && shifted.data?.tag === "page") onPage?.({ url: shifted.data.payload?.url, title: shifted.data.payload?.title });
      replayer.addEvent(/** @type {any} */ (shifted));
    },
    /**
     * What is under a point of the screen (clientX/Y): the page's element,
     * its rrweb node id and a CSS selector, and the point in page (document)
     * coordinates. Null outside the page.
     * @param {number} clientX @param {number} clientY
     */
    at(clientX, clientY) {
      const iframe = stage.querySelector("iframe");
      const doc = iframe?.contentDocument;
      const win = iframe?.contentWindow;
      if (!iframe || !doc || !win || !replayer) return null;
      const rect = iframe.getBoundingClientRect();
      const x = (clientX - rect.left) / scale;
      const y = (clientY - rect.top) / scale;
      if (x < 0 || y < 0 || x > size.width || y > size.height) return null;
      const el = doc.elementFromPoint(x, y);
      const id = el ? replayer.getMirror().getId(/** @type {any} */ (el)) : -1;
      return {
        element: el,
        node: id > 0 ? id : null,
        selector: el ? selectorOf(el) : "",
        x: Math.round(x + win.scrollX),
        y: Math.round(y + win.scrollY),
      };
    },
    /** Where an element of the page is on the screen (for drawing over the view). @param {Element} el */
    rect(el) {
      const iframe = stage.querySelector("iframe");
      if (!iframe) return null;
      const outer = iframe.getBoundingClientRect();
      const r = el.getBoundingClientRect();
      return { left: outer.left + r.left * scale, top: outer.top + r.top * scale, width: r.width * scale, height: r.height * scale };
    },
    destroy() {
      observer?.disconnect();
      replayer?.destroy();
      replayer = null;
      container.replaceChildren();
    },
  };
}

/** @typedef {ReturnType<typeof createReplayer>} ReplayView */

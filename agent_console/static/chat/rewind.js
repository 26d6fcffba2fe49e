// The rewind (docs/recordings.md, "Rewind in the chat"): the last seconds of a
// recorded visitor's session, played inline in the conversation's pane with
// its signals marked, so an agent sees what just went wrong before answering.
//
// `/console/api/rewind/<conv>` says whether there is one (asked when the pane
// opens, when the visitor writes and when a new signal of theirs arrives);
// opening it loads the replay bundle once (the page's `data-replay`), then
// `/events`, and plays the window with rrweb's replayer (scripts never run in
// the replayed page: see widget/src/replayer.js). Every text goes in through
// textContent.

import { icon } from "./icons.js";
import { el, fill } from "./dom.js";
import { SIGNALS, clock, signalLabel } from "../replay-nav.js";
import { t, tn } from "../i18n.js";

const CHECK_EVERY = 2000; // ms: at most one availability question per pane this often
const TICK = 200; // ms between updates of the progress bar while open

/**
 * @typedef {{kind: string, ts: number, url?: string, text?: string, selector?: string, message?: string, method?: string, endpoint?: string, status?: number}} Mark
 * @typedef {{available: boolean, recording: string, seconds: number, from: number, to: number, marks: Mark[], replay: string | null}} Window
 */

/** @type {Promise<void> | null} */
let bundle = null;

/** Load the replay bundle once (it sets `window.chatserverReplay`). */
function loadBundle() {
  const src = document.getElementById("workspace")?.dataset.replay || "";
  if (!bundle) {
    bundle = new Promise((resolve, reject) => {
      if (!src) return reject(new Error(t("the replay could not be loaded")));
      const script = document.createElement("script");
      script.src = src;
      script.onload = () => resolve();
      script.onerror = () => {
        bundle = null;
        reject(new Error(t("the replay could not be loaded")));
      };
      document.head.append(script);
    });
  }
  return bundle;
}

/** @param {string} url */
async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error(String(body.error || r.status)), { status: r.status });
  return body;
}

export class Rewind {
  /** @param {string} convId */
  constructor(convId) {
    this.api = `/console/api/rewind/${encodeURIComponent(convId)}`;
    /** @type {Window | null} */
    this.window = null;
    this.checkedAt = 0;
    this.checking = false;
    this.again = false; // a check was asked while one ran
    this.eligible = false; // an open chat this agent is in (or an admin)
    /** @type {any} */
    this.player = null; // createReplayer's object
    this.base = 0; // recording time of the player's first event
    this.playing = false;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.ticker = undefined;

    this.count = el("span", { class: "rewind-count", hidden: true });
    this.button = el(
      "button",
      { type: "button", class: "secondary rewind-open", hidden: true, "aria-expanded": "false", onclick: () => this.toggle() },
      icon("rewind"),
      el("span", { class: "rewind-label", text: t("Rewind") }),
      this.count,
    );
    this.view = el("div", { class: "rewind-view", role: "img", "aria-label": t("The visitor's page as it was") });
    this.progress = el("div", { class: "rewind-progress" });
    this.timeline = el("div", { class: "rewind-timeline", role: "group", "aria-label": t("Rewind timeline: a marker jumps there") }, this.progress);
    this.timeline.addEventListener("click", (e) => {
      if (!this.window) return;
      const rect = this.timeline.getBoundingClientRect();
      const { from, to } = this.window;
      this.seek(from + ((e.clientX - rect.left) / rect.width) * (to - from));
    });
    this.playButton = el("button", { type: "button", class: "primary small rewind-play", text: t("Pause"), onclick: () => this.playPause() });
    this.againButton = el("button", { type: "button", class: "secondary small", text: t("From the start"), onclick: () => this.window && this.seek(this.window.from, true) });
    this.closeButton = el("button", { type: "button", class: "secondary small", text: t("Close"), onclick: () => this.close() });
    this.whole = el("a", { class: "rewind-whole", target: "_blank", rel: "noopener", text: t("The whole session"), hidden: true });
    this.state = el("span", { class: "rewind-state muted", role: "status", "aria-live": "polite" });
    this.heading = el("h3", { text: t("The visitor's last moments") });
    this.list = el("ol", { class: "rewind-marks" });
    this.panel = el(
      "section",
      { class: "rewind", hidden: true, "aria-label": t("Rewind of the visitor's session") },
      el("div", { class: "rewind-head" }, this.heading, this.state, this.whole, this.closeButton),
      el("div", { class: "rewind-body" }, this.view, el("div", { class: "rewind-side" }, el("div", { class: "rewind-controls" }, this.playButton, this.againButton), this.timeline, this.list)),
    );
  }

  /** The pane's state changed: offer the rewind where it may be had (an open
   * chat the agent is in), asking the server again when `fresh` or it was not asked yet.
   * @param {boolean} eligible @param {boolean} [fresh] */
  update(eligible, fresh = false) {
    this.eligible = eligible;
    if (!eligible) {
      this.button.hidden = true;
      if (!this.panel.hidden) this.close();
      this.window = null;
      this.checkedAt = 0;
      return;
    }
    if (fresh || !this.checkedAt) this.check();
  }

  /** The visitor wrote: their last seconds may be worth a look now. */
  visitorWrote() {
    if (this.eligible) this.check();
  }

  /** Ask the server whether there is a rewind (at most once per CHECK_EVERY). */
  check() {
    if (this.checking) {
      this.again = true;
      return;
    }
    const wait = this.checkedAt + CHECK_EVERY - Date.now();
    if (wait > 0) {
      this.checking = true;
      setTimeout(() => {
        this.checking = false;
        this.check();
      }, wait);
      return;
    }
    this.checking = true;
    this.checkedAt = Date.now();
    getJSON(this.api)
      .then((/** @type {Window} */ w) => this.offer(w))
      .catch(() => this.offer(null))
      .finally(() => {
        this.checking = false;
        if (this.again) {
          this.again = false;
          this.check();
        }
      });
  }

  /** @param {Window | null} w */
  offer(w) {
    if (w && !w.available) w = null;
    this.window = w;
    this.button.hidden = !w;
    if (!w) return;
    const signals = w.marks.filter((m) => m.kind in SIGNALS).length;
    const label = t("Rewind %(n)s s", { n: w.seconds });
    /** @type {HTMLElement} */ (this.button.querySelector(".rewind-label")).textContent = label;
    const count = tn("%(n)s signal", "%(n)s signals", signals);
    this.count.hidden = !signals;
    this.count.textContent = signals ? count : "";
    const watch = t("Watch the visitor's last %(n)s seconds", { n: w.seconds });
    const trouble = tn("%(n)s sign of trouble", "%(n)s signs of trouble", signals);
    this.button.title = signals ? `${watch}: ${trouble}` : watch;
  }

  toggle() {
    if (this.panel.hidden) this.open();
    else this.close();
  }

  async open() {
    this.panel.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    this.say(t("Loading…"));
    try {
      await loadBundle();
      const got = await getJSON(`${this.api}/events`);
      const w = /** @type {Window} */ (await getJSON(this.api)); // the marks as of now
      this.offer(w);
      if (!this.window) return this.close();
      if (!got.events.length) return this.say(t("Nothing recorded in these seconds."));
      this.show(w, got.events);
    } catch (e) {
      const why = /** @type {Error} */ (e).message;
      this.say(t("Could not load the rewind (%(why)s).", { why }));
    }
  }

  /** @param {Window} w @param {any[]} events */
  show(w, events) {
    this.destroyPlayer();
    const { createReplayer } = /** @type {any} */ (window).chatserverReplay;
    this.base = Number(events[0].timestamp);
    const title = t("The visitor's page in their last seconds");
    this.player = createReplayer(this.view, { live: false, events, title });
    const r = this.player.replayer;
    r.on("fullsnapshot-rebuilded", () => this.panel.setAttribute("data-ready", ""));
    this.player.onFinish(() => {
      this.playing = false;
      this.playButton.textContent = t("Play");
      this.say(t("Finished: this is where the visitor is now."));
    });
    this.heading.textContent = t("The visitor's last %(n)s seconds", { n: w.seconds });
    this.whole.hidden = !w.replay;
    if (w.replay) this.whole.setAttribute("href", w.replay);
    this.marks(w);
    this.seek(w.from, true);
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.tick(), TICK);
  }

  /** The timeline's markers and the list of signals, clicks and pages. @param {Window} w */
  marks(w) {
    const span = Math.max(1, w.to - w.from);
    for (const old of this.timeline.querySelectorAll(".rewind-mark")) old.remove();
    const items = [];
    for (const m of [...w.marks].sort((a, b) => a.ts - b.ts)) {
      const signal = m.kind in SIGNALS;
      const page = t("Page: %(url)s", { url: m.url || "" });
      const click = t("Click: %(what)s", { what: m.text || m.selector || "" });
      const label = signal ? signalLabel(m) : m.kind === "page" ? page : click;
      const at = `${clock(m.ts - w.from)} ${label}`;
      const mark = el("button", {
        type: "button",
        class: `rewind-mark ${signal ? `signal ${m.kind}` : m.kind}`,
        title: at,
        "aria-label": at,
        onclick: (/** @type {Event} */ e) => {
          e.stopPropagation();
          this.seek(m.ts - 1000, true); // a second before, to see it happen
        },
      });
      mark.style.left = `${((m.ts - w.from) / span) * 100}%`;
      this.timeline.append(mark);
      if (signal || m.kind === "page") {
        items.push(
          el(
            "li",
            { class: signal ? `signal ${m.kind}` : m.kind },
            el("button", { type: "button", class: "linkish", onclick: () => this.seek(m.ts - 1000, true) }, el("time", { text: clock(m.ts - w.from) }), " ", label),
          ),
        );
      }
    }
    fill(this.list, ...items);
  }

  /** Play from recording time `at`. @param {number} at @param {boolean} [play] */
  seek(at, play = this.playing) {
    if (!this.player || !this.window) return;
    const offset = Math.max(0, Math.min(at, this.window.to) - this.base);
    const r = this.player.replayer;
    this.playing = play;
    if (play) r.play(offset);
    else r.pause(offset);
    this.playButton.textContent = play ? t("Pause") : t("Play");
    this.say(play ? t("Playing.") : t("Paused."));
    this.tick();
  }

  playPause() {
    if (!this.player || !this.window) return;
    const now = this.base + this.player.replayer.getCurrentTime();
    this.seek(now >= this.window.to ? this.window.from : now, !this.playing);
  }

  tick() {
    if (!this.player || !this.window) return;
    const { from, to } = this.window;
    const now = this.base + this.player.replayer.getCurrentTime();
    this.progress.style.width = `${Math.min(100, Math.max(0, ((now - from) / Math.max(1, to - from)) * 100))}%`;
  }

  /** @param {string} text */
  say(text) {
    this.state.textContent = text;
  }

  destroyPlayer() {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.player?.destroy();
    this.player = null;
    this.panel.removeAttribute("data-ready");
  }

  close() {
    this.destroyPlayer();
    this.view.replaceChildren();
    this.panel.hidden = true;
    this.playing = false;
    this.button.setAttribute("aria-expanded", "false");
  }
}

// The replay page (recordings/templates/replay.html, docs/recordings.md): one
// recorded session played with the replay bundle's `createReplayer`
// (/widget/replay.<hash>.js, `window.chatserverReplay`, loaded first). An ES
// module with no build step; every text goes in through textContent.
//
// Events come lazily from the replay API (/console/api/recordings/<id>):
// first `from=<t>&to=<t+WINDOW>` (the server starts at the full snapshot at or
// before t), then `after_seq=<last>` slices while playback comes within AHEAD
// of the end of what is loaded (further, with "Skip inactivity", until the
// visitor's next action is loaded: rrweb can only skip to an event it holds).
// A jump inside what is loaded seeks the
// replayer; a jump outside it starts a new replayer from the server's nearest
// snapshot. Times are milliseconds on the recording's clock (rrweb's).
// The events list, the highlight, the keys and moment links: replay-nav.js.

import { SIGNALS, bindKeys, clock, eventItems, fillEvents, highlighter, linkedMoment, momentLink, signalLabel } from "./replay-nav.js";
import { t } from "./i18n.js";

const WINDOW = 60_000; // ms of recording asked for at a time
const LOOK_FOR_ACTIVITY = 30 * 60_000; // with "Skip inactivity": how far ahead to load for it
const INCREMENTAL = 3;
const AHEAD = 15_000; // ms of recording (times the speed) kept loaded ahead of playback
const TICK = 200; // ms between updates of the clock, the URL and loading

/**
 * Mount the replay of recording `id` in `section` (the markup of replay.html).
 * @param {HTMLElement} section
 * @param {string} id
 */
export async function mountReplay(section, id) {
  const api = `/console/api/recordings/${encodeURIComponent(id)}`;
  const $ = (/** @type {string} */ sel) => /** @type {HTMLElement} */ (section.querySelector(sel));
  const view = $("[data-view]");
  const playButton = /** @type {HTMLButtonElement} */ ($("[data-action=play]"));
  const speedSelect = /** @type {HTMLSelectElement} */ ($("[data-speed]"));
  const skipBox = /** @type {HTMLInputElement} */ ($("[data-skip]"));
  const clockLine = $("[data-clock]");
  const stateLine = $("[data-state]");
  const urlLine = $("[data-url]");
  const timeline = $("[data-timeline]");
  const progress = $("[data-progress]");
  const linkButton = $("[data-action=copy-link]");
  const linkOut = $("[data-link]");
  const { createReplayer } = /** @type {any} */ (window).chatserverReplay;

  const get = async (/** @type {string} */ url) => {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error(`${r.status} ${url}`);
    return r.json();
  };
  const say = (/** @type {string} */ text) => {
    stateLine.textContent = text;
  };

  const info = await get(api);
  const rec = info.recording;
  const first = Number(rec.first_ts);
  const last = Math.max(Number(rec.last_ts), first + 1);
  /** @type {{kind: string, ts: number, url?: string, text?: string, selector?: string}[]} */
  const marks = info.marks.filter((/** @type {any} */ m) => m.kind === "page" || m.kind === "click" || m.kind in SIGNALS);
  const pages = marks.filter((m) => m.kind === "page").sort((a, b) => a.ts - b.ts);

  /** @type {any} */
  let view_ = null; // createReplayer's object
  let base = first; // recording time of the replayer's first event
  let loadedUntil = first; // recording time up to which events are loaded
  let lastSeq = -1;
  let more = true;
  let loading = false;
  let playing = false;
  let generation = 0; // bumps on every rebuild: late slices of an old replayer are dropped
  // rrweb skips inactivity only up to the next user action it holds: while the
  // loaded events have none after playback (an idle visitor on a page that
  // changes by itself), more slices are loaded until they do.
  let lastActive = -Infinity; // recording time of the newest user action loaded
  /** @param {any[]} events */
  const noteActivity = (events) => {
    for (const e of events) {
      const source = e.data?.source;
      if (e.type === INCREMENTAL && source >= 1 && source <= 5) lastActive = Math.max(lastActive, e.timestamp);
    }
  };

  const now = () => {
    const r = view_?.replayer;
    return r ? base + r.getCurrentTime() : base;
  };
  const configure = () => {
    view_?.replayer?.setConfig({ speed: Number(speedSelect.value), skipInactive: skipBox.checked });
  };

  /** Start a replayer at recording time `at` (from the server's nearest snapshot). @param {number} at */
  const rebuild = async (at) => {
    const mine = ++generation;
    loading = true;
    say(t("Loading…"));
    try {
      const slice = await get(`${api}/events?from=${at}&to=${at + WINDOW}`);
      if (mine !== generation) return;
      if (!slice.events.length) {
        say(t("This part of the recording is gone."));
        return;
      }
      view_?.destroy();
      base = Number(slice.start_ts);
      loadedUntil = Number(slice.end_ts);
      lastSeq = slice.last_seq;
      more = slice.more;
      lastActive = -Infinity;
      noteActivity(slice.events);
      view_ = createReplayer(view, { live: false, events: slice.events });
      const r = view_.replayer;
      r.on("fullsnapshot-rebuilded", () => section.setAttribute("data-ready", ""));
      view_.onFinish(() => {
        if (!more) {
          playing = false;
          playButton.textContent = t("Play");
          say(t("Finished."));
        }
      });
      configure();
      const offset = Math.max(0, at - base);
      if (playing) r.play(offset);
      else r.pause(offset);
      say(playing ? t("Playing.") : t("Paused."));
    } finally {
      if (mine === generation) loading = false;
    }
  };

  /** Load the next slice when playback comes near the end of what is loaded. */
  const loadAhead = async () => {
    if (loading || !more || !view_) return;
    const speed = Number(speedSelect.value);
    const idle = skipBox.checked && lastActive <= now() && loadedUntil - now() < LOOK_FOR_ACTIVITY;
    if (now() + AHEAD * speed < loadedUntil && !idle) return;
    const mine = generation;
    loading = true;
    try {
      const slice = await get(`${api}/events?after_seq=${lastSeq}&to=${loadedUntil + WINDOW}`);
      if (mine !== generation) return;
      const r = view_.replayer;
      const stalled = playing && r.service?.state?.matches?.("paused");
      for (const event of slice.events) view_.add(event);
      noteActivity(slice.events);
      if (slice.last_seq !== null) lastSeq = slice.last_seq;
      if (slice.end_ts !== null) loadedUntil = Math.max(loadedUntil, Number(slice.end_ts));
      more = slice.more;
      if (stalled) r.play(now() - base); // it ran out of events before these came
    } finally {
      if (mine === generation) loading = false;
    }
  };

  /** Jump to recording time `at`. @param {number} at */
  const seek = (at) => {
    const to = Math.min(Math.max(at, first), last);
    if (view_ && to >= base && to <= loadedUntil) {
      const r = view_.replayer;
      if (playing) r.play(to - base);
      else r.pause(to - base);
      update();
    } else {
      rebuild(to).then(update, (e) => say(t("Could not load the recording (%(error)s).", { error: e.message })));
    }
  };

  const update = () => {
    const t = Math.min(now(), last);
    clockLine.textContent = `${clock(t - first)} / ${clock(last - first)}`;
    progress.style.width = `${((t - first) / (last - first)) * 100}%`;
    let page = pages[0];
    for (const p of pages) if (p.ts <= t + 1) page = p;
    const url = page?.url ?? "";
    if (urlLine.textContent !== url) urlLine.textContent = url;
    highlight(t);
  };

  // The timeline: a marker per page view, click and chat message.
  const marker = (/** @type {string} */ kind, /** @type {number} */ ts, /** @type {string} */ label) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = `replay-mark ${kind}`;
    b.dataset.kind = kind;
    b.dataset.ts = String(ts);
    b.style.left = `${(Math.min(Math.max(ts, first), last) - first) / (last - first) * 100}%`;
    b.title = `${clock(ts - first)} ${label}`;
    b.setAttribute("aria-label", b.title);
    b.addEventListener("click", (e) => {
      e.stopPropagation();
      seek(ts);
    });
    timeline.append(b);
  };
  for (const m of marks) {
    const label = m.kind === "page" ? t("Page: %(url)s", { url: m.url ?? "" }) : m.kind === "click" ? t("Click: %(what)s", { what: m.text || m.selector || "" }) : signalLabel(m);
    marker(m.kind in SIGNALS ? `signal ${m.kind}` : m.kind, m.ts, label);
  }
  for (const c of info.chat) marker("chat", c.ts, t("Chat (%(who)s): %(text)s", { who: c.from?.name || c.from?.kind || "", text: c.body }));
  timeline.addEventListener("click", (e) => {
    const rect = timeline.getBoundingClientRect();
    seek(first + ((e.clientX - rect.left) / rect.width) * (last - first));
  });

  const toggle = () => {
    if (!view_) return;
    const r = view_.replayer;
    playing = !playing;
    playButton.textContent = playing ? t("Pause") : t("Play");
    const at = now() >= Math.min(loadedUntil, last) && !more ? 0 : now() - base;
    if (playing) {
      if (at === 0 && base !== first) {
        seek(first);
        return;
      }
      r.play(at);
    } else r.pause();
    say(playing ? t("Playing.") : t("Paused."));
  };
  playButton.addEventListener("click", toggle);
  speedSelect.addEventListener("change", configure);
  skipBox.addEventListener("change", configure);

  // The transcripts beside the player: a line jumps there.
  for (const line of section.querySelectorAll("[data-seek]")) {
    line.addEventListener("click", () => seek(Number(/** @type {HTMLElement} */ (line).dataset.seek)));
  }
  // The events list (its rows seek themselves), the highlight as it plays, the keys.
  const items = eventItems(marks, info.chat);
  fillEvents($("[data-events]"), items, first, seek);
  const highlight = highlighter(section);
  bindKeys(document, { toggle, now: () => Math.min(now(), last), seek, events: items.map((i) => i.ts) });

  // A link to this moment (`#t=<seconds from the start>`), shown and copied.
  linkButton.addEventListener("click", () => {
    const link = momentLink(location, (Math.min(now(), last) - first) / 1000);
    linkOut.textContent = link;
    navigator.clipboard?.writeText(link).then(
      () => say(t("Link copied.")),
      () => say(t("Copy the link shown.")),
    );
  });
  // Opening such a link, or changing its `#t=` on this page, seeks there.
  const linked = () => {
    const t = linkedMoment(location);
    return t === null ? null : first + t * 1000;
  };
  window.addEventListener("hashchange", () => {
    const t = linked();
    if (t !== null) seek(t);
  });

  // `#t=`/`?t=` (seconds), or `?at=<ms on the recording's clock>` (the archive's
  // links) open the replay at that moment.
  const at = linked() ?? Number(new URLSearchParams(location.search).get("at"));
  const start = Number.isFinite(at) && at > first ? Math.min(at, last) : first;
  section.dataset.start = String(start);
  await rebuild(start);
  playButton.disabled = false;
  update();
  setInterval(() => {
    update();
    loadAhead().catch((e) => say(t("Could not load the recording (%(error)s).", { error: e.message })));
  }, TICK);
}

const section = document.getElementById("replay");
if (section?.dataset.rec) {
  mountReplay(section, section.dataset.rec).catch((e) => {
    const state = section.querySelector("[data-state]");
    if (state) state.textContent = t("Could not load the recording (%(error)s).", { error: e.message });
  });
}

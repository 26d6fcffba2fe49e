// Finding one's way in a replay (recordings/templates/replay.html,
// docs/recordings.md "Analyst pages"): the events list beside the player, the
// highlight of the current event and message as it plays, the keyboard, and
// links to a moment (`#t=83` or `?t=83`, seconds from the start). Used by
// replay.js; no I/O here, every text goes in through textContent.

import { number, t } from "./i18n.js";

const MAX_EVENTS = 1000; // rows in the events list (a recording keeps up to 10,000 clicks)
const STEP = 5000; // ms that the left and right arrows seek
const NEAR = 1000; // ms: shift+left from within this of an event goes to the one before it

/** @param {number} ms */
export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/**
 * Seconds from a link's `t`: `83`, `83.5`, `1:23` or `1:01:23`; null if it is none of them.
 * @param {string | null | undefined} raw
 */
export function parseMoment(raw) {
  const text = (raw ?? "").trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  if (/^(\d+:)?\d+:[0-5]\d$/.test(text)) return text.split(":").reduce((acc, part) => acc * 60 + Number(part), 0);
  return null;
}

/**
 * The moment (seconds from the start) a page address asks for: `#t=`, else `?t=`.
 * @param {{search: string, hash: string}} where
 */
export function linkedMoment(where) {
  const hash = new URLSearchParams(where.hash.replace(/^#/, ""));
  return parseMoment(hash.get("t")) ?? parseMoment(new URLSearchParams(where.search).get("t"));
}

/**
 * The address of this page at `seconds` from the start: the page's own query
 * (`conv` kept, an older `t` or `at` dropped) and `#t=<seconds>`.
 * @param {{origin: string, pathname: string, search: string}} where
 * @param {number} seconds
 */
export function momentLink(where, seconds) {
  const query = new URLSearchParams(where.search);
  query.delete("t");
  query.delete("at");
  const rest = query.toString();
  return `${where.origin}${where.pathname}${rest ? `?${rest}` : ""}#t=${Math.max(0, Math.floor(seconds))}`;
}

/**
 * @typedef {{ts: number, kind: "page" | "click" | "chat" | "signal", label: string}} Item
 */

/** The recordings' signals (recordings/signals.py), as the events list and the timeline name them. */
export const SIGNALS = {
  rage: t("Rage click"),
  dead: t("Dead click"),
  error: t("JavaScript error"),
  request: t("Failed request"),
  abandon: t("Abandoned form"),
};

/**
 * A signal mark in words.
 * @param {{kind: string, selector?: string, text?: string, message?: string, method?: string, endpoint?: string, status?: number, url?: string}} m
 */
export function signalLabel(m) {
  const name = SIGNALS[/** @type {keyof typeof SIGNALS} */ (m.kind)] || m.kind;
  if (m.kind === "error") return `${name}: ${m.message || ""}`;
  const noAnswer = t("no answer");
  if (m.kind === "request") return `${name}: ${m.method || ""} ${m.endpoint || ""} (${m.status || noAnswer})`;
  if (m.kind === "abandon") return `${name}: ${m.url || ""}`;
  return `${name}: ${m.text || m.selector || ""}`;
}

/**
 * The rows of the events list: page views, clicks, signals and chat messages, in time order.
 * @param {{kind: string, ts: number, url?: string, title?: string, text?: string, selector?: string, message?: string, method?: string, endpoint?: string, status?: number}[]} marks
 * @param {{ts: number, body: string, from?: {kind?: string, name?: string | null}}[]} chat
 * @returns {Item[]}
 */
export function eventItems(marks, chat) {
  /** @type {Item[]} */
  const items = [];
  for (const m of marks) {
    if (m.kind === "page") items.push({ ts: m.ts, kind: "page", label: m.title || m.url || "" });
    else if (m.kind === "click") items.push({ ts: m.ts, kind: "click", label: m.text || m.selector || "" });
    else if (m.kind in SIGNALS) items.push({ ts: m.ts, kind: "signal", label: signalLabel(m) });
  }
  for (const c of chat) {
    items.push({ ts: c.ts, kind: "chat", label: `${c.from?.name || c.from?.kind || ""}: ${c.body}` });
  }
  return items.sort((a, b) => a.ts - b.ts);
}

const KIND = { page: t("Page"), click: t("Click"), chat: t("Chat"), signal: t("Signal") };

/**
 * Fill the events list `list` (an `<ol>`): one button per item, which seeks there.
 * @param {HTMLElement} list
 * @param {Item[]} items
 * @param {number} first recording time of the start
 * @param {(at: number) => void} seek
 */
export function fillEvents(list, items, first, seek) {
  for (const item of items.slice(0, MAX_EVENTS)) {
    const li = document.createElement("li");
    li.className = item.kind;
    li.dataset.at = String(item.ts);
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.seek = String(item.ts);
    const time = document.createElement("time");
    time.textContent = clock(item.ts - first);
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = KIND[item.kind];
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = item.label;
    b.append(time, " ", kind, " ", label);
    b.addEventListener("click", () => seek(item.ts));
    li.append(b);
    list.append(li);
  }
  if (items.length > MAX_EVENTS) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = t("The first %(shown)s of %(total)s events (the timeline has them all).", { shown: number(MAX_EVENTS), total: number(items.length) });
    list.append(li);
  }
}

/**
 * In each list of `root` (the events and every transcript), mark the row that
 * is playing: the last one whose `data-at` is at or before `t`.
 * @param {HTMLElement} root
 * @returns {(t: number) => void}
 */
export function highlighter(root) {
  const lists = [...root.querySelectorAll("ol")].map((ol) => ({
    rows: /** @type {HTMLElement[]} */ ([...ol.querySelectorAll("li[data-at]")]),
    /** @type {HTMLElement | null} */
    current: null,
  }));
  return (t) => {
    for (const list of lists) {
      /** @type {HTMLElement | null} */
      let now = null;
      for (const row of list.rows) {
        if (Number(row.dataset.at) <= t + 1) now = row;
        else break;
      }
      if (now === list.current) continue;
      list.current?.classList.remove("current");
      list.current?.removeAttribute("aria-current");
      list.current = now;
      if (now) {
        now.classList.add("current");
        now.setAttribute("aria-current", "true");
        now.scrollIntoView({ block: "nearest" });
      }
    }
  };
}

/**
 * The replay's keys on `doc`: space plays or pauses, left and right seek 5 s,
 * with shift the previous or next event. Keys typed in a form field are left
 * alone, and so is space on a button or link (it presses them).
 * @param {Document} doc
 * @param {{toggle: () => void, now: () => number, seek: (at: number) => void, events: number[]}} player
 * @returns {() => void} the removal
 */
export function bindKeys(doc, player) {
  /** @param {KeyboardEvent} e */
  const onKey = (e) => {
    const target = /** @type {HTMLElement | null} */ (e.target instanceof HTMLElement ? e.target : null);
    if (e.altKey || e.ctrlKey || e.metaKey || target?.isContentEditable) return;
    if (target?.closest("input, select, textarea")) return;
    if (e.key === " ") {
      if (target?.closest("button, a, summary")) return;
      e.preventDefault();
      player.toggle();
    } else if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      e.preventDefault();
      const t = player.now();
      const forward = e.key === "ArrowRight";
      if (!e.shiftKey) player.seek(t + (forward ? STEP : -STEP));
      else {
        /** @type {number | undefined} */
        let next;
        if (forward) next = player.events.find((at) => at > t + 1);
        else for (const at of player.events) if (at < t - NEAR) next = at;
        if (next !== undefined) player.seek(next);
      }
    }
  };
  doc.addEventListener("keydown", onKey);
  return () => doc.removeEventListener("keydown", onKey);
}

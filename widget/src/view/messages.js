// The conversation: messages as text (links made clickable by linkify.js),
// lifecycle events as centred lines, the visitor's unsent messages last.
// Elements are keyed and reused, so re-rendering never rebuilds the list.

import { h, listen, setAttr, setText } from "./dom.js";
import { linkify } from "./linkify.js";

/** @typedef {import("../types.js").State} State */
/** @typedef {import("../types.js").Entry} Entry */
/** @typedef {import("../i18n/index.js").Translate} Translate */

/**
 * `fix`: what the button of a failed item does (send again, or forget an upload).
 * @typedef {{key: string, kind: "text", mine: boolean, body: string, ts: number, name: string,
 *   status: string, cid?: string, failed: boolean, pending: boolean,
 *   file?: import("../types.js").FileInfo, fix?: "retry" | "dismiss"}
 *   | {key: string, kind: "line", text: string, ts?: number}
 *   | {key: string, kind: "greet", text: string}} Item
 */

/** What an event entry says. @param {Entry} e @param {Translate} t */
export function eventText(e, t) {
  const d = e.data || {};
  const someone = t("someone");
  switch (d.event) {
    case "joined":
      return t("joined", { name: d.agent?.name || someone });
    case "left":
      return t("left", { name: d.agent?.name || someone });
    case "transferred":
      return d.to ? t("transferred", { name: d.to.name || someone }) : t("transferred_team");
    case "closed":
      return t("ended");
    case "cobrowse": {
      const key = { requested: "cb_requested", active: "cb_started", declined: "cb_declined", ended: "cb_ended" }[String(d.state)];
      return key ? t(key, { name: d.agent?.name || someone }) : "";
    }
    default:
      return "";
  }
}

/** The list to show, in order. @param {State} s @param {Translate} t @returns {Item[]} */
export function items(s, t) {
  /** @type {Item[]} */
  const out = [];
  const conv = s.conv;
  // The last of the visitor's stored messages in the current conversation carries "Sent"/"Read".
  const mine = s.entries.filter((e) => e.kind === "text" && e.from.kind === "visitor" && conv && e.conv === conv.id);
  const lastMine = mine[mine.length - 1];
  for (const e of s.entries) {
    if (e.kind === "text") {
      const me = e.from.kind === "visitor";
      const status = e === lastMine ? t(s.agentRead >= e.offset ? "read" : "sent") : "";
      const file = e.data?.attachment;
      out.push({ key: me && e.cid ? `me:${e.cid}` : `${e.conv}:${e.offset}`, kind: "text", mine: me, body: e.body, ts: e.ts,
        name: me ? t("you") : e.from.name || t("agent"), status, failed: false, pending: false, file: file?.url ? file : undefined });
      const left = e.data?.offline;
      if (me && left) out.push({ key: `${e.conv}:${e.offset}:sent`, kind: "line", text: t("offline_thanks", { email: left.email }) });
    } else if (e.kind === "event") {
      const text = eventText(e, t);
      if (text) out.push({ key: `${e.conv}:${e.offset}`, kind: "line", text, ts: e.ts });
    }
  }
  const stored = new Set(s.entries.map((e) => e.cid));
  for (const o of s.outbox) {
    if (stored.has(o.cid)) continue;
    out.push({ key: `me:${o.cid}`, kind: "text", mine: true, body: o.body, ts: o.ts, name: t("you"), cid: o.cid,
      status: o.state === "failed" ? t("failed") : o.state === "sent" ? t("sent") : t("sending"),
      failed: o.state === "failed", pending: o.state === "pending", fix: "retry" });
  }
  for (const u of s.uploads) {
    const failed = u.state === "failed";
    const item = { key: `up:${u.cid}`, kind: "text", mine: true, body: u.name, ts: u.ts, name: t("you"), cid: u.cid,
      status: failed ? t(u.error || "upload_failed") : t("uploading"), failed, pending: !failed, fix: "dismiss" };
    // A refused file keeps its place in time: newer messages go below it.
    const after = failed ? out.findIndex((o) => "ts" in o && o.ts !== undefined && o.ts > u.ts) : -1;
    if (after < 0) out.push(/** @type {Item} */ (item));
    else out.splice(after, 0, /** @type {Item} */ (item));
  }
  const greeting = s.site?.settings.greeting;
  if (greeting && !out.length) out.push({ key: "greet", kind: "greet", text: greeting });
  return out;
}

/** "120 KB", "2.5 MB". @param {number} n */
const bytes = (n) => (n < 1048576 ? `${Math.max(1, Math.round(n / 1024))} KB` : `${(n / 1048576).toFixed(1)} MB`);

/** A file in a message: an image as a thumbnail that opens the full image, a PDF as a link.
 * @param {import("../types.js").FileInfo} f @param {Translate} t */
function fileNode(f, t) {
  const attrs = { href: f.url, target: "_blank", rel: "noopener noreferrer" };
  if (f.type.startsWith("image/")) {
    return h("a", { ...attrs, class: "img", "aria-label": t("image", { name: f.name }) }, h("img", { src: f.url, alt: f.name }));
  }
  // The server sends a PDF as a download (Content-Disposition: attachment), not to a tab.
  return h("a", { href: f.url, rel: "noopener noreferrer", download: f.name, class: "doc" }, `${f.name} (PDF, ${bytes(f.size)})`, h("span", { class: "sr" }, ` ${t("download")}`));
}

/** "14:03", or "12 Mar, 14:03" when not today. @param {number} ts @param {string} locale */
function when(ts, locale) {
  const date = new Date(ts * 1000);
  const today = new Date().toDateString() === date.toDateString();
  try {
    return new Intl.DateTimeFormat(locale, today ? { hour: "2-digit", minute: "2-digit" }
      : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }).format(date);
  } catch {
    return date.toLocaleTimeString();
  }
}

/**
 * @param {HTMLElement} parent
 * @param {import("./context.js").Context} ctx
 * @returns {() => void} teardown
 */
export function mountMessages(parent, ctx) {
  const list = h("ol", { class: "log", tabindex: "0" });
  parent.append(list);
  /** @type {Map<string, HTMLElement>} */
  const nodes = new Map();

  /** @param {Item} item @param {string} locale */
  const create = (item, locale) => {
    if (item.kind === "line") return h("li", { class: "sys" }, item.text);
    if (item.kind === "greet") return h("li", { class: "msg greet" }, h("div", { class: "b" }, item.text));
    const time = h("time", { datetime: new Date(item.ts * 1000).toISOString() }, when(item.ts, locale));
    const who = h("span", { class: "sr" }, `${item.name}: `);
    return h("li", { class: item.mine ? "msg me" : "msg them" }, who,
      h("div", { class: "b" }, ...(item.file ? [fileNode(item.file, ctx.t)] : linkify(item.body, ctx.t("link")))),
      h("div", { class: "meta" }, item.mine ? "" : `${item.name} · `, time, h("span", { class: "st" })));
  };

  /** @param {HTMLElement} el @param {Item} item */
  const update = (el, item) => {
    if (item.kind !== "text") return;
    el.classList.toggle("pending", item.pending);
    el.classList.toggle("failed", item.failed);
    const st = /** @type {HTMLElement} */ (el.querySelector(".st"));
    setText(st, item.status ? ` · ${item.status}` : "");
    const retry = el.querySelector("button");
    if (item.failed && !retry && item.cid) {
      const cid = item.cid;
      const fix = item.fix || "retry";
      const b = h("button", { type: "button" }, ctx.t(fix));
      listen(b, "click", () => ctx.actions[fix](cid));
      st.after(b);
    } else if (!item.failed && retry) retry.remove();
  };

  /** @param {State} s */
  const render = (s) => {
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    setAttr(list, "aria-label", ctx.t("messages"));
    const want = items(s, ctx.t);
    const keep = new Set(want.map((i) => i.key));
    for (const [key, el] of nodes) {
      if (!keep.has(key)) {
        el.remove();
        nodes.delete(key);
      }
    }
    /** @type {ChildNode | null} */
    let cursor = list.firstChild;
    for (const item of want) {
      let el = nodes.get(item.key);
      if (!el) nodes.set(item.key, (el = create(item, s.locale)));
      update(el, item);
      if (el === cursor) cursor = cursor.nextSibling;
      else list.insertBefore(el, cursor);
    }
    if (nearBottom || s.outbox.length) {
      list.scrollTop = list.scrollHeight;
      // again once the other views have rendered: the rating box may take room
      setTimeout(() => (list.scrollTop = list.scrollHeight), 0);
    }
  };
  render(ctx.store.get());
  const stop = ctx.store.subscribe((s, prev) => {
    if (s.entries !== prev.entries || s.outbox !== prev.outbox || s.uploads !== prev.uploads || s.agentRead !== prev.agentRead || s.site !== prev.site || s.conv !== prev.conv) {
      render(s);
    }
    if (s.locale !== prev.locale) {
      for (const el of nodes.values()) el.remove();
      nodes.clear();
      render(s);
    }
    if (s.open && !prev.open) list.scrollTop = list.scrollHeight;
  });
  return () => {
    stop();
    list.remove();
  };
}

// Proactive messages (protocol §6.3): a message a trigger wrote (`data.auto`)
// that the visitor has not seen pops up next to the launcher as a preview
// bubble while the chat window is closed; clicking it opens the window, its
// × dismisses it for this tab. The `open` frame of a trigger opens the
// window itself (widget.js). Text goes in as text, never as markup.

import { addStyles, h, listen, setAttr, setText } from "./dom.js";

/** @typedef {import("../types.js").State} State */
/** @typedef {import("../types.js").Entry} Entry */

const CSS = `
.teaser{pointer-events:auto;position:fixed;z-index:2147483000;right:20px;bottom:92px;max-width:300px;display:flex;align-items:flex-start;gap:6px;padding:12px 10px 12px 14px;background:var(--b);color:var(--t);border-radius:14px;border-bottom-right-radius:4px;box-shadow:0 8px 28px rgba(0,0,0,.22);text-align:left;cursor:pointer}
.teaser .t{flex:1;min-width:0;display:flex;flex-direction:column;gap:2px}
.teaser .n{font-size:13px;font-weight:600;color:var(--m)}
.teaser .x{white-space:pre-wrap;overflow-wrap:anywhere;display:-webkit-box;-webkit-line-clamp:4;-webkit-box-orient:vertical;overflow:hidden}
.teaser .c{flex:none;width:28px;height:28px;border-radius:6px;font-size:18px;line-height:28px;color:var(--m)}
.teaser:focus-visible,.teaser .c:focus-visible{outline:3px solid var(--k);outline-offset:2px}
`;

/** The newest proactive message the visitor has not seen, if any. @param {State} s @returns {Entry | null} */
export function unseenProactive(s) {
  const conv = s.conv;
  if (!conv) return null;
  for (let i = s.entries.length - 1; i >= 0; i--) {
    const e = s.entries[i];
    if (e.conv !== conv.id || e.offset <= s.seen || e.from.kind === "visitor") return null;
    if (e.kind === "text" && e.data?.auto) return e;
  }
  return null;
}

/**
 * @param {HTMLElement} parent the widget's box (in its shadow root)
 * @param {import("./context.js").Context} ctx
 * @param {import("../storage.js").KeyValue} session per-tab storage (dismissed previews)
 * @returns {() => void} teardown
 */
export function mountTeaser(parent, ctx, session) {
  const unstyle = addStyles(parent, CSS);
  const name = h("span", { class: "n" });
  const text = h("span", { class: "x" });
  const close = h("button", { type: "button", class: "c" }, "×");
  const box = h("div", { class: "teaser", role: "status", "aria-live": "polite", tabindex: "0", hidden: true },
    h("span", { class: "t" }, name, text), close);
  parent.append(box);
  /** @type {string} */
  let shownKey = "";

  /** @param {State} s */
  const render = (s) => {
    const e = s.open ? null : unseenProactive(s);
    const key = e ? `${e.conv}:${e.offset}` : "";
    if (!e || session.get("teaser") === key) {
      box.hidden = true;
      shownKey = "";
      return;
    }
    if (key === shownKey) return;
    shownKey = key;
    setText(name, e.from.name || ctx.t("agent"));
    setText(text, e.body);
    setAttr(close, "aria-label", ctx.t("close"));
    box.hidden = false;
  };

  render(ctx.store.get());
  const stops = [
    ctx.store.subscribe((s, prev) => {
      if (s.entries !== prev.entries || s.open !== prev.open || s.seen !== prev.seen || s.conv !== prev.conv) render(s);
    }),
    listen(box, "click", () => ctx.actions.open()),
    listen(box, "keydown", (/** @type {KeyboardEvent} */ event) => {
      if (event.target === box && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        ctx.actions.open();
      }
    }),
    listen(close, "click", (/** @type {Event} */ event) => {
      event.stopPropagation();
      session.set("teaser", shownKey);
      render(ctx.store.get());
    }),
  ];
  return () => {
    stops.forEach((stop) => stop());
    box.remove();
    unstyle();
  };
}

// The launcher: a round button in the corner with the unread badge.

import { h, listen, setAttr, setText } from "./dom.js";
import { icon, ICONS, unreadCount } from "./context.js";

/**
 * @param {HTMLElement} parent
 * @param {import("./context.js").Context} ctx
 * @returns {() => void} teardown
 */
export function mountBubble(parent, ctx) {
  const badge = h("span", { class: "badge", "aria-hidden": "true", hidden: true });
  const button = h("button", { type: "button", class: "bubble", "aria-controls": "chatserver-panel" }, icon(ICONS.chat), badge);
  parent.append(button);

  /** @param {import("../types.js").State} s */
  const render = (s) => {
    const n = unreadCount(s);
    badge.hidden = n === 0;
    setText(badge, n > 9 ? "9+" : String(n));
    const label = s.open ? ctx.t("close") : ctx.t("open");
    setAttr(button, "aria-label", n ? `${label}, ${ctx.t("unread", { n })}` : label);
    setAttr(button, "aria-expanded", String(s.open));
    button.replaceChildren(icon(s.open ? ICONS.down : ICONS.chat), badge);
  };
  render(ctx.store.get());
  const stops = [
    ctx.store.subscribe((s, prev) => {
      if (s.open !== prev.open || s.entries !== prev.entries || s.seen !== prev.seen || s.conv !== prev.conv || s.locale !== prev.locale) render(s);
    }),
    listen(button, "click", () => ctx.actions.toggle()),
  ];
  return () => {
    stops.forEach((stop) => stop());
    button.remove();
  };
}

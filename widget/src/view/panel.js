// The chat window: a header (agent name and avatar, or the site's name, and
// what happens next), the messages, the satisfaction prompt of a closed chat,
// the agent's typing line, the connection status and the composer, or the
// offline form when nobody is online. Escape closes it and focus returns to
// the bubble; in the full-screen layout (narrow screens) Tab and Shift+Tab
// stay inside it.

import { h, listen, setText } from "./dom.js";
import { icon, ICONS, initials, showForm } from "./context.js";
import { mountComposer } from "./composer.js";
import { mountMessages } from "./messages.js";
import { mountOffline } from "./offline.js";
import { mountRating } from "./rating.js";

/** The layout where the window fills the screen (styles.js has the same query). */
export const FULL_SCREEN = "(max-width:520px),(max-height:520px)";

/** What Tab can reach in `root`, in order. @param {HTMLElement} root */
const tabbable = (root) =>
  /** @type {HTMLElement[]} */ ([...root.querySelectorAll("button,textarea,input,a[href],[tabindex='0']")]).filter(
    (el) => !(/** @type {HTMLButtonElement} */ (el).disabled) && el.getClientRects().length > 0,
  );

/** @typedef {import("../types.js").State} State */

/**
 * The line under the title: queue position, away, or who you talk to.
 * @param {State} s @param {import("../i18n/index.js").Translate} t
 */
function subtitle(s, t) {
  const conv = s.conv;
  if (conv && conv.state === "active" && conv.agents.length) return s.site?.name || t("title");
  if (conv && conv.state === "queued" && s.agentsOnline > 0 && conv.position) return t("queue", { n: conv.position });
  if (showForm(s)) return "";
  if (s.agentsOnline > 0) return t("replying");
  return conv && conv.offline ? t("away_mail") : t("away"); // the form said: by e-mail
}

/** The connection line, or "" when all is well. @param {State} s @param {import("../i18n/index.js").Translate} t */
function status(s, t) {
  if (s.link === "offline") return t("reconnecting");
  if (s.link === "connecting") return t("connecting");
  if (s.conv && s.conv.state === "closed" && !showForm(s)) return t("closed_hint");
  return "";
}

/**
 * @param {HTMLElement} parent
 * @param {import("./context.js").Context} ctx
 * @returns {() => void} teardown
 */
export function mountPanel(parent, ctx) {
  const title = h("h2", { id: "chatserver-title" });
  const sub = h("p");
  const avatar = h("span", { class: "avatar", "aria-hidden": "true", hidden: true });
  const closeButton = h("button", { type: "button" }, icon(ICONS.close));
  const typing = h("div", { class: "typing" });
  const statusLine = h("div", { class: "status", role: "status" });
  const panel = h(
    "section",
    { class: "panel", id: "chatserver-panel", role: "dialog", "aria-labelledby": "chatserver-title", hidden: true },
    h("header", { class: "head" }, avatar, h("div", { class: "who" }, title, sub), closeButton),
  );
  parent.append(panel);
  const stopMessages = mountMessages(panel, ctx);
  const stopRating = mountRating(panel, ctx);
  panel.append(typing, statusLine);
  const composer = mountComposer(panel, ctx);
  const form = mountOffline(panel, ctx);

  /** @param {State} s @param {State | null} prev */
  const render = (s, prev) => {
    const t = ctx.t;
    const conv = s.conv;
    const agent = conv && conv.state !== "closed" && conv.agents.length ? conv.agents[conv.agents.length - 1] : null;
    setText(title, agent ? agent.name : s.site?.name || t("title"));
    setText(sub, subtitle(s, t));
    avatar.hidden = !agent;
    setText(avatar, agent ? initials(agent.name) : "");
    closeButton.setAttribute("aria-label", t("minimize"));
    setText(typing, s.typing != null ? t("typing", { name: s.typing || t("agent") }) : "");
    typing.hidden = s.typing == null;
    const line = status(s, t);
    setText(statusLine, line);
    statusLine.hidden = !line;
    panel.hidden = !s.open;
    parent.classList.toggle("open", s.open);
    if (s.open && prev && !prev.open) (showForm(s) ? form : composer).focus(); // not on page load: never steal focus
  };
  render(ctx.store.get(), null);

  const minimize = () => {
    ctx.actions.close();
    /** @type {HTMLElement | null} */ (parent.querySelector(".bubble"))?.focus();
  };
  const stops = [
    ctx.store.subscribe(render),
    listen(closeButton, "click", minimize),
    listen(panel, "keydown", (event) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        minimize();
      } else if (event.key === "Tab" && (matchMedia(FULL_SCREEN).matches || parent.classList.contains("fs"))) {
        // Full screen: the page behind is covered, so focus must not go there.
        const items = tabbable(panel);
        const at = items.indexOf(/** @type {HTMLElement} */ (/** @type {ShadowRoot} */ (panel.getRootNode()).activeElement));
        const edge = event.shiftKey ? at <= 0 : at === items.length - 1 || at < 0;
        if (edge && items.length) {
          event.preventDefault();
          items[event.shiftKey ? items.length - 1 : 0].focus();
        }
      }
    }),
  ];
  return () => {
    stops.forEach((stop) => stop());
    stopMessages();
    stopRating();
    composer.teardown();
    form.teardown();
    panel.remove();
  };
}

// The preview bundle's entry (preview.<hash>.js), for the admin site page
// (agent_console/static/site-preview.js, docs/admin.md): the widget's open
// window and launcher drawn by the widget's own views (view/panel.js,
// view/bubble.js, the CSS of view/styles.js and the colours of
// view/colors.js) from settings being edited, in a shadow root inside the
// page, without a connection. It is `inert`: a picture, not a second chat.

import { addLanguages, BUILT_IN, translator } from "./i18n/index.js";
import { LANGS } from "./i18n/langs.js";
import { createStore } from "./store.js";
import { mountBubble } from "./view/bubble.js";
import { palette } from "./view/colors.js";
import { addStyles } from "./view/dom.js";
import { mountPanel } from "./view/panel.js";
import { CSS } from "./view/styles.js";

// The widget is fixed to the corner of the shop's page; here, to a frame of its size.
const FRAME = ".w{position:relative;height:720px;max-width:440px;overflow:hidden;border-radius:12px;background:repeating-linear-gradient(45deg,#f3f4f6 0 12px,#e5e7eb 12px 24px)}.bubble,.panel{position:absolute}";

/**
 * What the preview shows: the site's name, colour, greeting and language as
 * the form holds them, and the theme of the script tag (`light`, `dark`, `auto`).
 * @typedef {{name: string, color: string, greeting: string, language: string, theme: string}} Look
 */

/**
 * Draw the widget's open window for `look` in `container`; `update` redraws it.
 * @param {HTMLElement} container
 * @param {Look} look
 */
export function mountPreview(container, look) {
  addLanguages(LANGS);
  const host = document.createElement("div");
  host.inert = true;
  const shadow = host.attachShadow({ mode: "open" });
  const unstyle = addStyles(shadow, CSS + FRAME);
  const box = document.createElement("div");
  shadow.append(box);
  container.append(host);
  const store = createStore({
    link: "online", site: null, agentsOnline: 1, conv: null, entries: [], outbox: [], uploads: [], form: "idle",
    mailed: "", typing: null, agentRead: 0, seen: 0, open: true, locale: "en", maxChars: 4000,
  });
  let t = translator("en", {});
  const none = () => {};
  const actions = {
    open: none, close: none, toggle: none, send: none, draft: none, retry: none, offline: none, rate: none,
    transcript: none, attach: none, dismiss: none, emoji: () => Promise.reject(new Error("a preview")),
  };
  const ctx = { store, actions, get t() { return t; } };
  const stops = [mountPanel(box, ctx), mountBubble(box, ctx)];

  /** @param {Look} next */
  const update = (next) => {
    const { brand, text } = palette(next.color);
    box.className = next.theme === "dark" || next.theme === "auto" ? `w open ${next.theme}` : "w open";
    box.style.setProperty("--c", brand);
    box.style.setProperty("--on", text);
    const locale = next.language in BUILT_IN ? next.language : "en";
    t = translator(locale, {});
    const settings = { typing_preview: true, routing: "auto", greeting: next.greeting.trim(), language: locale, color: next.color };
    // Without a site first: the messages view keeps the greeting's element by
    // key, and a new text needs a new element.
    store.set({ site: null });
    store.set({ locale, site: { name: next.name.trim(), settings } });
  };
  update(look);
  return {
    update,
    teardown() {
      stops.forEach((stop) => stop());
      unstyle();
      host.remove();
    },
  };
}

/** @type {any} */ (window).chatserverPreview = { mountPreview };

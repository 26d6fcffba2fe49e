// What the visitor sees of co-browsing (docs/cobrowse.md), in the widget's
// shadow root: the consent prompt, the banner while an agent views the page,
// the agent's labelled pointer and the outline of a highlighted element. The
// pointer and the outline are fixed-position layers that never take a click
// (pointer-events: none, like the widget's root); the recorder blocks the
// whole widget, so none of this reaches the agent's view.

import { h, listen } from "./dom.js";

const HIGHLIGHT_FOR = 4000; // ms an outline stays (it fades out at the end)

/**
 * @param {HTMLElement} parent the widget's box in its shadow root
 * @param {{t: import("../i18n/index.js").Translate}} ctx
 */
export function mountCobrowseView(parent, ctx) {
  /** @type {(() => void)[]} */
  let promptUndo = [];
  /** @type {HTMLElement | null} */
  let prompt = null;
  /** @type {HTMLElement | null} */
  let banner = null;
  /** @type {Element | null} */
  let returnFocus = null;
  const cursor = h("div", { class: "cb-cursor", "aria-hidden": "true", hidden: true });
  const cursorName = h("span");
  cursor.append(arrow(), cursorName);
  const outline = h("div", { class: "cb-hl", "aria-hidden": "true", hidden: true });
  parent.append(cursor, outline);
  /** Where the pointer is, in document coordinates. */
  let at = { x: 0, y: 0 };
  /** @type {Element | null} */
  let lit = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let litTimer;

  const place = () => {
    if (!cursor.hidden) cursor.style.transform = `translate(${at.x - scrollX}px,${at.y - scrollY}px)`;
    if (lit && !outline.hidden) {
      const r = lit.getBoundingClientRect();
      Object.assign(outline.style, { left: `${r.left - 4}px`, top: `${r.top - 4}px`, width: `${r.width + 8}px`, height: `${r.height + 8}px` });
    }
  };
  const stops = [
    listen(window, "scroll", place),
    listen(window, "resize", place),
  ];

  const hidePrompt = () => {
    promptUndo.forEach((undo) => undo());
    promptUndo = [];
    const had = !!prompt && prompt.contains(/** @type {any} */ (parent.getRootNode()).activeElement || null);
    prompt?.remove();
    prompt = null;
    if (had && returnFocus instanceof HTMLElement) {
      try {
        returnFocus.focus({ preventScroll: true });
      } catch {
        // gone meanwhile
      }
    }
    returnFocus = null;
  };

  return {
    /**
     * Ask the visitor; `answer(true)` allows, `answer(false)` declines (also Escape).
     * @param {string} name the agent's name
     * @param {(yes: boolean) => void} answer
     */
    prompt(name, answer) {
      if (prompt) return;
      const title = h("p", { class: "cb-t", id: "cb-title" }, ctx.t("cb_request", { name }));
      const text = h("p", { id: "cb-text" }, ctx.t("cb_request_detail"));
      const no = h("button", { type: "button", class: "cb-no" }, ctx.t("cb_decline"));
      const yes = h("button", { type: "button", class: "cb-yes" }, ctx.t("cb_allow"));
      prompt = h("div", { class: "cb-prompt", role: "alertdialog", "aria-labelledby": "cb-title", "aria-describedby": "cb-text", tabindex: "-1" },
        title, text, h("div", { class: "cb-actions" }, no, yes));
      parent.append(prompt);
      const reply = (/** @type {boolean} */ yes) => {
        hidePrompt();
        answer(yes);
      };
      promptUndo = [
        listen(yes, "click", () => reply(true)),
        listen(no, "click", () => reply(false)),
        listen(/** @type {HTMLElement} */ (prompt), "keydown", (event) => {
          if (event.key === "Escape") reply(false);
        }),
      ];
      // A request to see the page is rare and needs an answer: the prompt takes
      // the focus (no button is pre-chosen) and gives it back afterwards.
      returnFocus = document.activeElement;
      try {
        prompt.focus({ preventScroll: true });
      } catch {
        // not focusable here
      }
    },
    hidePrompt,
    /** The banner while co-browsing runs. @param {string} name @param {() => void} stop */
    banner(name, stop) {
      banner?.remove();
      const button = h("button", { type: "button" }, ctx.t("cb_stop"));
      banner = h("div", { class: "cb-banner", role: "status" }, h("span", { class: "cb-dot", "aria-hidden": "true" }), h("span", {}, ctx.t("cb_viewing", { name })), button);
      parent.append(banner);
      listen(button, "click", stop);
    },
    hideBanner() {
      banner?.remove();
      banner = null;
      this.pointer(null);
    },
    /** Show the agent's pointer at document coordinates, or hide it (null).
     * @param {{x: number, y: number, name: string} | null} p */
    pointer(p) {
      cursor.hidden = !p;
      if (!p) return;
      at = { x: p.x, y: p.y };
      if (cursorName.textContent !== p.name) cursorName.textContent = p.name;
      place();
    },
    /** Outline `el` for a few seconds (scrolled into view if it is off screen). @param {Element} el */
    highlight(el) {
      lit = el;
      outline.hidden = false;
      outline.classList.remove("cb-fade");
      void outline.offsetWidth; // restart the fade
      outline.classList.add("cb-fade");
      const r = el.getBoundingClientRect();
      if (r.bottom < 0 || r.top > innerHeight || r.right < 0 || r.left > innerWidth) {
        el.scrollIntoView({ block: "center", inline: "nearest" });
      }
      place();
      clearTimeout(litTimer);
      litTimer = setTimeout(() => {
        outline.hidden = true;
        lit = null;
      }, HIGHLIGHT_FOR);
    },
    teardown() {
      hidePrompt();
      banner?.remove();
      clearTimeout(litTimer);
      stops.forEach((stop) => stop());
      cursor.remove();
      outline.remove();
    },
  };
}

/** The pointer's arrow. */
function arrow() {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", "M1 1l5 14 2-6 6-2z");
  svg.append(path);
  return svg;
}

/** @typedef {ReturnType<typeof mountCobrowseView>} CobrowseView */

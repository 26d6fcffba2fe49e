// What the visitor sees of co-browsing (docs/cobrowse.md), in the widget's
// shadow root: the consent prompt, the banner while an agent views the page,
// the agent's labelled pointer and the outline of a highlighted element. The
// pointer and the outline are fixed-position layers that never take a click
// (pointer-events: none, like the widget's root); the recorder blocks the
// whole widget, so none of this reaches the agent's view. All of it is in
// the co-browse bundle (cobrowse.<hash>.js), styles included: they join the
// chat's own in its shadow root when the view is mounted.

import { addStyles, h, listen } from "./dom.js";

const HIGHLIGHT_FOR = 4000; // ms an outline stays (it fades out at the end)

// Colours as in styles.js: the chat's text colours on white, the site's
// colour (--c) and its contrasting text colour (--on) from the widget's box.
const CSS = `
.cb-prompt,.cb-banner{pointer-events:auto;position:fixed;z-index:2147483001;background:#fff;color:#1f2937;box-shadow:0 8px 30px rgba(0,0,0,.3);border-radius:12px}
.cb-prompt{right:20px;bottom:92px;width:340px;max-width:calc(100vw - 40px);padding:16px;border-top:4px solid var(--c)}
.cb-prompt:focus{outline:3px solid #111827;outline-offset:2px}
.w.open .cb-prompt{bottom:auto;top:calc(max(100vh - 692px, 20px) + 72px)}
@media (max-width:520px),(max-height:520px){.w.open .cb-prompt{top:72px;right:10px;left:10px;width:auto}}
.cb-t{font-weight:600;margin-bottom:6px}
.cb-prompt p{font-size:14px}
.cb-actions{display:flex;justify-content:flex-end;gap:8px;margin-top:12px}
.cb-actions button,.cb-banner button{border-radius:8px;padding:8px 14px;font-weight:600}
.cb-yes{background:var(--c);color:var(--on)}
.cb-no,.cb-banner button{border:1px solid #6b7280!important}
.cb-actions button:focus-visible,.cb-banner button:focus-visible{outline:3px solid #111827;outline-offset:2px}
.cb-banner{top:12px;left:50%;transform:translateX(-50%);display:flex;align-items:center;gap:10px;padding:8px 10px 8px 14px;font-size:14px;max-width:calc(100vw - 24px)}
.cb-banner button{padding:4px 10px}
.cb-dot{width:10px;height:10px;border-radius:50%;background:#b91c1c;flex:none}
.cb-cursor{position:fixed;left:0;top:0;z-index:2147483002;pointer-events:none;display:flex;align-items:flex-start}
.cb-cursor svg{width:20px;height:20px;fill:var(--c);stroke:#fff;stroke-width:1.2;filter:drop-shadow(0 1px 2px rgba(0,0,0,.4))}
.cb-cursor span{margin:14px 0 0 -4px;padding:2px 8px;border-radius:10px;background:var(--c);color:var(--on);font-size:12px;font-weight:600;white-space:nowrap}
.cb-hl{position:fixed;z-index:2147483002;pointer-events:none;border:3px solid var(--c);border-radius:8px;box-shadow:0 0 12px var(--c)}
@media (prefers-reduced-motion:no-preference){.cb-cursor{transition:transform .05s linear}.cb-hl.cb-fade{animation:cbfade 4s ease-in forwards}@keyframes cbfade{0%,70%{opacity:1}100%{opacity:0}}}
`;

/**
 * @param {HTMLElement} parent the widget's box in its shadow root
 * @param {{t: import("../i18n/index.js").Translate}} ctx
 */
export function mountCobrowseView(parent, ctx) {
  const unstyle = addStyles(parent, CSS);
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
      unstyle();
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

// Emoji in an agent's reply box (docs/console.md "Emoji"): shortcodes such as
// `:smile:` become 😄 as they are typed, and a picker button beside Send opens
// a grid of the table's emoji (arrows move, Enter or Space picks, Escape
// closes and goes back to the button). The table is the widget's, generated
// from widget/emoji.tsv into emoji-table.js. Messages stay plain text.

import { el } from "./dom.js";
import { EMOJI } from "./emoji-table.js";
import { t } from "../i18n.js";

const TABLE = new Map(EMOJI);
const CODE = /(^|\s):([a-z0-9_+-]+):/g;
const COLUMNS = 8;
const CSS = `
.emoji-grid{display:grid;grid-template-columns:repeat(${COLUMNS},2.4em);gap:2px;max-height:11em;overflow-y:auto;padding:4px;margin-bottom:6px;border:1px solid #9ca3af;border-radius:8px;background:Canvas}
.emoji-grid[hidden]{display:none}
.emoji-grid button{font-size:1.3em;height:1.8em;border:0;border-radius:6px;background:none;cursor:pointer;padding:0}
.emoji-grid button:hover{background:rgba(127,127,127,.2)}
.emoji-grid button:focus-visible{outline:2px solid currentColor;outline-offset:1px}
.emoji-toggle{font-size:1.2em;line-height:1;background:none;border:1px solid transparent;border-radius:6px;padding:2px 6px;cursor:pointer}
`;
let styled = false;
let ids = 0;

/**
 * `text` with every known shortcode before `caret` replaced by its emoji (one
 * at the start or after a space: `10:30:` stays), and where the caret goes
 * then; null when there is none. The same rule as the widget's (widget/src/emoji.js).
 * @param {string} text @param {number} caret
 * @returns {{text: string, caret: number} | null}
 */
export function shortcodes(text, caret) {
  const before = text.slice(0, caret);
  const head = before.replace(CODE, (all, space, code) => {
    const emoji = TABLE.get(code);
    return emoji ? space + emoji : all;
  });
  return head === before ? null : { text: head + text.slice(caret), caret: head.length };
}

/** The picker's styles, once per page: a constructed sheet (no inline style for the CSP). */
function addStyles() {
  if (styled) return;
  styled = true;
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}

/**
 * Emoji for the reply box `input`: its shortcodes are replaced as typed (this
 * listens before the composer's own `input` listener, so what follows sees
 * the emoji); `button` opens `grid`, which the composer places above the box.
 * @param {HTMLTextAreaElement} input
 * @returns {{button: HTMLButtonElement, grid: HTMLElement}}
 */
export function attachEmoji(input) {
  addStyles();
  const id = `emoji-${++ids}`;
  /** @type {HTMLButtonElement[]} */
  const cells = EMOJI.map(([code, emoji], i) =>
    el("button", { type: "button", tabindex: i ? -1 : 0, "aria-label": code.replace(/_/g, " "), title: `:${code}:`, text: emoji }),
  );
  const grid = el("div", { class: "emoji-grid", id, role: "group", "aria-label": t("Emoji"), hidden: true }, ...cells);
  const button = el("button", {
    type: "button",
    class: "emoji-toggle",
    text: "🙂",
    title: t("Emoji (or type :smile:)"),
    "aria-label": t("Emoji"),
    "aria-controls": id,
    "aria-expanded": "false",
  });

  /** @param {boolean} open @param {boolean} [back] */
  const show = (open, back) => {
    grid.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) (cells.find((c) => c.tabIndex === 0) || cells[0]).focus();
    else if (back) button.focus();
  };
  /** @param {string} text */
  const insert = (text) => {
    const at = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? at;
    input.value = input.value.slice(0, at) + text + input.value.slice(end);
    input.setSelectionRange(at + text.length, at + text.length);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  };
  /** @param {number} i */
  const move = (i) => {
    const next = cells[Math.max(0, Math.min(cells.length - 1, i))];
    for (const c of cells) c.tabIndex = c === next ? 0 : -1;
    next.focus();
  };

  button.addEventListener("click", () => show(grid.hidden));
  grid.addEventListener("click", (event) => {
    const cell = /** @type {Element} */ (event.target).closest("button");
    if (!cell) return;
    show(false);
    input.focus();
    insert(cell.textContent || "");
  });
  grid.addEventListener("keydown", (event) => {
    const i = cells.indexOf(/** @type {HTMLButtonElement} */ (event.target));
    /** @type {Record<string, number>} */
    const steps = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: COLUMNS, ArrowUp: -COLUMNS };
    const step = steps[event.key];
    if (event.key === "Escape") show(false, true);
    else if (event.key === "Home") move(0);
    else if (event.key === "End") move(cells.length - 1);
    else if (step && i >= 0) move(i + step);
    else return;
    event.preventDefault();
    event.stopPropagation(); // the workspace's own keys stay out of the grid
  });
  input.addEventListener("input", () => {
    const done = shortcodes(input.value, input.selectionStart ?? input.value.length);
    if (!done) return;
    input.value = done.text;
    input.setSelectionRange(done.caret, done.caret);
  });
  return { button, grid };
}

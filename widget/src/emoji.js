// Emoji in the visitor's composer (docs/widget.md "Emoji"): shortcodes such as
// `:smile:` become 😄 as they are typed, and a picker of the table's emoji.
// This module is its own bundle (emoji-bundle.js, emoji.<hash>.js), which the
// chat bundle adds only when the visitor opens the picker or types something
// that ends like a shortcode (view/composer.js); the chat bundle holds none
// of the table. Messages stay plain text: an emoji is just characters.

import { EMOJI } from "./emoji-table.js";
import { addStyles, h, listen } from "./view/dom.js";

const TABLE = new Map(EMOJI);
const CODE = /(^|\s):([a-z0-9_+-]+):/g;
const COLUMNS = 8;

const CSS = `
.emo{flex:none;display:grid;grid-template-columns:repeat(${COLUMNS},1fr);gap:2px;max-height:168px;overflow-y:auto;padding:6px 8px;border-top:1px solid var(--l);background:var(--b)}
.emo button{height:38px;border-radius:8px;font-size:22px;line-height:1}
.emo button:hover{background:var(--g)}
`;

/**
 * `text` with every known shortcode before `caret` replaced by its emoji
 * (one at the start or after a space: `10:30:` stays), and where the caret
 * goes then; null when there is none.
 * @param {string} text @param {number} caret
 * @returns {{text: string, caret: number} | null}
 */
export function shortcodes(text, caret) {
  const head = text.slice(0, caret).replace(CODE, (all, space, code) => {
    const emoji = TABLE.get(code);
    return emoji ? space + emoji : all;
  });
  const before = text.slice(0, caret);
  return head === before ? null : { text: head + text.slice(caret), caret: head.length };
}

/**
 * The emoji of a composer: the picker (a grid of buttons above the form,
 * opened and closed by `toggle`; arrows move, Enter or Space picks, Escape
 * closes and goes back to the toggle) and the shortcodes of `input`.
 * `changed` runs after the box's text changed.
 * @param {{input: HTMLTextAreaElement, toggle: HTMLButtonElement, form: HTMLElement, changed: () => void}} parts
 */
export function mountEmoji({ input, toggle, form, changed }) {
  const unstyle = addStyles(form, CSS);
  /** @type {HTMLButtonElement[]} */
  const cells = [];
  const grid = h("div", { class: "emo", role: "group", id: "chatserver-emoji", hidden: true });
  for (const [code, emoji] of EMOJI) {
    const cell = h("button", { type: "button", tabindex: "-1", "aria-label": code.replace(/_/g, " "), title: `:${code}:` }, emoji);
    cells.push(cell);
    grid.append(cell);
  }
  cells[0].tabIndex = 0;
  form.before(grid);
  toggle.setAttribute("aria-controls", grid.id);

  /** @param {boolean} open @param {boolean} [back] focus the toggle (Escape) */
  const show = (open, back) => {
    grid.hidden = !open;
    grid.setAttribute("aria-label", toggle.getAttribute("aria-label") || "Emoji");
    toggle.setAttribute("aria-expanded", String(open));
    if (open) (cells.find((c) => c.tabIndex === 0) || cells[0]).focus();
    else if (back) toggle.focus();
  };
  /** @param {string} text */
  const insert = (text) => {
    const at = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? at;
    input.value = input.value.slice(0, at) + text + input.value.slice(end);
    input.setSelectionRange(at + text.length, at + text.length);
    changed();
  };
  /** @param {number} i */
  const move = (i) => {
    const next = cells[Math.max(0, Math.min(cells.length - 1, i))];
    for (const c of cells) c.tabIndex = c === next ? 0 : -1;
    next.focus();
  };
  const stops = [
    listen(grid, "click", (event) => {
      const cell = /** @type {Element} */ (event.target).closest("button");
      if (!cell) return;
      insert(cell.textContent || "");
      show(false);
      input.focus();
    }),
    listen(grid, "keydown", (event) => {
      const i = cells.indexOf(/** @type {HTMLButtonElement} */ (event.target));
      const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: COLUMNS, ArrowUp: -COLUMNS }[/** @type {string} */ (event.key)];
      if (event.key === "Escape") show(false, true);
      else if (event.key === "Home") move(0);
      else if (event.key === "End") move(cells.length - 1);
      else if (step && i >= 0) move(i + step);
      else return;
      event.preventDefault();
      event.stopPropagation(); // Escape closes the picker, not the chat window
    }),
  ];
  return {
    /** Open or close the picker. */
    toggle: () => show(grid.hidden),
    /** Replace the shortcodes typed before the caret. */
    replace() {
      const done = shortcodes(input.value, input.selectionStart ?? input.value.length);
      if (!done) return;
      input.value = done.text;
      input.setSelectionRange(done.caret, done.caret);
      changed();
    },
    teardown() {
      stops.forEach((stop) => stop());
      grid.remove();
      unstyle();
    },
  };
}

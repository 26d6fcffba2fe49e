// The reply box of a conversation: Enter sends, Shift+Enter is a new line,
// "/shortcut" suggests canned responses (arrow keys, Enter or Tab to insert
// for editing, Escape to dismiss), the note switch makes the next message an
// internal note, and typing is announced (to the visitor, or for a note only
// to colleagues). Emoji (`:smile:` as typed, a picker beside Send): emoji.js.

import { icon, labelled } from "./icons.js";
import { el, fill } from "./dom.js";
import { slashQuery } from "./canned.js";
import { attachEmoji } from "./emoji.js";
import { t } from "../i18n.js";

/**
 * @typedef {import("./conversations.js").Store} Store
 * @typedef {import("./conversations.js").ConvRecord} Rec
 * @typedef {import("./canned.js").CannedResponses} CannedResponses
 * @typedef {import("./canned.js").Canned} Canned
 */

const TYPING_IDLE = 5000; // ms without a keystroke: typing stops
let ids = 0;

export class Composer {
  /** @param {Store} store @param {Rec} rec @param {CannedResponses} canned */
  constructor(store, rec, canned) {
    this.store = store;
    this.rec = rec;
    this.canned = canned;
    const n = ++ids;
    this.input = el("textarea", {
      class: "reply",
      rows: 2,
      maxlength: 4000,
      "aria-label": t("Reply"),
      placeholder: t("Reply… (Enter sends, Shift+Enter new line, / for canned responses)"),
      "aria-autocomplete": "list",
      "aria-controls": `canned-${n}`,
    });
    this.noteBox = el("input", { type: "checkbox", class: "note-toggle" });
    this.suggest = el("ul", { class: "canned", id: `canned-${n}`, role: "listbox", "aria-label": t("Canned responses"), hidden: true });
    this.sendButton = labelled(el("button", { type: "submit", class: "primary" }), "send", t("Send"));
    const emoji = attachEmoji(this.input); // before the input listener below: it sees the emoji
    this.form = el(
      "form",
      { class: "composer" },
      this.suggest,
      emoji.grid,
      this.input,
      el(
        "div",
        { class: "composer-bar" },
        el("label", { class: "note-label", title: "Alt+N" }, this.noteBox, icon("note"), t("Internal note")),
        emoji.button,
        this.sendButton,
      ),
    );
    /** @type {Canned[]} */
    this.matches = [];
    this.selected = 0;
    /** @type {{start: number, query: string} | null} */
    this.query = null;
    this.typingOn = false;
    this.typingNote = false;
    /** @type {number | undefined} */
    this.idle = undefined;

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("input", () => {
      this.signal();
      this.lookup();
    });
    this.input.addEventListener("keydown", (event) => this.key(event));
    this.input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    this.noteBox.addEventListener("change", () => this.noteChanged());
  }

  get note() {
    return this.noteBox.checked;
  }

  toggleNote() {
    this.noteBox.checked = !this.noteBox.checked;
    this.noteChanged();
    this.input.focus();
  }

  noteChanged() {
    this.form.classList.toggle("is-note", this.note);
    labelled(this.sendButton, this.note ? "note" : "send", this.note ? t("Add note") : t("Send"));
    this.input.placeholder = this.note
      ? t("Internal note: only agents see it")
      : t("Reply… (Enter sends, Shift+Enter new line, / for canned responses)");
    this.signal();
  }

  /** @param {boolean} enabled */
  enable(enabled) {
    this.input.disabled = !enabled;
    this.sendButton.disabled = !enabled;
    this.noteBox.disabled = !enabled;
    if (!enabled) this.stopTyping();
  }

  focus() {
    this.input.focus();
  }

  submit() {
    const body = this.input.value.trim();
    if (!body || this.input.disabled) return;
    this.store.sendMessage(this.rec.id, body, this.note);
    this.input.value = "";
    this.stopTyping();
    this.close();
  }

  /** @param {KeyboardEvent} event */
  key(event) {
    if (!this.suggest.hidden && this.matches.length) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        this.selected = (this.selected + step + this.matches.length) % this.matches.length;
        this.show();
        return;
      }
      if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
        event.preventDefault();
        this.insert(this.matches[this.selected]);
        return;
      }
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.close();
        return;
      }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    }
  }

  /** Look for a "/query" at the caret and suggest canned responses. */
  async lookup() {
    const q = slashQuery(this.input.value, this.input.selectionStart ?? this.input.value.length);
    this.query = q;
    if (!q) return this.close();
    await this.canned.refresh();
    if (this.query !== q) return; // typed on meanwhile
    this.matches = this.canned.match(q.query);
    this.selected = 0;
    if (!this.matches.length) return this.close();
    this.show();
  }

  show() {
    const base = this.suggest.id;
    fill(
      this.suggest,
      ...this.matches.map((c, i) =>
        el(
          "li",
          {
            id: `${base}-${i}`,
            role: "option",
            class: "canned-item",
            "aria-selected": i === this.selected ? "true" : "false",
            onmousedown: (/** @type {Event} */ e) => {
              e.preventDefault(); // keep the focus in the box
              this.insert(c);
            },
          },
          el("span", { class: "shortcut", text: `/${c.shortcut}` }),
          el("span", { class: "text", text: c.text }),
        ),
      ),
    );
    this.suggest.hidden = false;
    this.input.setAttribute("aria-activedescendant", `${base}-${this.selected}`);
  }

  close() {
    this.suggest.hidden = true;
    this.matches = [];
    this.input.removeAttribute("aria-activedescendant");
  }

  /** Replace the "/query" with the response, caret after it, for editing. @param {Canned} c */
  insert(c) {
    const q = this.query;
    if (!q) return;
    const value = this.input.value;
    const end = q.start + 1 + q.query.length;
    this.input.value = value.slice(0, q.start) + c.text + value.slice(end);
    const caret = q.start + c.text.length;
    this.input.setSelectionRange(caret, caret);
    this.close();
    this.query = null;
    this.input.focus();
    this.signal();
  }

  /** Tell the server whether (and what) this agent is typing. */
  signal() {
    if (this.input.disabled) return;
    const active = this.input.value.trim() !== "";
    clearTimeout(this.idle);
    if (!active) return this.stopTyping();
    if (this.typingOn && this.typingNote !== this.note) this.stopTyping();
    if (!this.typingOn) {
      this.typingOn = true;
      this.typingNote = this.note;
      this.store.conn.send({ t: "typing", conv: this.rec.id, on: true, ...(this.note ? { note: true } : {}) });
    }
    this.idle = window.setTimeout(() => this.stopTyping(), TYPING_IDLE);
  }

  stopTyping() {
    clearTimeout(this.idle);
    if (!this.typingOn) return;
    this.typingOn = false;
    this.store.conn.send({ t: "typing", conv: this.rec.id, on: false, ...(this.typingNote ? { note: true } : {}) });
  }
}

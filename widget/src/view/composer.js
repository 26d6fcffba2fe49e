// The message box: Enter sends, Shift+Enter makes a new line; every change
// goes to `draft` (the client decides what, if anything, leaves the page).
// The paperclip button picks files to send (images and PDF). Hidden while the
// offline form stands in for it. Emoji (the picker button, `:smile:` → 😄 as
// typed) come from the emoji bundle, loaded the first time they are wanted.

import { h, listen } from "./dom.js";
import { icon, ICONS, showForm } from "./context.js";
import { patternsOf, redact } from "../redact.js";

/**
 * @param {HTMLElement} parent
 * @param {import("./context.js").Context} ctx
 * @returns {{focus(): void, teardown(): void}}
 */
export function mountComposer(parent, ctx) {
  const input = h("textarea", { rows: "1", id: "chatserver-input" });
  const button = h("button", { type: "submit" }, icon(ICONS.send));
  const files = h("input", { type: "file", accept: "image/png,image/jpeg,image/gif,image/webp,application/pdf", multiple: true, hidden: true, tabindex: "-1" });
  const attach = h("button", { type: "button", class: "clip" }, icon(ICONS.clip));
  const smile = h("button", { type: "button", "aria-expanded": "false" }, icon(ICONS.smile));
  const form = h("form", { class: "cf" }, attach, files, input, smile, button);
  const hint = h("p", { class: "hint", id: "chatserver-redacted", role: "status", hidden: true });
  parent.append(form, hint);

  /** Tell the visitor when what they type will not leave the page as typed. */
  const check = () => {
    const hide = !redact(input.value, patternsOf(ctx.store.get().site?.settings)).count;
    if (hint.hidden !== hide) {
      hint.hidden = hide;
      hint.textContent = hide ? "" : ctx.t("redacted");
    }
  };

  const fit = () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight + 2, 140)}px`;
  };
  const changed = () => {
    fit();
    check();
    ctx.actions.draft(input.value);
  };
  /** @type {Promise<ReturnType<typeof import("../emoji.js").mountEmoji> | void> | null} */
  let emoji = null;
  /** The emoji bundle's part of this composer (loaded once; again after a failure). */
  const withEmoji = () =>
    (emoji ||= ctx.actions.emoji().then(
      (api) => api.mountEmoji({ input, toggle: smile, form, changed }),
      () => {
        emoji = null;
      },
    ));
  const submit = () => {
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    fit();
    check();
    ctx.actions.send(text);
  };
  /** @param {import("../types.js").State} s */
  const render = (s) => {
    input.setAttribute("aria-label", ctx.t("message"));
    input.setAttribute("placeholder", ctx.t("placeholder"));
    input.maxLength = s.maxChars;
    button.setAttribute("aria-label", ctx.t("send"));
    attach.setAttribute("aria-label", ctx.t("attach"));
    attach.title = ctx.t("attach");
    smile.setAttribute("aria-label", ctx.t("emoji"));
    form.hidden = showForm(s);
    if (form.hidden) hint.hidden = true;
  };
  render(ctx.store.get());

  const stops = [
    ctx.store.subscribe((s, prev) => {
      if (s.locale !== prev.locale || s.maxChars !== prev.maxChars || showForm(s) !== showForm(prev)) render(s);
    }),
    listen(attach, "click", () => files.click()),
    listen(files, "change", () => {
      for (const file of files.files || []) ctx.actions.attach(file);
      files.value = "";
    }),
    listen(form, "submit", (event) => {
      event.preventDefault();
      submit();
    }),
    listen(input, "keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    }),
    listen(smile, "click", () => withEmoji().then((e) => e?.toggle())),
    listen(input, "input", () => {
      changed();
      if (/(^|\s):[a-z0-9_+-]+:$/.test(input.value.slice(0, input.selectionStart ?? 0))) withEmoji().then((e) => e?.replace());
    }),
  ];
  return {
    focus() {
      // After the panel is shown; a hidden element cannot take focus.
      setTimeout(() => {
        try {
          input.focus({ preventScroll: true });
        } catch {
          // detached meanwhile
        }
      }, 0);
    },
    teardown() {
      stops.forEach((stop) => stop());
      emoji?.then((e) => e?.teardown());
      form.remove();
    },
  };
}

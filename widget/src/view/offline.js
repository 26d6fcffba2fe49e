// The offline form: with nobody online and no open chat, the visitor leaves a
// name, an e-mail address and a message instead of chatting. It replaces the
// composer (panel.js decides with `showForm`); the message is stored once the
// server acknowledges it, and the conversation's view then says we will answer
// by e-mail.

import { h, listen, setText } from "./dom.js";
import { showForm } from "./context.js";

/** What the server accepts (frames.py EMAIL): something@domain.tld, no spaces. */
const EMAIL = "[^@\\s]+@[^@\\s.]+(\\.[^@\\s.]+)+";

/**
 * @param {HTMLElement} parent
 * @param {import("./context.js").Context} ctx
 * @returns {{focus(): void, teardown(): void}}
 */
export function mountOffline(parent, ctx) {
  /** @param {string} id @param {HTMLElement} field */
  const row = (id, field) => {
    field.id = id;
    const label = h("label", { for: id });
    return { label, field, el: h("div", { class: "f" }, label, field) };
  };
  const name = row("chatserver-name", h("input", { autocomplete: "name", maxlength: "200" }));
  const email = row("chatserver-email", h("input", { type: "email", autocomplete: "email", required: true, maxlength: "320", pattern: EMAIL }));
  const body = row("chatserver-offline-message", h("textarea", { rows: "3", required: true }));
  const intro = h("p", { class: "intro" });
  const problem = h("p", { class: "err", role: "alert" });
  const button = h("button", { type: "submit", class: "primary" });
  const form = h("form", { class: "offline", hidden: true }, intro, name.el, email.el, body.el, problem, button);
  parent.append(form);
  const fields = /** @type {HTMLInputElement[]} */ ([name.field, email.field, body.field]);

  /** @param {import("../types.js").State} s */
  const render = (s) => {
    const t = ctx.t;
    setText(intro, t("away_form"));
    setText(name.label, t("name"));
    setText(email.label, t("email"));
    setText(body.label, t("your_message"));
    /** @type {HTMLTextAreaElement} */ (body.field).maxLength = s.maxChars;
    setText(button, s.form === "sending" ? t("sending") : t("leave_message"));
    button.disabled = s.form === "sending" || s.link !== "online";
    setText(problem, s.form === "error" ? t("offline_error") : "");
    problem.hidden = s.form !== "error";
    form.hidden = !showForm(s);
  };
  render(ctx.store.get());

  const stops = [
    ctx.store.subscribe((s, prev) => {
      if (prev.form === "sending" && s.form === "idle") fields[2].value = ""; // stored
      render(s);
    }),
    listen(form, "submit", (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      const [n, e, b] = fields.map((f) => f.value);
      ctx.actions.offline({ name: n, email: e, body: b });
    }),
  ];
  return {
    focus() {
      setTimeout(() => fields.find((f) => !f.value)?.focus({ preventScroll: true }), 0);
    },
    teardown() {
      stops.forEach((stop) => stop());
      form.remove();
    },
  };
}

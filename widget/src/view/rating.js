// The satisfaction prompt under a closed conversation: "How was this chat?"
// with great / okay / could be better, then an optional comment. A choice is
// sent at once (so it counts even if the visitor leaves); the comment, if any,
// is sent with it again (the server keeps the latest). Hidden while the chat
// is open; shows the thanks once the conversation is rated (in any tab).
// Below it, "Email me this chat": an address, and the server mails the
// transcript (protocol `transcript`; docs/email.md).

import { h, listen, setAttr, setText } from "./dom.js";

const RATINGS = /** @type {const} */ (["great", "okay", "poor"]);

/**
 * @param {HTMLElement} parent
 * @param {import("./context.js").Context} ctx
 * @returns {() => void} teardown
 */
export function mountRating(parent, ctx) {
  const question = h("p", { class: "q", id: "chatserver-rate-q" });
  const buttons = RATINGS.map((r) => h("button", { type: "button", class: "opt", "data-rating": r }));
  const group = h("div", { class: "opts", role: "group", "aria-labelledby": "chatserver-rate-q" }, ...buttons);
  const label = h("label", { for: "chatserver-rate-comment" });
  const comment = h("textarea", { id: "chatserver-rate-comment", rows: "2", maxlength: "1000" });
  const send = h("button", { type: "submit", class: "primary" });
  const more = h("form", { class: "more", hidden: true }, label, comment, send);
  const thanks = h("p", { class: "thanks", role: "status", tabindex: "-1" });
  const mailLabel = h("label", { for: "chatserver-mail" });
  const address = h("input", { id: "chatserver-mail", type: "email", maxlength: "320", autocomplete: "email", required: "" });
  const mailSend = h("button", { type: "submit" });
  const mailed = h("p", { role: "status" });
  const mail = h("form", { class: "mail" }, mailLabel, address, mailSend, mailed);
  const box = h("section", { class: "csat", "aria-labelledby": "chatserver-rate-q", hidden: true }, question, group, more, thanks, mail);
  parent.append(box);
  let conv = "";
  let picked = "";
  /** "ask": the three choices; "comment": chosen, a comment may follow; "done". */
  let step = "ask";

  /** @param {import("../types.js").State} s */
  const render = (s) => {
    const t = ctx.t;
    const c = s.conv;
    box.hidden = !c || c.state !== "closed";
    if (!c || box.hidden) return;
    if (c.id !== conv) {
      conv = c.id;
      picked = c.rating?.value || "";
      step = c.rating ? "done" : "ask";
      comment.value = "";
    } else if (step === "ask" && c.rating) {
      picked = c.rating.value;
      step = "done";
    }
    setText(question, t("rate_question"));
    buttons.forEach((b, i) => {
      setText(b, t(`rate_${RATINGS[i]}`));
      setAttr(b, "aria-pressed", String(picked === RATINGS[i]));
    });
    group.hidden = step === "done";
    setText(label, t("rate_comment"));
    setText(send, t("rate_send"));
    more.hidden = step !== "comment";
    setText(thanks, step === "ask" ? "" : t("rate_thanks"));
    setText(mailLabel, t("mail_label"));
    setText(mailSend, t("mail_send"));
    setText(mailed, s.mailed === "sent" ? t("mail_sent") : s.mailed === "error" ? t("mail_error") : "");
    mailSend.disabled = s.mailed === "sending";
  };
  render(ctx.store.get());

  const stops = [
    ctx.store.subscribe((s, prev) => {
      if (s.conv !== prev.conv || s.locale !== prev.locale || s.mailed !== prev.mailed) render(s);
    }),
    ...buttons.map((b, i) =>
      listen(b, "click", () => {
        picked = RATINGS[i];
        step = "comment";
        ctx.actions.rate(picked, "");
        render(ctx.store.get());
      }),
    ),
    listen(more, "submit", (event) => {
      event.preventDefault();
      if (comment.value.trim()) ctx.actions.rate(picked, comment.value);
      step = "done";
      render(ctx.store.get());
      thanks.focus();
    }),
    listen(mail, "submit", (event) => {
      event.preventDefault();
      if (address.value.trim()) ctx.actions.transcript(address.value);
    }),
  ];
  return () => {
    stops.forEach((stop) => stop());
    box.remove();
  };
}

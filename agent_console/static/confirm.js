// Confirmation before a destructive action (agent_console/confirm.py): a form with
// `data-confirm="question"` (and `data-confirm-action="Delete"`) asks in a modal
// <dialog>. Cancel (or Esc) sends nothing; confirming sends the form with
// confirm=yes. Without this script the server shows a confirmation page instead.

import { t } from "./i18n.js";

/** @type {HTMLDialogElement | null} */
let dialog = null;

/** The one dialog of the page, made on first use. */
function theDialog() {
  if (dialog) return dialog;
  dialog = document.createElement("dialog");
  dialog.className = "confirm-dialog";
  dialog.setAttribute("aria-labelledby", "confirm-question");
  const question = document.createElement("p");
  question.id = "confirm-question";
  question.className = "confirm-question";
  const note = document.createElement("p");
  note.className = "muted";
  note.textContent = t("This cannot be undone.");
  const form = document.createElement("form");
  form.method = "dialog";
  form.className = "confirm-actions";
  const cancel = document.createElement("button");
  cancel.value = "cancel";
  cancel.className = "secondary";
  cancel.textContent = t("Cancel");
  const ok = document.createElement("button");
  ok.value = "ok";
  ok.className = "danger";
  form.append(ok, cancel);
  dialog.append(question, note, form);
  document.body.append(dialog);
  return dialog;
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  const field = form.elements.namedItem("confirm");
  if (field instanceof HTMLInputElement && field.value === "yes") return; // confirmed
  event.preventDefault();
  const box = theDialog();
  /** @type {HTMLElement} */ (box.querySelector(".confirm-question")).textContent = form.dataset.confirm;
  const ok = /** @type {HTMLButtonElement} */ (box.querySelector("button[value=ok]"));
  ok.textContent = form.dataset.confirmAction || t("Confirm");
  box.returnValue = "";
  box.addEventListener(
    "close",
    () => {
      if (box.returnValue !== "ok") return;
      if (field instanceof HTMLInputElement) field.value = "yes";
      form.requestSubmit();
    },
    { once: true },
  );
  box.showModal();
  /** @type {HTMLButtonElement} */ (box.querySelector("button[value=cancel]")).focus();
});

// Back to this page from the browser's cache: ask again next time.
window.addEventListener("pageshow", () => {
  for (const field of document.querySelectorAll("form[data-confirm] input[name=confirm]")) {
    /** @type {HTMLInputElement} */ (field).value = "ask";
  }
});

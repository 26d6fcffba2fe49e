// The triggers form: show the fields the chosen condition kind, action type and
// frequency use, and only the comparisons that fit the kind. The form works
// without this script (every field is shown; the server checks them all).

import { t } from "./i18n.js";

/** @param {HTMLElement} row */
function condition(row) {
  const kind = /** @type {HTMLSelectElement} */ (row.querySelector("[data-kind]"));
  const op = /** @type {HTMLSelectElement} */ (row.querySelector("[data-op]"));
  const value = /** @type {HTMLInputElement} */ (row.querySelector("[data-value]"));
  const update = () => {
    const k = kind.value;
    for (const el of row.querySelectorAll("[data-for]")) {
      /** @type {HTMLElement} */ (el).hidden = !k || el.getAttribute("data-for") !== k;
    }
    op.hidden = !k;
    let firstFit = null;
    for (const option of op.options) {
      const fits = (option.dataset.kinds || "").split(" ").includes(k);
      option.hidden = !fits;
      option.disabled = !fits;
      if (fits && !firstFit) firstFit = option;
    }
    if (k && op.selectedOptions[0]?.disabled && firstFit) op.value = firstFit.value;
    const noValue = !k || op.value === "exists" || op.value === "not_exists";
    value.hidden = noValue;
  };
  kind.addEventListener("change", update);
  op.addEventListener("change", update);
  update();
}

/** @param {HTMLElement} row */
function action(row) {
  const type = /** @type {HTMLSelectElement} */ (row.querySelector("[data-type]"));
  const update = () => {
    for (const el of row.querySelectorAll("[data-for]")) {
      /** @type {HTMLElement} */ (el).hidden = el.getAttribute("data-for") !== type.value;
    }
  };
  type.addEventListener("change", update);
  update();
}

for (const row of document.querySelectorAll(".trg-cond")) condition(/** @type {HTMLElement} */ (row));
for (const row of document.querySelectorAll(".trg-act")) action(/** @type {HTMLElement} */ (row));

const frequency = /** @type {HTMLSelectElement | null} */ (document.querySelector("[data-frequency]"));
if (frequency) {
  const gap = /** @type {HTMLElement | null} */ (document.querySelector("[data-for-frequency]"));
  const update = () => {
    if (gap) gap.hidden = frequency.value !== "always";
  };
  frequency.addEventListener("change", update);
  update();
}

// Deleting asks first.
for (const form of document.querySelectorAll("form.trg-delete")) {
  form.addEventListener("submit", (event) => {
    if (!confirm(t("Delete this trigger?"))) event.preventDefault();
  });
}

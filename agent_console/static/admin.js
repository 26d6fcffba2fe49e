// Admin pages: copy buttons. A <button data-copy="ID" hidden> copies the text
// of the element #ID; it is shown only here, so without JavaScript the text is
// simply there to select. The result is announced in the box's status element.

import { t } from "./i18n.js";

for (const button of document.querySelectorAll("button[data-copy]")) {
  const source = document.getElementById(button.getAttribute("data-copy") || "");
  if (!(button instanceof HTMLButtonElement) || !source) continue;
  const status = button.parentElement?.querySelector(".copy-status");
  const say = (/** @type {string} */ text) => {
    if (status) status.textContent = text;
  };
  button.hidden = false;
  button.addEventListener("click", async () => {
    const text = source.textContent || "";
    try {
      await navigator.clipboard.writeText(text);
      say(t("Copied."));
    } catch {
      // No clipboard access (an insecure origin, a denied permission): select it instead.
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection?.removeAllRanges();
      selection?.addRange(range);
      say(t("Selected: press Ctrl+C (⌘C) to copy."));
    }
  });
}

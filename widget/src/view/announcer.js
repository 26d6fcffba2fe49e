// An ARIA live region (visually hidden) that announces new messages from
// agents, so screen-reader users hear them without moving focus.

import { h } from "./dom.js";

/**
 * @param {HTMLElement} parent
 * @returns {{say(text: string): void, teardown(): void}}
 */
export function mountAnnouncer(parent) {
  const region = h("div", { class: "sr", "aria-live": "polite", "aria-atomic": "true" });
  parent.append(region);
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let clear;
  return {
    say(text) {
      region.textContent = text;
      clearTimeout(clear);
      clear = setTimeout(() => (region.textContent = ""), 5000);
    },
    teardown() {
      clearTimeout(clear);
      region.remove();
    },
  };
}

// The widget's own corner of the page: one custom element with an open
// shadow root holding the styles and the UI. Returns the container and the
// teardown that removes it all.
//
// Key events typed in the widget stop at its root: out there they would look
// like keys pressed on the page (retargeted to the host element), and the
// shop's keyboard shortcuts would fire while the visitor writes.

import { palette } from "./colors.js";
import { addStyles } from "./dom.js";
import { CSS } from "./styles.js";

/**
 * @param {string | undefined} color the site's colour
 * @param {string} [theme] the script tag's `data-theme`: `dark`, `auto` (the
 *   system's choice) or anything else for light (styles.js)
 * @returns {{box: HTMLElement, teardown: () => void}}
 */
export function mountRoot(color, theme) {
  const host = document.createElement("chatserver-chat");
  const shadow = host.attachShadow({ mode: "open" });
  addStyles(shadow, CSS);
  const box = document.createElement("div");
  box.className = theme === "dark" || theme === "auto" ? `w ${theme}` : "w";
  const { brand, text } = palette(color);
  box.style.setProperty("--c", brand);
  box.style.setProperty("--on", text);
  shadow.append(box);
  for (const type of ["keydown", "keypress", "keyup"]) box.addEventListener(type, (e) => e.stopPropagation());
  (document.body || document.documentElement).append(host);
  const fit = () => phoneFit(box);
  fit();
  addEventListener("resize", fit);
  return {
    box,
    teardown: () => {
      removeEventListener("resize", fit);
      host.remove();
    },
  };
}

/**
 * A phone showing a page without a viewport meta tag lays it out about 980
 * px wide and shrinks it to the screen: the media queries never see a narrow
 * screen and the chat would be a tiny desktop window. Then the box gets the
 * class `fs` (the full-screen layout) and `--z`, the zoom that gives the
 * chat its normal size on the screen (styles.js).
 * @param {HTMLElement} box
 */
function phoneFit(box) {
  const narrow = Math.min(screen.width, screen.height) <= 520;
  const zoom = innerWidth / screen.width;
  const scaled = narrow && zoom > 1.2 && !document.querySelector('meta[name="viewport"]');
  box.classList.toggle("fs", scaled);
  box.style.setProperty("--z", scaled ? String(zoom) : "1");
}

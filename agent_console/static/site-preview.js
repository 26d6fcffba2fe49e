// The live preview on the admin site page (templates/admin/site.html,
// docs/admin.md): the widget's open window drawn by the widget's own views
// (the preview bundle, /widget/preview.<hash>.js, `window.chatserverPreview`,
// loaded first) and redrawn as the shop's name, colour, greeting and language
// are edited, before they are saved; the theme is the script tag's, chosen here
// for the preview only.

/** @typedef {{name: string, color: string, greeting: string, language: string, theme: string}} Look */

const container = /** @type {HTMLElement | null} */ (document.querySelector("[data-widget-preview]"));
const form = /** @type {HTMLFormElement | null} */ (document.querySelector("form[action='/console/admin/site']"));
const theme = /** @type {HTMLSelectElement | null} */ (document.querySelector("[data-preview-theme]"));
const attr = document.querySelector("[data-theme-attr]");
const api = /** @type {any} */ (window).chatserverPreview;

if (container && form && api) {
  /** @param {string} name */
  const value = (name) => {
    const field = form.elements.namedItem(name);
    return field && "value" in field ? String(field.value) : "";
  };
  /** @returns {Look} */
  const look = () => ({
    name: value("name"),
    color: value("color"),
    greeting: value("greeting"),
    language: value("language"),
    theme: theme?.value || "light",
  });
  const view = api.mountPreview(container, look());
  const redraw = () => {
    const now = look();
    view.update(now);
    if (attr) attr.textContent = `data-theme="${now.theme}"`;
  };
  form.addEventListener("input", redraw);
  form.addEventListener("change", redraw);
  theme?.addEventListener("change", redraw);
}

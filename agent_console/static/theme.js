// The console's colour theme: "system" (follow prefers-color-scheme, the default),
// "light" or "dark", remembered per agent in this browser's localStorage. A classic
// script in <head>, so the page is painted in the chosen theme from the start; it sets
// <html data-theme> (console.css holds the colours) and wires the header's #theme menu.
(() => {
  const root = document.documentElement;
  const me = root.dataset.me;
  const key = me ? `chatserver.theme.${me}` : "chatserver.theme.last";
  /** @param {string | null} value */
  const valid = (value) => (value === "light" || value === "dark" ? value : "system");
  /** @param {string | null} key */
  const read = (key) => {
    try {
      return key ? localStorage.getItem(key) : null;
    } catch {
      return null; // storage refused (privacy settings): follow the system
    }
  };
  /** @param {string} theme */
  const apply = (theme) => {
    if (theme === "system") delete root.dataset.theme;
    else root.dataset.theme = theme;
  };
  apply(valid(read(key))); // signed out (the login page): the last choice made here
  document.addEventListener("DOMContentLoaded", () => {
    const menu = document.getElementById("theme");
    if (!(menu instanceof HTMLSelectElement)) return;
    menu.value = valid(read(key));
    menu.addEventListener("change", () => {
      const theme = valid(menu.value);
      apply(theme);
      try {
        localStorage.setItem(key, theme);
        localStorage.setItem("chatserver.theme.last", theme);
      } catch {
        // not remembered: this page still shows it
      }
    });
  });
})();

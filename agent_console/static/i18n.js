// The console's strings in the page's language (agent_console/i18n.py picks it).
// The page carries the messages its scripts use as a JSON data block,
// <script type="application/json" id="console-i18n">, which the CSP allows (no
// script runs from it); English pages carry an empty one. Strings are English
// msgids extracted by Babel (scripts/i18n): call t("...") / tn("...", "...", n) with
// string literals only. Placeholders are named, "%(name)s", filled from `values`
// (plain text: the callers put the result in textContent, never innerHTML).

/** @type {Record<string, string | string[]> | null} */
let messages = null;

/** @returns {Record<string, string | string[]>} */
function catalog() {
  if (messages) return messages;
  messages = {};
  const block = typeof document !== "undefined" ? document.getElementById("console-i18n") : null;
  if (block && block.textContent) {
    try {
      const parsed = JSON.parse(block.textContent);
      if (parsed && typeof parsed === "object") messages = parsed;
    } catch {
      // a broken block: English
    }
  }
  return /** @type {Record<string, string | string[]>} */ (messages);
}

/** The page's language: <html lang>, "en" when unset. */
export function lang() {
  return (typeof document !== "undefined" && document.documentElement.lang) || "en";
}

/**
 * @param {string} text
 * @param {Record<string, string | number>} [values]
 */
function fill(text, values) {
  if (!values) return text;
  return text.replace(/%\(([a-z_]+)\)[sd]/g, (whole, name) =>
    name in values ? String(values[name]) : whole,
  );
}

/**
 * `message` in the page's language, with `%(name)s` placeholders filled.
 * @param {string} message
 * @param {Record<string, string | number>} [values]
 */
export function t(message, values) {
  const found = catalog()[message];
  return fill(typeof found === "string" && found ? found : message, values);
}

/**
 * The singular or plural of a message for `n` (Catalan and Spanish, like English:
 * one for 1, the other for the rest). `n` fills `%(n)s`, with `values` the others.
 * @param {string} singular
 * @param {string} plural
 * @param {number} n
 * @param {Record<string, string | number>} [values]
 */
export function tn(singular, plural, n, values) {
  const found = catalog()[singular];
  const index = n === 1 ? 0 : 1;
  const forms = Array.isArray(found) ? found : null;
  const text = forms && forms[index] ? forms[index] : n === 1 ? singular : plural;
  return fill(text, { n: number(n), ...values });
}

/** A number in the page's language. @param {number} n */
export function number(n) {
  return new Intl.NumberFormat(lang()).format(n);
}

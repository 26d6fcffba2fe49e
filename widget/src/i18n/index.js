// Languages: English, Catalan and Spanish built in; the shop can override any
// string per language (`$chat.push(["strings", "es", {...}])`). The language is
// the first available of: the API (`locale`), the page (`<html lang>`), the
// browser (`navigator.languages`), the site's setting, English. English is in
// the chat bundle; Catalan and Spanish come in the languages bundle
// (langs-bundle.js), which the chat adds only when one of them is picked, and
// `addLanguages` puts into BUILT_IN.

import en from "./en.js";

/** @typedef {typeof en} Strings */
/** @typedef {keyof Strings} Key */

/** Every language the widget speaks, English first. */
export const LANGUAGES = ["en", "ca", "es"];

/** The languages' strings loaded so far. @type {Record<string, Strings>} */
export const BUILT_IN = { en };

/** Add loaded languages' strings. @param {Record<string, Strings>} tables */
export const addLanguages = (tables) => Object.assign(BUILT_IN, tables);

/**
 * The primary subtag of a language tag, lower case ("es-ES" → "es").
 * @param {unknown} tag
 */
const primary = (tag) => (typeof tag === "string" ? tag.trim().toLowerCase().split(/[-_]/)[0] : "");

/**
 * @param {(string | null | undefined)[]} candidates best first
 * @param {string[]} available
 * @returns {string}
 */
export function pickLocale(candidates, available) {
  for (const tag of candidates) {
    const lang = primary(tag);
    if (lang && available.includes(lang)) return lang;
  }
  return "en";
}

/** The candidates this page offers: the page's language, then the browser's. */
export function pageLanguages() {
  /** @type {string[]} */
  const tags = [document.documentElement.lang];
  try {
    tags.push(...(navigator.languages || []), navigator.language);
  } catch {
    // unusual navigators
  }
  return tags;
}

/**
 * A translator for `locale` with the shop's overrides.
 * @param {string} locale
 * @param {Record<string, Partial<Record<string, string>>>} overrides by language
 * @param {Record<string, Record<string, string>>} [bundled] by language: strings
 *   a lazily loaded bundle brought (i18n/cobrowse.js), under the overrides
 */
export function translator(locale, overrides, bundled = {}) {
  const table = { ...en, ...bundled.en, ...BUILT_IN[locale], ...bundled[locale], ...overrides[locale] };
  let plurals = /** @type {Intl.PluralRules | null} */ (null);
  try {
    plurals = new Intl.PluralRules(locale);
  } catch {
    // old engines: "other" for everything but 1
  }
  /**
   * @param {string} key
   * @param {Record<string, string | number>} [vars]
   * @returns {string}
   */
  const t = (key, vars = {}) => {
    let k = key;
    if (typeof vars.n === "number" && `${key}_other` in table) {
      const form = plurals ? plurals.select(vars.n) : vars.n === 1 ? "one" : "other";
      k = `${key}_${form}` in table ? `${key}_${form}` : `${key}_other`;
    }
    const text = String(/** @type {Record<string, string>} */ (table)[k] ?? k);
    return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  };
  return t;
}

/** @typedef {ReturnType<typeof translator>} Translate */

// Card numbers and the site's own patterns never leave the page: messages,
// drafts (the typing preview) and the offline form are redacted here before
// they are sent, and the composer tells the visitor (docs/privacy.md). A card
// number is a run of 13 to 19 digits, single spaces or dashes between them,
// that passes the Luhn check; the server applies the same rule to whatever
// reaches it (chatserver/cards.py).

export const MARK = "[redacted]";
const RUN = /(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)/g;
// In a draft a card number is still being typed: no run of 7 or more digits
// is previewed (at most the first six of a card, which are not secret).
const LONG = /(?<!\d)\d(?:[ -]?\d){6,}(?!\d)/g;

/** Whether a string of digits passes the Luhn check. @param {string} digits */
export function luhn(digits) {
  let total = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2) d = d > 4 ? d * 2 - 9 : d * 2;
    total += d;
  }
  return total % 10 === 0;
}

/** @type {WeakMap<object, RegExp[]>} */
const compiled = new WeakMap();

/**
 * The site's patterns (`settings.redact_patterns`, JavaScript regular
 * expression sources) compiled once per settings object; an invalid one is skipped.
 * @param {{redact_patterns?: string[]} | undefined} settings
 * @returns {RegExp[]}
 */
export function patternsOf(settings) {
  if (!settings) return [];
  let out = compiled.get(settings);
  if (!out) {
    out = [];
    for (const source of settings.redact_patterns || []) {
      try {
        out.push(new RegExp(source, "giu"));
      } catch {
        // an admin's typo must not break the chat
      }
    }
    compiled.set(settings, out);
  }
  return out;
}

/**
 * `text` with every card number and every match of `patterns` replaced by MARK;
 * a `draft` loses every run of 7 or more digits too.
 * @param {string} text @param {RegExp[]} patterns @param {boolean} [draft]
 * @returns {{text: string, count: number}}
 */
export function redact(text, patterns, draft = false) {
  let count = 0;
  const mark = () => (count++, MARK);
  let out = text.replace(RUN, (run) => (luhn(run.replace(/[ -]/g, "")) ? mark() : run));
  if (draft) out = out.replace(LONG, () => MARK);
  for (const re of patterns) out = out.replace(re, (m) => (m ? mark() : m));
  return { text: out, count };
}

// Canned responses: the site's {shortcut, text} documents (edited on the admin
// pages), found by typing "/shortcut" in the composer.

const STALE_AFTER = 60000; // ms: refetch on the next "/" after this long

/** @typedef {{shortcut: string, text: string}} Canned */

export class CannedResponses {
  /** @param {string} url */
  constructor(url) {
    this.url = url;
    /** @type {Canned[]} */
    this.items = [];
    this.fetched = 0;
    /** @type {Promise<void> | null} */
    this.loading = null;
  }

  /** Fetch the list if it is missing or old; resolves when fresh enough. */
  refresh() {
    if (this.loading) return this.loading;
    if (Date.now() - this.fetched < STALE_AFTER) return Promise.resolve();
    this.loading = fetch(this.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : []))
      .then((items) => {
        if (Array.isArray(items)) this.items = items;
        this.fetched = Date.now();
      })
      .catch(() => {})
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  /**
   * Responses for what follows the "/": shortcuts starting with it first,
   * then shortcuts or texts containing it (case-insensitive), at most `max`.
   * @param {string} query @param {number} [max]
   */
  match(query, max = 8) {
    const q = query.toLowerCase();
    const starts = this.items.filter((c) => c.shortcut.toLowerCase().startsWith(q));
    const contains = this.items.filter(
      (c) => !starts.includes(c) && (c.shortcut.toLowerCase().includes(q) || (q.length > 1 && c.text.toLowerCase().includes(q))),
    );
    return [...starts, ...contains].slice(0, max);
  }
}

/**
 * The "/query" the caret is at the end of, if any: `{start, query}` where
 * `start` is the index of the slash.
 * @param {string} text @param {number} caret
 * @returns {{start: number, query: string} | null}
 */
export function slashQuery(text, caret) {
  const before = text.slice(0, caret);
  const match = /(^|\s)\/([^\s/]{0,40})$/.exec(before);
  if (!match) return null;
  return { start: before.length - match[2].length - 1, query: match[2] };
}

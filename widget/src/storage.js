// localStorage / sessionStorage that never throw (private mode, storage
// disabled, opaque origins, quota): reads give null, writes are dropped.

/** @typedef {{get(key: string): unknown, set(key: string, value: unknown): void, remove(key: string): void}} KeyValue */

/**
 * A namespaced JSON view of a Web Storage area.
 * @param {"localStorage" | "sessionStorage"} area
 * @param {string} prefix
 * @returns {KeyValue}
 */
export function storage(area, prefix) {
  /** @returns {Storage | null} */
  const get = () => {
    try {
      return window[area];
    } catch {
      return null;
    }
  };
  return {
    get(key) {
      try {
        const raw = get()?.getItem(prefix + key);
        return raw == null ? null : JSON.parse(raw);
      } catch {
        return null;
      }
    },
    set(key, value) {
      try {
        get()?.setItem(prefix + key, JSON.stringify(value));
      } catch {
        // full or unavailable: the widget works without it
      }
    },
    remove(key) {
      try {
        get()?.removeItem(prefix + key);
      } catch {
        // unavailable
      }
    },
  };
}

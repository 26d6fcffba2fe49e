// localStorage / sessionStorage that never throw (private mode, storage
// disabled, opaque origins, quota): reads give null, writes are dropped.

/** @typedef {{get(key: string): unknown, set(key: string, value: unknown): void, remove(key: string): void, keys(): string[]}} KeyValue */
/** @typedef {KeyValue & {allow(): void, deny(): void}} Gated */

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
    keys() {
      try {
        const area = get();
        if (!area) return [];
        const out = [];
        for (let i = 0; i < area.length; i++) {
          const key = area.key(i);
          if (key?.startsWith(prefix)) out.push(key.slice(prefix.length));
        }
        return out;
      } catch {
        return [];
      }
    },
  };
}

/**
 * `area`, or memory while the visitor has not consented (docs/privacy.md):
 * denied, nothing is read from or written to `area` and values live in this
 * page only; `allow()` writes them to `area`, `deny()` moves every key of
 * ours from `area` back into memory (so this page goes on, nothing stays).
 * @param {KeyValue} area @param {boolean} allowed
 * @returns {Gated}
 */
export function gated(area, allowed) {
  /** @type {Map<string, unknown>} */
  const memory = new Map();
  return {
    get: (key) => (allowed ? area.get(key) : (memory.get(key) ?? null)),
    set: (key, value) => (allowed ? area.set(key, value) : void memory.set(key, value)),
    remove(key) {
      memory.delete(key);
      if (allowed) area.remove(key);
    },
    keys: () => (allowed ? area.keys() : [...memory.keys()]),
    allow() {
      if (allowed) return;
      allowed = true;
      for (const [key, value] of memory) if (value != null) area.set(key, value);
      memory.clear();
    },
    deny() {
      if (!allowed) return;
      allowed = false;
      for (const key of area.keys()) {
        memory.set(key, area.get(key));
        area.remove(key);
      }
    },
  };
}

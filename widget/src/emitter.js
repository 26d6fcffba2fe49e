// Events for the JS API (`on(event, callback)`). A callback that throws is
// reported as a warning and does not stop the others.

import { warn } from "./guard.js";

/** @typedef {(payload?: any) => void} Listener */

export function createEmitter() {
  /** @type {Map<string, Set<Listener>>} */
  const listeners = new Map();
  return {
    /** @param {string} name @param {Listener} fn */
    on(name, fn) {
      if (typeof fn !== "function") return;
      let set = listeners.get(name);
      if (!set) listeners.set(name, (set = new Set()));
      set.add(fn);
    },
    /** @param {string} name @param {Listener} fn */
    off(name, fn) {
      listeners.get(name)?.delete(fn);
    },
    /** @param {string} name @param {unknown} [payload] */
    emit(name, payload) {
      for (const fn of [...(listeners.get(name) || [])]) {
        try {
          fn(payload);
        } catch (err) {
          warn(`a callback for "${name}" threw:`, err);
        }
      }
    },
    clear() {
      listeners.clear();
    },
  };
}

/** @typedef {ReturnType<typeof createEmitter>} Emitter */

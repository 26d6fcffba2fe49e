// The widget's state in one object, replaced (never mutated) on each change,
// with subscribers called after every `set` (each guarded: a failing view
// cannot break the others). The views render from it.

import { guard } from "./guard.js";

/** @typedef {import("./types.js").State} State */

/**
 * @param {State} initial
 */
export function createStore(initial) {
  let state = initial;
  /** @type {Set<(state: State, prev: State) => void>} */
  const subscribers = new Set();
  return {
    /** @returns {State} */
    get: () => state,
    /** Merge `patch` into the state and notify.
     * @param {Partial<State> | ((s: State) => Partial<State>)} patch */
    set(patch) {
      const prev = state;
      state = { ...state, ...(typeof patch === "function" ? patch(state) : patch) };
      for (const fn of [...subscribers]) guard(fn)(state, prev);
    },
    /** @param {(state: State, prev: State) => void} fn @returns {() => void} unsubscribe */
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
  };
}

/** @typedef {ReturnType<typeof createStore>} Store */

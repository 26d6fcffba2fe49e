// What every view gets: the store, the current translator and the actions.

/**
 * @typedef {{
 *   store: import("../store.js").Store,
 *   t: import("../i18n/index.js").Translate,
 *   actions: {
 *     open(): void,
 *     close(): void,
 *     toggle(): void,
 *     send(text: string): void,
 *     draft(text: string): void,
 *     retry(cid: string): void,
 *     offline(form: {name: string, email: string, body: string}): void,
 *     rate(rating: string, comment: string): void,
 *     transcript(email: string): void,
 *     attach(file: File): void,
 *     dismiss(cid: string): void,
 *     emoji(): Promise<{mountEmoji: typeof import("../emoji.js").mountEmoji}>,
 *   },
 * }} Context
 *
 * `t` is a getter: it always answers in the current language.
 */

/** Unread agent messages in the current conversation.
 * @param {import("../types.js").State} s */
export function unreadCount(s) {
  const conv = s.conv;
  if (!conv) return 0;
  return s.entries.filter(
    (e) => e.conv === conv.id && e.kind === "text" && e.from.kind === "agent" && e.offset > s.seen,
  ).length;
}

/** Initials for an avatar ("Anna (demo agent)" → "A", "Marc Vidal" → "MV").
 * @param {string} name */
export function initials(name) {
  const words = name.replace(/\(.*?\)/g, " ").trim().split(/\s+/).filter(Boolean);
  return words.slice(0, 2).map((w) => [...w][0].toUpperCase()).join("") || "?";
}

/** @param {string} d */
export const icon = (d) => {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", d);
  svg.append(path);
  return svg;
};

export const ICONS = {
  chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2zm3 6v2h2v-2H7zm4 0v2h2v-2h-2zm4 0v2h2v-2h-2z",
  close: "M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z",
  down: "M7.4 8.6 12 13.2l4.6-4.6L18 10l-6 6-6-6z",
  send: "M3 20.5 21 12 3 3.5v6.6l12 1.9-12 1.9z",
  smile: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16zM8 8h2v3H8zm6 0h2v3h-2zm-6.5 6h9a4.5 4.5 0 0 1-9 0z",
  clip: "M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6h-1.5z",
};

/** Whether the offline form replaces the composer: nobody online and no open chat.
 * @param {import("../types.js").State} s */
export const showForm = (s) => !!s.site && s.agentsOnline === 0 && (!s.conv || s.conv.state === "closed") && !s.outbox.length && !s.uploads.length;

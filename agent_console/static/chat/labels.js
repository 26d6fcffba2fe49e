// How people and events are named in the workspace (plain text, no markup).

import { t } from "../i18n.js";

/**
 * @typedef {import("./conversations.js").Store} Store
 * @typedef {import("./conversations.js").Entry} Entry
 */

/**
 * A visitor's name as agents see it: name, else email, else a short id.
 * @param {Store} store @param {string} visitorId
 */
export function visitorLabel(store, visitorId) {
  const v = store.visitors.get(visitorId);
  if (v && typeof v.name === "string" && v.name) return v.name;
  if (v && typeof v.email === "string" && v.email) return v.email;
  return t("Visitor %(id)s", { id: visitorId.replace(/^v_/, "").slice(0, 4) });
}

/** The line shown for a lifecycle event. @param {Entry} e */
export function eventText(e) {
  const d = e.data || {};
  switch (d.event) {
    case "joined":
      return d.agent?.name ? t("%(name)s joined", { name: d.agent.name }) : t("An agent joined");
    case "left":
      return d.agent?.name ? t("%(name)s left", { name: d.agent.name }) : t("An agent left");
    case "transferred": {
      const someone = t("An agent");
      return t("%(name)s transferred the chat to %(to)s", {
        name: d.by?.name || someone,
        to: d.to ? d.to.name : d.department,
      });
    }
    case "closed":
      if (d.by?.kind === "visitor") return t("The visitor closed the chat");
      if (d.by?.kind === "system") return t("Closed: the visitor never answered the automatic message");
      return d.by?.name ? t("%(name)s closed the chat", { name: d.by.name }) : t("An agent closed the chat");
    case "rated":
      return d.comment
        ? t("The visitor rated the chat: %(rating)s (“%(comment)s”)", { rating: String(d.rating || ""), comment: String(d.comment) })
        : t("The visitor rated the chat: %(rating)s", { rating: String(d.rating || "") });
    case "cobrowse":
      return cobrowseText(d);
    default:
      return String(d.event || t("event"));
  }
}

/**
 * A co-browse step as a sentence (chatserver/features/cobrowse.py: `state`,
 * the asking `agent`, and `by`, who made the change).
 * @param {Record<string, any>} d
 */
function cobrowseText(d) {
  const agent = d.agent?.name || t("An agent");
  switch (d.state) {
    case "requested":
      return t("%(name)s asked to see the visitor's page", { name: agent });
    case "active":
      return t("The visitor let %(name)s see their page", { name: agent });
    case "declined":
      return t("The visitor declined to share their page");
    case "ended":
      if (d.by?.kind === "visitor") return t("The visitor stopped sharing their page");
      if (d.by?.kind === "agent") return t("%(name)s stopped viewing the page", { name: d.by.name || agent });
      return t("Page sharing ended");
    default:
      return t("Page sharing changed");
  }
}

/**
 * A conversation's state or an agent's status in words ("queued", "away").
 * @param {string} value
 */
export function stateText(value) {
  /** @type {Record<string, string>} */
  const words = {
    queued: t("queued"),
    active: t("active"),
    closed: t("closed"),
    online: t("online"),
    away: t("away"),
    offline: t("offline"),
  };
  return words[value] || value;
}

/**
 * A CSAT rating in whatever shape the server gives it: a number, a word, or
 * a map with `score`/`value`/`rating` and maybe `comment`.
 * @param {unknown} rating
 * @returns {string | null}
 */
export function ratingText(rating) {
  if (rating === null || rating === undefined) return null;
  if (typeof rating === "number" || typeof rating === "string") return t("Rating: %(rating)s", { rating });
  if (typeof rating === "object") {
    const r = /** @type {Record<string, unknown>} */ (rating);
    const score = r.score ?? r.value ?? r.rating;
    const scale = typeof r.scale === "number" ? `/${r.scale}` : typeof score === "number" && score <= 5 ? "/5" : "";
    const comment = typeof r.comment === "string" && r.comment ? ` “${r.comment}”` : "";
    if (score !== undefined) return t("Rating: %(rating)s", { rating: `${String(score)}${scale}${comment}` });
    if (comment) return t("Rating: %(rating)s", { rating: comment.trim() });
  }
  return null;
}

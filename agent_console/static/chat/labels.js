// How people and events are named in the workspace (plain text, no markup).

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
  return `Visitor ${visitorId.replace(/^v_/, "").slice(0, 4)}`;
}

/** The line shown for a lifecycle event. @param {Entry} e */
export function eventText(e) {
  const d = e.data || {};
  switch (d.event) {
    case "joined":
      return `${d.agent?.name || "An agent"} joined`;
    case "left":
      return `${d.agent?.name || "An agent"} left`;
    case "transferred":
      return d.to
        ? `${d.by?.name || "An agent"} transferred the chat to ${d.to.name}`
        : `${d.by?.name || "An agent"} transferred the chat to ${d.department}`;
    case "closed":
      if (d.by?.kind === "visitor") return "The visitor closed the chat";
      if (d.by?.kind === "system") return "Closed: the visitor never answered the automatic message";
      return `${d.by?.name || "An agent"} closed the chat`;
    case "rated":
      return `The visitor rated the chat: ${String(d.rating || "")}${d.comment ? ` (“${String(d.comment)}”)` : ""}`;
    case "cobrowse":
      return cobrowseText(d);
    default:
      return String(d.event || "event");
  }
}

/**
 * A co-browse step as a sentence (chatserver/features/cobrowse.py: `state`,
 * the asking `agent`, and `by`, who made the change).
 * @param {Record<string, any>} d
 */
function cobrowseText(d) {
  const agent = d.agent?.name || "An agent";
  switch (d.state) {
    case "requested":
      return `${agent} asked to see the visitor's page`;
    case "active":
      return `The visitor let ${agent} see their page`;
    case "declined":
      return "The visitor declined to share their page";
    case "ended":
      if (d.by?.kind === "visitor") return "The visitor stopped sharing their page";
      if (d.by?.kind === "agent") return `${d.by.name || agent} stopped viewing the page`;
      return "Page sharing ended";
    default:
      return "Page sharing changed";
  }
}

/**
 * A CSAT rating in whatever shape the server gives it: a number, a word, or
 * a map with `score`/`value`/`rating` and maybe `comment`.
 * @param {unknown} rating
 * @returns {string | null}
 */
export function ratingText(rating) {
  if (rating === null || rating === undefined) return null;
  if (typeof rating === "number" || typeof rating === "string") return `Rating: ${rating}`;
  if (typeof rating === "object") {
    const r = /** @type {Record<string, unknown>} */ (rating);
    const score = r.score ?? r.value ?? r.rating;
    const scale = typeof r.scale === "number" ? `/${r.scale}` : typeof score === "number" && score <= 5 ? "/5" : "";
    const comment = typeof r.comment === "string" && r.comment ? ` “${r.comment}”` : "";
    if (score !== undefined) return `Rating: ${String(score)}${scale}${comment}`;
    if (comment) return `Rating:${comment}`;
  }
  return null;
}

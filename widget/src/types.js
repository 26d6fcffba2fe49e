// The vocabulary: wire shapes of docs/protocol.md that the widget uses, and
// the widget's state. Types only; this module exports nothing at run time.

/**
 * @typedef {{kind: "visitor" | "agent" | "system", id?: string, name: string}} Author
 *
 * One conversation entry (protocol §5.1). Visitors never get notes.
 * @typedef {{conv: string, offset: number, kind: "text" | "event" | "note", from: Author,
 *   body: string, ts: number, cid?: string, data?: Record<string, any>}} Entry
 *
 * A conversation snapshot (protocol §5.3).
 * @typedef {{id: string, state: "queued" | "active" | "closed", epoch: string, offset: number,
 *   department: string | null, agents: {id: string, name: string}[], created_at: number,
 *   offline: boolean, position?: number}} Conversation
 *
 * A message the visitor wrote that the server has not stored yet (or refused).
 * `state`: "pending" until the ack, "sent" once stored (until its entry arrives),
 * "failed" when refused for good.
 * @typedef {{cid: string, body: string, ts: number, state: "pending" | "sent" | "failed"}} Outgoing
 *
 * Site name and settings from `welcome` (protocol §5.5).
 * @typedef {{name: string, settings: {typing_preview: boolean, routing: string, greeting: string,
 *   language: string, color: string, recording?: boolean, recording_sample?: number,
 *   recording_consent?: boolean}}} SiteInfo
 *
 * Connection: "connecting" until the first welcome, "online" with a welcome,
 * "offline" while reconnecting, "disabled" after a terminal close.
 * @typedef {"connecting" | "online" | "offline" | "disabled"} Link
 *
 * @typedef {{
 *   link: Link,
 *   site: SiteInfo | null,
 *   agentsOnline: number,
 *   conv: Conversation | null,
 *   entries: Entry[],
 *   outbox: Outgoing[],
 *   typing: string | null,
 *   agentRead: number,
 *   seen: number,
 *   open: boolean,
 *   locale: string,
 *   maxChars: number,
 * }} State
 *
 * `conv`: the visitor's current conversation (the last one, also once closed).
 * `entries`: what this page holds of the visitor's conversations, oldest first.
 * `typing`: the name of the agent typing, or null.
 * `agentRead`: the highest offset of `conv` an agent has read.
 * `seen`: the highest offset of `conv` the visitor has seen (unread badge).
 */

export {};

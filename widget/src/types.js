// The vocabulary: wire shapes of docs/protocol.md that the widget uses, and
// the widget's state. Types only; this module exports nothing at run time.

/**
 * @typedef {{kind: "visitor" | "agent" | "system", id?: string, name: string}} Author
 *
 * A file in an entry (`data.attachment`); `url` is absolute once received.
 * @typedef {{id: string, name: string, type: string, size: number, url: string}} FileInfo
 *
 * One conversation entry (protocol §5.1). Visitors never get notes.
 * @typedef {{conv: string, offset: number, kind: "text" | "event" | "note", from: Author,
 *   body: string, ts: number, cid?: string, data?: Record<string, any>}} Entry
 *
 * A conversation snapshot (protocol §5.3).
 * @typedef {{id: string, state: "queued" | "active" | "closed", epoch: string, offset: number,
 *   department: string | null, agents: {id: string, name: string}[], created_at: number,
 *   offline: boolean, position?: number, rating?: {value: string, comment: string} | null}} Conversation
 *
 * A message the visitor wrote that the server has not stored yet (or refused).
 * `state`: "pending" until the ack, "sent" once stored (until its entry arrives),
 * "failed" when refused for good.
 * @typedef {{cid: string, body: string, ts: number, state: "pending" | "sent" | "failed"}} Outgoing
 *
 * A file the visitor is sending: uploaded over HTTP ("uploading"), then posted
 * with an `attach` frame ("posting") until its entry arrives, or "failed" with
 * `error` (an i18n key).
 * @typedef {{cid: string, name: string, ts: number, state: "uploading" | "posting" | "failed",
 *   id?: string, error?: string}} Upload
 *
 * Site name and settings from `welcome` (protocol §5.5).
 * @typedef {{name: string, settings: {typing_preview: boolean, routing: string, greeting: string,
 *   language: string, color: string, require_identity?: boolean, recording?: boolean,
 *   recording_sample?: number, recording_consent?: boolean, redact_patterns?: string[]}}} SiteInfo
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
 *   uploads: Upload[],
 *   form: "idle" | "sending" | "error",
 *   mailed: "" | "sending" | "sent" | "error",
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
 * `form`: the offline form's state (its message is stored once acknowledged).
 * `mailed`: the transcript asked by e-mail ("sent": queued by the server).
 */

export {};

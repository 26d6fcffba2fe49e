// The chat widget's JavaScript API, `window.$chat`, for TypeScript (and
// editors) on the shop's pages. Served by the chat server at
// /widget/chat.d.ts; see docs/widget.md ("TypeScript types") and
// widget/README.md ("JavaScript API"). `npm run check` compiles
// types/check.ts, which holds these types against the widget's own code.
//
// Use: save it next to your code and either reference it
//   /// <reference path="./chat.d.ts" />
// or import the types you need:
//   import type { ChatMessage } from "./chat";
// Then:
//   window.$chat = window.$chat || [];
//   $chat.push(["on", "message", (m) => console.log(m.from.kind, m.text)]);

/** Who wrote a message. */
export interface ChatAuthor {
  kind: "visitor" | "agent" | "system";
  /** The agent's or visitor's name as shown in the chat ("" when none). */
  name: string;
}

/** A file sent in the chat: an image (PNG, JPEG, GIF, WebP) or a PDF. */
export interface ChatAttachment {
  id: string;
  /** The file name, as stored (cleaned, with the type's extension). */
  name: string;
  /** `image/png`, `image/jpeg`, `image/gif`, `image/webp` or `application/pdf`. */
  type: string;
  /** Bytes. */
  size: number;
  /** A signed download URL (valid for at least 24 hours). */
  url: string;
}

/** The payload of the `message` event: a message that arrived live. */
export interface ChatMessage {
  /** The conversation's id. */
  conversation: string;
  /** The message's position in its conversation (1, 2, ...). */
  offset: number;
  /** The text; for a file, its name. */
  text: string;
  from: ChatAuthor;
  time: Date;
  /** Present when the message is a file. */
  attachment?: ChatAttachment;
}

/** The events of `["on", event, fn]` and their callbacks. */
export interface ChatEvents {
  /** The server welcomed the widget and it is on the page (a late listener is called at once). */
  ready: () => void;
  /** The chat window opened. */
  open: () => void;
  /** The chat window closed. */
  close: () => void;
  /** A new message arrived live (the visitor's own too; not history). */
  message: (message: ChatMessage) => void;
  /** The count of unread agent messages changed. */
  unread: (count: number) => void;
}

export type ChatEventName = keyof ChatEvents;

/** Built-in languages; another tag falls back to the page's, the browser's or English. */
export type ChatLocale = "en" | "ca" | "es" | (string & {});

/** The keys of the widget's strings (its English texts are in widget/src/i18n/en.js). */
export type ChatStringKey =
  | "open" | "close" | "minimize" | "title" | "unread_one" | "unread_other" | "messages"
  | "message" | "placeholder" | "send" | "connecting" | "reconnecting" | "away" | "replying"
  | "queue" | "agent" | "you" | "typing" | "someone" | "joined" | "left" | "transferred"
  | "transferred_team" | "ended" | "closed_hint" | "sending" | "sent" | "read" | "failed"
  | "retry" | "new_message" | "link" | "download" | "away_form" | "away_mail" | "name" | "email" | "your_message"
  | "leave_message" | "offline_thanks" | "offline_error" | "rate_question" | "rate_great"
  | "rate_okay" | "rate_poor" | "rate_comment" | "rate_send" | "rate_thanks" | "mail_label"
  | "mail_send" | "mail_sent" | "mail_error" | "attach" | "emoji"
  | "uploading" | "too_big" | "wrong_type" | "upload_failed" | "dismiss" | "image"
  | "cb_requested" | "cb_started" | "cb_declined" | "cb_ended" | "redacted"
  // co-browsing's prompt and banner (the co-browse bundle brings these)
  | "cb_request" | "cb_request_detail" | "cb_allow" | "cb_decline" | "cb_viewing" | "cb_stop";

/** Strings to override: `{name}` and `{n}` are filled in. */
export type ChatStrings = Partial<Record<ChatStringKey, string>>;

/** A custom attribute's value: nested maps one level deep only. */
export type ChatValue = string | number | boolean | null;

/** Custom attributes (`set`) or event properties (`track`): at most 50 keys, 8 KB. */
export type ChatAttributes = Record<string, ChatValue | Record<string, ChatValue>>;

/** Who the visitor is (`identify`). */
export interface ChatIdentity {
  /** The shop's customer id (1..200 characters). */
  id?: string | number;
  name?: string;
  email?: string;
  /** Hex HMAC-SHA256 of `id` with the site's identity secret, computed on the shop's server. */
  hash?: string;
}

/** A listener call: `["on" | "off", event, callback]`, callback typed by event. */
export type ChatListenerCall = {
  [E in ChatEventName]: ["on", E, ChatEvents[E]] | ["off", E, ChatEvents[E]];
}[ChatEventName];

/** One call of the `$chat` queue: `$chat.push(call)`. */
export type ChatCommand =
  | ["open"]
  | ["close"]
  | ["toggle"]
  | ["send", string]
  | ChatListenerCall
  /** A language (wins over page and browser); `null` goes back to those. */
  | ["locale", ChatLocale | null]
  /** Override strings of one language, or of all. */
  | ["strings", ChatLocale, ChatStrings]
  | ["strings", ChatStrings]
  | ["identify", ChatIdentity]
  | ["set", ChatAttributes]
  /** The visitor's consent: storage (with `data-consent="required"`) and session recording follow it (call it on every page; docs/privacy.md). */
  | ["consent", boolean]
  /** A custom event: name 1..64 characters. */
  | ["track", string, ChatAttributes?]
  /** Remove the widget and close its connection; later calls queue again. */
  | ["destroy"];

/** The command's name: the first element of a `ChatCommand`. */
export type ChatCommandName = ChatCommand[0];

/**
 * `window.$chat`: an array of calls. Pushed before the widget runs, calls
 * wait and run in order when it starts; after that `push` runs each at once.
 */
export interface ChatQueue extends Array<ChatCommand> {
  /** One listener call, its callback typed by the event. */
  push<E extends ChatEventName>(call: ["on" | "off", E, ChatEvents[E]]): number;
  /** Any calls, in order. */
  push(...calls: ChatCommand[]): number;
}

declare global {
  /** Also `window.$chat`. */
  var $chat: ChatQueue;
}

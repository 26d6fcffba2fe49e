// Compiled (never run) by `npm run check`: holds the published types of the
// `$chat` API (chat.d.ts) against the widget's own code and its documented
// use. The widget's side: widget.js types its events' payloads and its command
// names with chat.d.ts (a missing or unknown command fails there); here, the
// strings' keys and a usage of every command, with calls that must not compile.

import type en from "../src/i18n/en.js";
import type { CobrowseStrings } from "../src/i18n/cobrowse.js";
import type { ChatMessage, ChatStringKey } from "./chat";

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;

/** The published string keys are exactly the widget's (chat and co-browse bundles). */
export type StringKeysMatch = Assert<Same<ChatStringKey, keyof typeof en | keyof CobrowseStrings>>;

// The README's and docs/widget.md's examples, and every command.
window.$chat = window.$chat || [];
$chat.push(["locale", "ca"]);
$chat.push(["on", "message", (m) => console.log(m.from.kind, m.text, m.time.getTime())]);
$chat.push(["open"], ["close"], ["toggle"]);
$chat.push(["send", "Hello"]);
const onUnread = (n: number): void => console.log(n);
$chat.push(["on", "unread", onUnread], ["off", "unread", onUnread]);
$chat.push(["on", "ready", () => undefined], ["on", "open", () => undefined]);
$chat.push(["locale", null]);
$chat.push(["strings", "es", { title: "Hable con nosotros" }], ["strings", { send: "Go" }]);
$chat.push(["identify", { id: "cust-1842", name: "Ann", email: "ann@example.com", hash: "ab12" }]);
$chat.push(["set", { plan: "pro", seats: 3, trial: false, gone: null, cart: { items: 2, total: 59.9 } }]);
$chat.push(["consent", true]);
$chat.push(["track", "added_to_cart", { sku: "B-12", total: 59.9 }], ["track", "viewed"]);
$chat.push(["destroy"]);
export const file = (m: ChatMessage): string | undefined => m.attachment?.url;

// Mistakes the types catch.
// @ts-expect-error: no such command
$chat.push(["opne"]);
// @ts-expect-error: send takes text
$chat.push(["send", 42]);
// @ts-expect-error: no such event
$chat.push(["on", "messages", () => undefined]);
// @ts-expect-error: `unread` passes a number
$chat.push(["on", "unread", (n: string) => n]);
// @ts-expect-error: no such string
$chat.push(["strings", { titel: "Chat" }]);
// @ts-expect-error: one level of nesting only
$chat.push(["set", { cart: { items: { deep: 1 } } }]);

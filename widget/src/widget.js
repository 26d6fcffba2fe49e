// The chat, put together: storage, store, client, language, the JS API and
// the views. `start` returns the teardown that undoes all of it.
//
// Nothing is shown until the server has welcomed us: a wrong site key or a
// refused origin leaves the page exactly as it was, with one console warning.

import { takeOver } from "./api.js";
import { createClient } from "./client.js";
import { createCobrowseGate } from "./cobrowse-gate.js";
import { createEmitter } from "./emitter.js";
import { createRecording } from "./recording.js";
import { guard, warn } from "./guard.js";
import { addLanguages, BUILT_IN, LANGUAGES, pageLanguages, pickLocale, translator } from "./i18n/index.js";
import { gated, storage } from "./storage.js";
import { loadScript } from "./script.js";
import { createStore } from "./store.js";
import { mountAnnouncer } from "./view/announcer.js";
import { mountBubble } from "./view/bubble.js";
import { unreadCount } from "./view/context.js";
import { listen } from "./view/dom.js";
import { mountPanel } from "./view/panel.js";
import { mountRoot } from "./view/root.js";
import { mountTeaser } from "./view/teaser.js";
import { watchRoutes } from "./routes.js";

/** @typedef {import("./types.js").Entry} Entry */
/** The published API (types/chat.d.ts): tsc holds this file to it. */
/** @typedef {import("../types/chat").ChatEvents} ChatEvents */
/** @typedef {import("../types/chat").ChatCommandName} ChatCommandName */

/** Why the server refused us, for the one console warning. @param {number} code @param {string} site */
function refusal(code, site) {
  if (code === 4103) return `unknown site key "${site}" (check data-site on the script tag); the chat is off on this page`;
  if (code === 4104) return "this page's origin is not allowed for the site; the chat is off on this page";
  return `the server refused the chat (close code ${code}); the chat is off on this page`;
}

/**
 * The public shape of a message for `on("message")`.
 * @param {Entry} e @returns {import("../types/chat").ChatMessage}
 */
const publicMessage = (e) => ({
  conversation: e.conv,
  offset: e.offset,
  text: e.body,
  from: { kind: e.from.kind, name: e.from.name },
  time: new Date(e.ts * 1000),
  ...(e.data?.attachment ? { attachment: { ...e.data.attachment } } : {}),
});

/**
 * @param {{site: string, base: string, dept?: string, consent?: boolean, theme?: string, global?: string}} config
 *   `base`: the loader's URL; the WebSocket is `ws` next to it; `consent`: the
 *   page waits for the visitor's consent (`data-consent="required"`).
 * @returns {() => void} teardown
 */
export function start({ site, base, dept, consent = false, theme, global = "$chat" }) {
  const ws = new URL("ws", base);
  ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";
  // data-consent="required": nothing in the browser's storage and no recording
  // until the page says the visitor agreed, or the visitor opens the chat
  // (their own request: the chat needs its token), which allows storage only.
  const local = gated(storage("localStorage", `chatserver:${site}:`), !consent);
  const session = gated(storage("sessionStorage", `chatserver:${site}:`), !consent);
  let agreed = false;
  /** `["consent", bool]`: storage and recording follow it. @param {unknown} given */
  const setConsent = (given) => {
    agreed = given === true;
    if (agreed) [local, session].forEach((area) => area.allow());
    else if (consent && !store.get().open) [local, session].forEach((area) => area.deny());
    recording.consent(agreed);
  };
  const events = createEmitter();
  /**
   * Emit an API event with the payload types/chat.d.ts publishes for it.
   * @template {keyof ChatEvents} K @param {K} name @param {Parameters<ChatEvents[K]>} payload
   */
  const emit = (name, ...payload) => events.emit(name, payload[0]);
  /** @type {Record<string, Record<string, string>>} */
  const overrides = {};
  /** Strings the co-browse bundle brought, by language. @type {Record<string, Record<string, string>>} */
  const bundled = {};
  /** @type {string | null} */
  let wanted = null;
  let ready = false;
  let disabled = false;
  /** @type {(() => void)[]} */
  let ui = [];
  /** @type {{say(text: string): void} | null} */
  let announcer = null;

  const store = createStore({
    link: "connecting", site: null, agentsOnline: 0, conv: null, entries: [], outbox: [], uploads: [], form: "idle", mailed: "", typing: null,
    agentRead: 0, seen: 0, open: session.get("open") === true, locale: "en", maxChars: 4000,
  });
  let t = translator("en", overrides);
  /** The languages bundle, once asked for; resolves when it ran (or failed: English then). @type {Promise<void> | null} */
  let langs = null;
  const pick = () => pickLocale([wanted, ...pageLanguages(), store.get().site?.settings.language], LANGUAGES);
  /** The strings of the language picked now, loaded (at once for English). */
  const strings = () => {
    if (pick() in BUILT_IN) return Promise.resolve();
    return (langs ||= loadScript(new URL(__LANGS_BUNDLE__, base).href, __LANGS_INTEGRITY__).then(
      () => {
        addLanguages(/** @type {any} */ (window).__chatserverLangs);
      },
      () => warn("could not load the languages; English it is"),
    ));
  };
  /** Translate in the language picked now, if loaded (else English for now): true if it was. */
  const apply = () => {
    const want = pick();
    const locale = want in BUILT_IN ? want : "en";
    t = translator(locale, overrides, bundled);
    store.set({ locale });
    return locale === want;
  };
  /** Follow the picked language: at once when its strings are here, else once they are. */
  const relocale = () => (apply() ? Promise.resolve() : strings().then(apply));
  strings(); // the page's or browser's language: on its way while the socket connects

  const unmount = () => {
    ui.forEach((teardown) => guard(teardown)());
    ui = [];
    announcer = null;
    cobrowse?.unmount();
  };
  /** @type {ReturnType<typeof createCobrowseGate> | null} */
  let cobrowse = null;

  /** Live messages that came before "ready". @type {import("./types.js").Entry[]} */
  const early = [];
  /** @param {import("./types.js").Entry} e */
  const onLiveMessage = (e) => {
    emit("message", publicMessage(e));
    if (e.from.kind === "agent") announcer?.say(t("new_message", { name: e.from.name || t("agent"), text: e.body }));
  };

  const client = createClient({
    url: ws.href,
    base,
    site,
    dept,
    store,
    local,
    session,
    onReady() {
      recording.ready(store.get().site?.settings || {});
      // The window appears in its language, not first in English.
      relocale().then(guard(() => {
        if (disabled || ready) return;
        mount();
        ready = true;
        emit("ready");
        if (store.get().open) emit("open");
        for (const e of early.splice(0)) onLiveMessage(e);
      }));
    },
    onMessage(e) {
      // Before "ready" (the language's strings still loading, a queued `send`
      // already answered) a message waits, so the page hears "ready" first.
      if (ready) onLiveMessage(e);
      else early.push(e);
    },
    onServer(frame) {
      if (frame.t === "open") setOpen(true); // a proactive trigger's "open the widget"
    },
    onDisabled(code) {
      if (disabled) return;
      disabled = true;
      unmount();
      warn(refusal(code, site));
    },
  });

  const recording = createRecording({
    bundle: new URL(__RECORDER_BUNDLE__, base).href,
    integrity: __RECORDER_INTEGRITY__,
    session,
    required: consent,
    transport: client.recording,
    attach: (r) => client.recording.attach(r),
  });
  cobrowse = createCobrowseGate({
    bundle: new URL(__COBROWSE_BUNDLE__, base).href,
    integrity: __COBROWSE_INTEGRITY__,
    store,
    link: client.cobrowse,
    session,
    live: recording.live,
    addStrings(tables) {
      Object.assign(bundled, tables);
      relocale();
    },
  });

  /** @param {boolean} open */
  const setOpen = (open) => {
    if (disabled || store.get().open === open) return;
    if (open) [local, session].forEach((area) => area.allow()); // the visitor's own request
    session.set("open", open);
    store.set({ open });
  };
  const actions = {
    open: () => setOpen(true),
    close: () => setOpen(false),
    toggle: () => setOpen(!store.get().open),
    /** @param {string} text */
    send: (text) => client.send(text),
    /** @param {string} text */
    draft: (text) => client.draft(text),
    /** @param {string} cid */
    retry: (cid) => client.retry(cid),
    /** @param {{name: string, email: string, body: string}} form */
    offline: (form) => client.offline(form),
    /** @param {string} rating @param {string} comment */
    rate: (rating, comment) => client.rate(rating, comment),
    /** @param {string} email */
    transcript: (email) => client.transcript(email),
    /** @param {File} file */
    attach: (file) => client.attach(file),
    /** @param {string} cid */
    dismiss: (cid) => client.dismiss(cid),
    // The emoji bundle (emoji-bundle.js), added the first time the composer needs it.
    emoji: () => loadScript(new URL(__EMOJI_BUNDLE__, base).href, __EMOJI_INTEGRITY__).then(() => /** @type {any} */ (window).__chatserverEmoji),
  };

  const viewing = () => store.get().open && document.visibilityState !== "hidden";
  const mount = () => {
    const root = mountRoot(store.get().site?.settings.color, theme);
    const ctx = { store, actions, get t() { return t; } };
    const live = mountAnnouncer(root.box);
    announcer = live;
    ui = [mountPanel(root.box, ctx), mountBubble(root.box, ctx), mountTeaser(root.box, ctx, session), live.teardown, root.teardown];
    cobrowse?.mount(root.box, ctx);
  };

  let unread = 0;
  const stopWatching = store.subscribe((s, prev) => {
    if (ready && s.open !== prev.open) emit(s.open ? "open" : "close");
    if (viewing() && (s.entries !== prev.entries || s.open !== prev.open || s.conv !== prev.conv)) client.read();
    const n = unreadCount(s);
    if (n !== unread) {
      unread = n;
      emit("unread", n);
    }
  });
  const stopVisibility = listen(document, "visibilitychange", () => viewing() && client.read());

  /**
   * The API's commands: a `case` for each name types/chat.d.ts publishes (tsc
   * checks both ways: a published name without its case fails `unknown` below,
   * a case the types do not name fails the switch).
   * @param {string} name @param {any[]} args
   */
  const run = (name, args) => {
    const command = /** @type {ChatCommandName} */ (name);
    switch (command) {
      case "open":
      case "close":
      case "toggle":
        return actions[command]();
      case "send":
        return typeof args[0] === "string" ? client.send(args[0]) : undefined;
      case "on":
        events.on(args[0], args[1]);
        if (args[0] === "ready" && ready) emit("ready"); // late listeners still hear it
        return;
      case "off":
        return events.off(args[0], args[1]);
      case "locale":
        wanted = typeof args[0] === "string" ? args[0] : null;
        return relocale();
      case "strings": {
        const [lang, table] = typeof args[0] === "string" ? args : [null, args[0]];
        if (!table || typeof table !== "object") return;
        for (const l of lang ? [String(lang).toLowerCase()] : LANGUAGES) {
          overrides[l] = { ...overrides[l], ...table };
        }
        return relocale();
      }
      case "identify":
        return client.identify(args[0]);
      case "set":
        return client.set(args[0]);
      case "consent":
        return setConsent(args[0]);
      case "track":
        return client.track(args[0], args[1]);
      case "destroy":
        return teardown();
      default:
        unknown(command);
    }
  };
  /** @param {never} command a name no case took (at run time: any string) */
  const unknown = (command) => warn(`unknown command "${command}"`);
  const release = takeOver(global, run);

  const stopRoutes = watchRoutes(() => client.page());

  const teardown = () => {
    release();
    stopRoutes();
    stopWatching();
    stopVisibility();
    cobrowse?.stop();
    recording.stop();
    client.stop();
    unmount();
    events.clear();
  };
  client.page();
  client.start();
  return teardown;
}

// Session recording, the chat bundle's side (docs/recordings.md): whether this
// tab records (the site's `recording` setting, its sampling rate, and consent
// when the site asks for it), loading the recorder bundle once the chat is up
// (so after the page's load event), and handing it the connection. Nothing
// of rrweb is in the chat bundle.
//
// Consent: with `recording_consent` on, nothing is recorded until the page
// calls `$chat.push(["consent", true])` (call it on every page load, e.g.
// from the consent banner's callback); `["consent", false]` stops at once.

import { guard, warn } from "./guard.js";

/**
 * @typedef {import("./storage.js").KeyValue} KeyValue
 * @typedef {import("./recorder-core.js").Recorder} Recorder
 * @typedef {import("./recorder-upload.js").Transport} Transport
 * @typedef {{recording?: boolean, recording_sample?: number, recording_consent?: boolean}} Settings
 */

/**
 * @param {{
 *   bundle: string,
 *   session: KeyValue,
 *   transport: Transport,
 *   attach: (recorder: Recorder | null) => void,
 * }} options `bundle`: the recorder bundle's URL; `attach` routes replies to it
 */
export function createRecording({ bundle, session, transport, attach }) {
  /** @type {Settings | null} */
  let settings = null;
  let consent = false;
  let loading = false;
  /** @type {Recorder | null} */
  let recorder = null;

  /** Whether this tab's visit is in the sample (decided once per tab). */
  const sampled = () => {
    let pick = session.get("rec-sampled");
    if (typeof pick !== "boolean") {
      const rate = Number(settings?.recording_sample ?? 1);
      pick = Math.random() < (Number.isFinite(rate) ? rate : 0);
      session.set("rec-sampled", pick);
    }
    return pick;
  };
  const wanted = () =>
    !!settings?.recording && (!settings.recording_consent || consent) && sampled();

  const begin = () => {
    if (recorder || !wanted()) return;
    const make = /** @type {any} */ (window).__chatserverRecorder?.createRecorder;
    if (!make) return;
    recorder = make({ transport, storage: session, onStop: () => end() });
    attach(recorder);
    if (transport.online()) recorder?.online();
  };
  const end = () => {
    recorder?.stop();
    recorder = null;
    attach(null);
  };

  const maybeStart = () => {
    if (recorder || loading || !wanted()) return;
    if (/** @type {any} */ (window).__chatserverRecorder) return begin();
    loading = true;
    const script = document.createElement("script");
    script.async = true;
    script.src = bundle;
    script.onload = guard(() => {
      loading = false;
      begin();
    });
    script.onerror = () => {
      loading = false;
      warn("could not load the recorder from", bundle);
    };
    (document.head || document.documentElement).appendChild(script);
  };

  return {
    /** The server welcomed us: the site's settings are known. @param {Settings} s */
    ready(s) {
      settings = s;
      maybeStart();
    },
    /** `["consent", bool]` from the page. @param {unknown} given */
    consent(given) {
      consent = given === true;
      if (consent) maybeStart();
      else end();
    },
    /** The running recorder, if any (co-browsing drives it). */
    get recorder() {
      return recorder;
    },
    stop: end,
  };
}

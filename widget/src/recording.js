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
import { loadScript } from "./script.js";

/**
 * @typedef {import("./storage.js").KeyValue} KeyValue
 * @typedef {import("./recorder-core.js").Recorder} Recorder
 * @typedef {import("./recorder-upload.js").Transport} Transport
 * @typedef {{recording?: boolean, recording_sample?: number, recording_consent?: boolean}} Settings
 */

/**
 * @param {{
 *   bundle: string,
 *   integrity: string,
 *   session: KeyValue,
 *   transport: Transport,
 *   attach: (recorder: Recorder | null) => void,
 *   required?: boolean,
 * }} options `bundle`: the recorder bundle's URL, `integrity` its SRI hash;
 *   `attach` routes replies to it; `required`: the page asks for consent
 *   (`data-consent="required"`) whatever the site's `recording_consent`
 */
export function createRecording({ bundle, integrity, session, transport, attach, required = false }) {
  /** @type {Settings | null} */
  let settings = null;
  let consent = false;
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
    !!settings?.recording && (!(settings.recording_consent || required) || consent) && sampled();

  // Co-browsing's use of the recorder (`live` below): who wants events, and
  // the live-only recorder made for it when this tab does not record.
  /** @type {((r: Recorder | null) => void) | null} */
  let liveUser = null;
  /** @type {Recorder | null} */
  let liveOnly = null;
  const maker = () => /** @type {any} */ (window).__chatserverRecorder?.createRecorder;

  const begin = () => {
    if (recorder || !wanted()) return;
    const make = maker();
    if (!make) return;
    // One rrweb recorder per page: a live-only one gives way to the recording.
    liveOnly?.stop();
    liveOnly = null;
    recorder = make({ transport, storage: session, onStop: () => end() });
    attach(recorder);
    if (transport.online()) recorder?.online();
    liveUser?.(recorder);
  };
  const end = () => {
    const was = recorder;
    recorder?.stop();
    recorder = null;
    attach(null);
    if (was && liveUser) startLive();
  };
  const startLive = () => {
    if (!liveUser || recorder || liveOnly) return;
    const make = maker();
    if (!make) return;
    liveOnly = make({ upload: false });
    liveUser(liveOnly);
  };

  /** Load the recorder bundle (once), then call `then`. @param {() => void} then */
  const load = (then) => {
    if (maker()) return then();
    loadScript(bundle, integrity).then(guard(then), () => warn("could not load the recorder from", bundle));
  };

  const maybeStart = () => {
    if (recorder || !wanted()) return;
    load(begin);
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
    /**
     * Co-browsing's recorder (cobrowse.js): the recording's when this tab
     * records, else a live-only one (`upload: false`) loaded for it. `use` gets
     * it now or once loaded, and again when it changes (a recording that starts
     * later takes over); `null` when none is left. Returns the release, which
     * stops a live-only recorder.
     * @param {(r: Recorder | null) => void} use
     */
    live(use) {
      liveUser = use;
      if (recorder) use(recorder);
      else load(startLive);
      return () => {
        if (liveUser !== use) return;
        liveUser = null;
        liveOnly?.stop();
        liveOnly = null;
      };
    },
    stop() {
      end();
      liveUser?.(null);
      liveUser = null;
      liveOnly?.stop();
      liveOnly = null;
    },
  };
}

// Constants that scripts/build.mjs substitutes at build time (esbuild `define`).

/** The file name of the content-hashed chat bundle, e.g. `chat.3FJ2KQ.js`. */
declare const __CHAT_BUNDLE__: string;

/** The file name of the content-hashed recorder bundle, e.g. `widget/recorder.7QX2LM.js`. */
declare const __RECORDER_BUNDLE__: string;

/** The file name of the content-hashed co-browse bundle, e.g. `widget/cobrowse.5KD9QW.js`. */
declare const __COBROWSE_BUNDLE__: string;

/** The file name of the content-hashed emoji bundle, e.g. `widget/emoji.5KD9QW.js`. */
declare const __EMOJI_BUNDLE__: string;

/** The emoji bundle's Subresource Integrity value, `sha384-<base64>`. */
declare const __EMOJI_INTEGRITY__: string;

/** The file name of the content-hashed languages bundle (Catalan, Spanish), e.g. `widget/langs.5KD9QW.js`. */
declare const __LANGS_BUNDLE__: string;

/** The languages bundle's Subresource Integrity value, `sha384-<base64>`. */
declare const __LANGS_INTEGRITY__: string;

/** The chat bundle's Subresource Integrity value, `sha384-<base64>`. */
declare const __CHAT_INTEGRITY__: string;

/** The recorder bundle's Subresource Integrity value, `sha384-<base64>`. */
declare const __RECORDER_INTEGRITY__: string;

/** The co-browse bundle's Subresource Integrity value, `sha384-<base64>`. */
declare const __COBROWSE_INTEGRITY__: string;

/** CSS imported as text (the replay bundle's rrweb styles; esbuild's `text` loader). */
declare module "*.css" {
  const text: string;
  export default text;
}

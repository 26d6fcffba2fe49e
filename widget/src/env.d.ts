// Constants that scripts/build.mjs substitutes at build time (esbuild `define`).

/** The file name of the content-hashed chat bundle, e.g. `chat.3FJ2KQ.js`. */
declare const __CHAT_BUNDLE__: string;

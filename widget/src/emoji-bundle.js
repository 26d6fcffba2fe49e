// The emoji bundle's entry (emoji.<hash>.js): the chat bundle adds this script
// the first time the visitor opens the emoji picker or types what ends like a
// shortcode (view/composer.js), and takes `mountEmoji` from the global below:
// a classic script, added with its integrity hash and the page's nonce
// (script.js), like the co-browse bundle.

import { mountEmoji } from "./emoji.js";

/** @type {any} */ (window).__chatserverEmoji = { mountEmoji };

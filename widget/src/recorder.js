// The recorder bundle's entry (recorder.<hash>.js). The chat bundle adds this
// script only when the tab records, and takes `createRecorder` from the global
// below once it has loaded: a classic script (not a module), added with its
// integrity hash and the page's nonce (script.js).

import { createRecorder } from "./recorder-core.js";

/** @type {any} */ (window).__chatserverRecorder = { createRecorder };

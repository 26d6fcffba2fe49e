// The co-browse bundle's entry (cobrowse.<hash>.js). The chat bundle adds this
// script only when the tab needs co-browsing (cobrowse-gate.js) and takes
// `createCobrowse` from the global below once it has loaded: a classic script,
// added with its integrity hash and the page's nonce (script.js). It holds no
// rrweb: that is the recorder bundle's, loaded only once the visitor allows
// co-browsing.

import { createCobrowse } from "./cobrowse.js";

/** @type {any} */ (window).__chatserverCobrowse = { createCobrowse };

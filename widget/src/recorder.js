// The recorder bundle's entry (recorder.<hash>.js). The chat bundle adds this
// script only when the tab records, and takes `createRecorder` from the global
// below once it has loaded: classic scripts, so no CORS is needed.

import { createRecorder } from "./recorder-core.js";

/** @type {any} */ (window).__chatserverRecorder = { createRecorder };

// The replay bundle's entry (replay.<hash>.js, also served as /widget/replay.js):
// the console loads it with a classic script tag and takes `createReplayer`
// from the global below (replayer.js has the API).

import { createReplayer } from "./replayer.js";

/** @type {any} */ (window).chatserverReplay = { createReplayer };

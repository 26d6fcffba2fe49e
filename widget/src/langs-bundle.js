// The languages bundle's entry (langs.<hash>.js): Catalan and Spanish. The
// chat bundle adds this script only when the page, the visitor's browser, the
// API or the site's setting picks one of them (widget.js), and takes the
// strings from the global below: a classic script, added with its integrity
// hash and the page's nonce (script.js), like the other bundles.

import { LANGS } from "./i18n/langs.js";

/** @type {any} */ (window).__chatserverLangs = LANGS;

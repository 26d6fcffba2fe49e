// The Catalan and Spanish strings, by language: the languages bundle's
// (langs-bundle.js), and the admin preview's (preview.js).

import ca from "./ca.js";
import es from "./es.js";

export const LANGS = { ca, es };

// The co-browse prompt's and banner's strings. The co-browse bundle brings
// them (cobrowse.js adds them to the widget's languages when it starts), so
// the chat bundle does not carry them; the transcript's co-browse lines
// (cb_requested, ...) are in en.js and the others. The shop overrides these
// like any other string (`["strings", lang, {cb_allow: ...}]`).

const en = {
  cb_request: "{name} would like to see this page",
  cb_request_detail: "They will see this page as you use it and can point at things. What you type in forms stays hidden. You can stop at any time.",
  cb_allow: "Allow",
  cb_decline: "Decline",
  cb_viewing: "{name} is viewing this page",
  cb_stop: "Stop sharing",
};

/** @typedef {typeof en} CobrowseStrings */

/** @type {CobrowseStrings} */
const ca = {
  cb_request: "{name} voldria veure aquesta pàgina",
  cb_request_detail: "Veurà aquesta pàgina mentre la fas servir i et podrà assenyalar coses. El que escriguis als formularis queda amagat. Pots aturar-ho quan vulguis.",
  cb_allow: "Permet",
  cb_decline: "No, gràcies",
  cb_viewing: "{name} està veient aquesta pàgina",
  cb_stop: "Deixa de compartir",
};

/** @type {CobrowseStrings} */
const es = {
  cb_request: "{name} quiere ver esta página",
  cb_request_detail: "Verá esta página mientras la usas y podrá señalarte cosas. Lo que escribas en los formularios queda oculto. Puedes detenerlo cuando quieras.",
  cb_allow: "Permitir",
  cb_decline: "No, gracias",
  cb_viewing: "{name} está viendo esta página",
  cb_stop: "Dejar de compartir",
};

/** @type {Record<string, Record<string, string>>} */
export default { en, ca, es };

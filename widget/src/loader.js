// widget.js, the one script a shop pastes:
//   <script src="https://HOST/widget.js" data-site="SITE_KEY" async></script>
// It only makes sure `window.$chat` exists (the API queue) and, once the page
// has loaded and the browser is idle, adds the content-hashed chat bundle from
// the same place it was itself loaded from. It never throws into the page.
// Budget: 2 KB gzip (scripts/size.mjs).
//
// Under a Content-Security-Policy (docs/widget.md): the bundle gets the nonce
// of this script's own tag (a policy of nonces lets it run), and comes with
// its Subresource Integrity hash and crossorigin="anonymous" (the server sends
// Access-Control-Allow-Origin: *), so a changed file on the way is refused.

(() => {
  try {
    const w = /** @type {Record<string, any>} */ (/** @type {unknown} */ (window));
    w.$chat = w.$chat || [];
    // Our own tag; when the page added it in a way that hides that, the tag
    // with data-site whose URL ends in widget.js.
    const script = /** @type {HTMLScriptElement | null} */ (
      document.currentScript || document.querySelector('script[data-site][src*="widget.js"]')
    );
    const site = script && script.getAttribute("data-site");
    if (!script || !site) {
      console.warn("chatserver: the widget.js script tag needs data-site=\"SITE_KEY\"");
      return;
    }
    const add = () => {
      try {
        const chat = document.createElement("script");
        chat.async = true;
        chat.crossOrigin = "anonymous";
        chat.integrity = __CHAT_INTEGRITY__;
        chat.nonce = script.nonce || "";
        chat.src = new URL(__CHAT_BUNDLE__, script.src).href;
        // data-site and the options (data-dept, data-consent, data-theme...): every data-* as given.
        for (const { name, value } of script.attributes) if (/^data-/.test(name)) chat.setAttribute(name, value);
        chat.setAttribute("data-base", script.src);
        chat.onerror = () => console.warn("chatserver: could not load the chat from", chat.src);
        (document.head || document.documentElement).appendChild(chat);
      } catch (err) {
        console.warn("chatserver:", err);
      }
    };
    const idle = () => {
      const ric = w.requestIdleCallback;
      if (typeof ric === "function") ric(add, { timeout: 1500 });
      else setTimeout(add, 1);
    };
    if (document.readyState === "complete") idle();
    else addEventListener("load", idle, { once: true });
  } catch (err) {
    try {
      console.warn("chatserver:", err);
    } catch {
      // nothing to report to
    }
  }
})();

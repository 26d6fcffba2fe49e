// The visitor panel: who the visitor of the shown conversation is, where they
// are now (updated live from `visitor` frames), the pages they saw with the
// time on each, the cart and other attributes, their browser and local time,
// and their past conversations.

import { clock, duration, el, fill, safeHref, when } from "./dom.js";
import { avatar } from "./avatars.js";
import { ratingText, stateText, visitorLabel } from "./labels.js";
import { lang, number, t, tn } from "../i18n.js";

/**
 * @typedef {import("./conversations.js").Store} Store
 * @typedef {import("./conversations.js").Conv} Conv
 * @typedef {{url: string, title: string, referrer: string, ts: number, visit: number}} PageView
 * @typedef {{id: string, name: string, email: string, attributes: Record<string, any>, visits: number,
 *   page: PageView | null, verified?: boolean}} VisitorRecord
 * @typedef {{since?: number, url?: string, title?: string, tz?: string, browser?: string, os?: string,
 *   device?: string, lang?: string}} Online
 */

const PRESENCE_POLL = 10000; // ms

/** What the panel calls each recording signal (docs/recordings.md, "Signals"). */
const SIGNAL_NAMES = /** @type {Record<string, string>} */ ({
  rage: t("Rage clicks"),
  dead: t("Dead click"),
  error: t("JavaScript error"),
  request: t("Failed request"),
  abandon: t("Left a form half filled"),
});

export class VisitorPanel {
  /**
   * @param {Store} store @param {HTMLElement} root
   * @param {(conv: Conv) => void} openConv
   */
  constructor(store, root, openConv) {
    this.store = store;
    this.root = root;
    this.openConv = openConv;
    /** @type {string | null} */
    this.visitorId = null;
    /** @type {string | null} the conversation shown next to the panel */
    this.convId = null;
    /** @type {VisitorRecord | null} */
    this.record = null;
    /** @type {PageView[]} */
    this.pages = [];
    /** @type {Conv[]} */
    this.past = [];
    /** @type {Online | null} */
    this.online = null;
    this.loading = 0;
    setInterval(() => this.visitorId && this.render(), 20000); // the visitor's local time
    setInterval(() => this.tick(), 1000); // "N s so far" on the current page
    // Whether the visitor is still on the site: no frame says they left, so ask
    // again while the panel shows them online.
    setInterval(() => this.visitorId && this.online && this.load(), PRESENCE_POLL);
  }

  /** Count up the time on the page the visitor is on now. */
  tick() {
    for (const span of this.root.querySelectorAll(".spent.so-far")) {
      const since = Number(/** @type {HTMLElement} */ (span).dataset.since);
      span.textContent = clock(since) + " · " + t("%(time)s so far", { time: duration(Date.now() / 1000 - since) });
    }
  }

  /** Show the visitor of a conversation (null: nothing open). @param {Conv | null} conv */
  show(conv) {
    const convId = conv ? conv.id : null;
    const id = conv ? conv.visitor : null;
    if (id === this.visitorId && convId === this.convId) return this.render();
    this.convId = convId;
    if (id === this.visitorId && id) {
      this.render();
      this.load(); // another of the visitor's conversations: past ones changed
      return;
    }
    this.visitorId = id;
    this.record = null;
    this.pages = [];
    this.past = [];
    this.online = null;
    this.render();
    if (id) this.load();
  }

  /** Ask the server for the record, page views, past conversations and presence. */
  async load() {
    const id = this.visitorId;
    if (!id || this.store.conn.state !== "online") return;
    const ticket = ++this.loading;
    try {
      const reply = await this.store.conn.request({ t: "visitor", visitor: id });
      if (ticket !== this.loading || id !== this.visitorId) return;
      this.record = reply.visitor;
      this.store.visitors.set(id, reply.visitor);
      this.pages = reply.pages || [];
      this.past = reply.conversations || [];
      this.online = reply.online || null;
      this.render();
      this.store.emit("visitor", id);
    } catch {
      // shown as "loading" until the next welcome reloads it
    }
  }

  /** A live `visitor` frame: a page view, identify or attributes. @param {{visitor: VisitorRecord}} frame */
  live(frame) {
    const v = frame.visitor;
    if (v.id !== this.visitorId) return;
    this.record = v;
    const page = v.page;
    if (page && !(this.pages[0] && this.pages[0].ts >= page.ts)) {
      this.pages = [page, ...this.pages].slice(0, 50);
      if (this.online) this.online = { ...this.online, url: page.url, title: page.title };
    }
    this.render();
  }

  render() {
    const v = this.record;
    if (!this.visitorId) {
      fill(this.root, el("p", { class: "muted", text: t("Open a conversation to see its visitor.") }));
      return;
    }
    if (!v) {
      fill(this.root, el("p", { class: "muted", text: t("Loading the visitor…") }));
      return;
    }
    const online = this.online;
    fill(
      this.root,
      this.identity(v, online),
      this.facts(v, online),
      this.now(online),
      this.cart(v.attributes || {}),
      this.attributes(v.attributes || {}),
      this.trouble(),
      this.history(online),
      this.conversations(),
    );
  }

  /** The visitor's signals seen by this console (rage clicks, errors...: `signal` frames), newest first. */
  trouble() {
    const seen = this.visitorId ? this.store.signals.get(this.visitorId) || [] : [];
    if (!seen.length) return null;
    const admin = this.store.me?.role === "admin";
    const noAnswer = t("no answer");
    const items = [...seen].reverse().map((s) => {
      const d = s.detail || {};
      const what = s.kind === "error" ? d.message : s.kind === "request" ? `${d.method || ""} ${d.endpoint || ""} (${d.status || noAnswer})` : d.text || d.selector || "";
      return el(
        "li",
        { class: `signal ${s.kind}` },
        el("strong", { text: SIGNAL_NAMES[s.kind] || s.kind }),
        what ? el("span", { class: "what", text: ` ${what}` }) : null,
        el("span", { class: "url", text: " " + t("on %(url)s", { url: s.url }) }),
        admin ? el("a", { href: `/console/sessions/${encodeURIComponent(s.session)}`, target: "_blank", rel: "noopener", text: " " + t("Watch") }) : null,
      );
    });
    return el("section", { class: "v-trouble", "aria-live": "polite" }, el("h3", { text: t("Trouble on the site") }), el("ul", {}, ...items));
  }

  /** @param {VisitorRecord} v @param {Online | null} online */
  identity(v, online) {
    const verified =
      typeof v.verified === "boolean"
        ? el("span", { class: v.verified ? "badge ok" : "badge", text: v.verified ? t("verified") : t("unverified") })
        : null;
    return el(
      "section",
      { class: "v-identity" },
      el("div", { class: "v-head" }, avatar("visitor", v.id, visitorLabel(this.store, v.id), "lg"), el("h2", { class: "v-name", text: visitorLabel(this.store, v.id) })),
      v.email ? el("p", { class: "v-email" }, el("span", { text: v.email }), " ", verified) : null,
      el("p", { class: online ? "v-presence on" : "v-presence", text: online ? t("Online since %(time)s", { time: clock(Number(online.since) || 0) }) : t("Not on the site now") }),
    );
  }

  /** @param {VisitorRecord} v @param {Online | null} online */
  facts(v, online) {
    /** @type {[string, string][]} */
    const rows = [];
    const tz = online?.tz;
    if (tz) {
      try {
        const local = new Intl.DateTimeFormat(lang(), { timeZone: tz, hour: "2-digit", minute: "2-digit", weekday: "short" }).format(new Date());
        rows.push([t("Local time"), `${local} (${tz})`]);
      } catch {
        rows.push([t("Time zone"), tz]);
      }
    }
    const device = [online?.browser, online?.os, online?.device].filter(Boolean).join(" · ");
    if (device) rows.push([t("Browser"), device]);
    if (online?.lang) rows.push([t("Language"), online.lang]);
    rows.push([t("Visits"), number(v.visits || 0)]);
    const referrer = this.referrer();
    if (referrer) rows.push([t("Referrer"), referrer]);
    return el("dl", { class: "v-facts" }, ...rows.flatMap(([k, value]) => [el("dt", { text: k }), el("dd", { text: value })]));
  }

  /** The external referrer of the current visit (its first page's). */
  referrer() {
    if (!this.pages.length) return "";
    const visit = this.pages[0].visit;
    const first = [...this.pages].reverse().find((p) => p.visit === visit);
    return first?.referrer || "";
  }

  /** @param {Online | null} online */
  now(online) {
    const page = this.pages[0];
    const url = online?.url || page?.url;
    if (!url) return null;
    const title = (online?.url ? online.title : page?.title) || url;
    return el("section", { class: "v-now" }, el("h3", { text: online ? t("Now on") : t("Last seen on") }), link(url, title), el("p", { class: "url", text: url }));
  }

  /** @param {Record<string, any>} attrs */
  cart(attrs) {
    const cart = attrs.cart;
    if (!cart || typeof cart !== "object") return null;
    const items = typeof cart.items === "number" ? tn("%(n)s item", "%(n)s items", cart.items) : null;
    let total = null;
    if (typeof cart.total === "number") {
      try {
        total = new Intl.NumberFormat(lang(), { style: "currency", currency: String(cart.currency || "EUR") }).format(cart.total);
      } catch {
        total = `${cart.total} ${cart.currency || ""}`.trim();
      }
    }
    const rest = Object.entries(cart).filter(([k]) => !["items", "total", "currency"].includes(k));
    return el(
      "section",
      { class: "v-cart" },
      el("h3", { text: t("Cart") }),
      el("p", { class: "cart-line" }, items ? el("span", { class: "cart-items", text: items }) : null, items && total ? " · " : null, total ? el("strong", { class: "cart-total", text: total }) : null),
      rest.length ? el("dl", {}, ...rest.flatMap(([k, value]) => [el("dt", { text: k }), el("dd", { text: show(value) })])) : null,
    );
  }

  /** @param {Record<string, any>} attrs */
  attributes(attrs) {
    const rest = Object.entries(attrs).filter(([k]) => k !== "cart");
    if (!rest.length) return null;
    return el(
      "section",
      { class: "v-attrs" },
      el("h3", { text: t("Attributes") }),
      el("dl", {}, ...rest.flatMap(([k, value]) => [el("dt", { text: k }), el("dd", { text: show(value) })])),
    );
  }

  /** Page views, newest first, with the time spent on each. @param {Online | null} online */
  history(online) {
    if (!this.pages.length) return null;
    const items = [];
    /** @type {Map<number, number>} when each visit began: its first page view (the list is newest first) */
    const starts = new Map();
    for (const p of this.pages) starts.set(p.visit, Math.min(starts.get(p.visit) ?? p.ts, p.ts));
    let visit = -1;
    for (let i = 0; i < this.pages.length; i++) {
      const p = this.pages[i];
      if (p.visit !== visit) {
        visit = p.visit;
        items.push(el("li", { class: "visit", text: t("Visit %(n)s", { n: p.visit }) + " · " + when(starts.get(p.visit) ?? p.ts) }));
      }
      const newer = this.pages[i - 1];
      const now = i === 0 && online && !(newer && newer.visit === p.visit);
      const spent = newer && newer.visit === p.visit ? duration(newer.ts - p.ts) : "";
      const text = now ? clock(p.ts) + " · " + t("%(time)s so far", { time: duration(Date.now() / 1000 - p.ts) }) : spent ? `${clock(p.ts)} · ${spent}` : clock(p.ts);
      items.push(
        el("li", { class: "page-view" }, link(p.url, p.title || p.url), el("span", { class: now ? "spent so-far" : "spent", "data-since": String(p.ts), text })),
      );
    }
    return el("section", { class: "v-pages" }, el("h3", { text: t("Pages") }), el("ol", {}, ...items));
  }

  conversations() {
    const past = this.past.filter((c) => c.id !== this.convId);
    if (!past.length) return null;
    return el(
      "section",
      { class: "v-past" },
      el("h3", { text: t("Past conversations") }),
      el(
        "ul",
        {},
        ...past.map((c) =>
          el(
            "li",
            {},
            el(
              "button",
              { type: "button", class: "linkish", onclick: () => this.openConv(c) },
              `${when(c.created_at)} · ${stateText(c.state)}`,
              c.agents.length ? ` · ${c.agents.map((a) => a.name).join(", ")}` : "",
            ),
            c.tags?.length ? el("span", { class: "muted", text: ` ${c.tags.join(", ")}` }) : null,
            ratingText(c.rating) ? el("span", { class: "muted", text: ` · ${ratingText(c.rating)}` }) : null,
          ),
        ),
      ),
    );
  }
}

/** A link to a visitor's page (http(s) only), opened in a new tab. @param {string} url @param {string} text */
function link(url, text) {
  const href = safeHref(url);
  if (!href) return el("span", { class: "page-title", text });
  return el("a", { class: "page-title", href, target: "_blank", rel: "noopener noreferrer", text });
}

/** An attribute value as text (a nested map as "k: v, ..."). @param {unknown} value */
function show(value) {
  if (value && typeof value === "object") {
    return Object.entries(value)
      .map(([k, v]) => `${k}: ${String(v)}`)
      .join(", ");
  }
  return String(value);
}

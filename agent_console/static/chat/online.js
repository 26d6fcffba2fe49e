// "On the site now": the visitors connected right now (the `visitors` request,
// asked again every POLL ms while the console is connected), newest first,
// with their page, how long they have been here, their browser, and whether
// they are in a chat. "Chat" opens a one-line form: the agent's first
// message goes with `start` (docs/protocol.md), the visitor's chat window
// opens with it, and the conversation opens here.

import { ago, el, fill } from "./dom.js";
import { visitorLabel } from "./labels.js";
import { t } from "../i18n.js";

/** @typedef {import("./conversations.js").Store} Store */
/**
 * @typedef {{id: string, since: number, url?: string, title?: string, browser: string,
 *   os: string, device: string, lang: string}} OnlineVisitor
 */

const POLL = 10_000; // ms
const SHOWN = 50; // visitors listed at most (the count says how many there are)

export class OnlineVisitors {
  /**
   * @param {Store} store
   * @param {HTMLElement} list the list element
   * @param {HTMLElement} count where the number goes
   * @param {(conv: string) => void} open open a conversation's tab
   */
  constructor(store, list, count, open) {
    this.store = store;
    this.list = list;
    this.count = count;
    this.open = open;
    /** @type {OnlineVisitor[]} */
    this.visitors = [];
    this.total = 0;
    /** @type {string | null} the visitor whose form is open */
    this.writing = null;
    this.asking = false;
    setInterval(() => this.refresh(), POLL);
    setInterval(() => this.render(), 1000 * 30); // "3 min" ages
  }

  async refresh() {
    if (this.asking || this.store.conn.state !== "online") return;
    this.asking = true;
    try {
      const reply = await this.store.conn.request({ t: "visitors" });
      this.visitors = reply.visitors || [];
      this.total = Number(reply.count) || 0;
      for (const v of this.visitors.slice(0, SHOWN)) this.store.learnVisitor(v.id); // names
      this.render();
    } catch {
      // shown as it was until the next try
    } finally {
      this.asking = false;
    }
  }

  /** @param {string} visitorId */
  inChat(visitorId) {
    for (const rec of this.store.records.values()) {
      if (rec.conv.visitor === visitorId && rec.conv.state !== "closed") return true;
    }
    return false;
  }

  render() {
    fill(this.count, this.total ? String(this.total) : "");
    if (!this.visitors.length) {
      fill(this.list, el("li", { class: "empty", text: t("Nobody is on the site right now. Visitors appear here as they browse the shop's pages; you can write to them first.") }));
      return;
    }
    // A form being written is not thrown away by a refresh.
    const keep = this.writing ? this.list.querySelector(`[data-visitor="${CSS.escape(this.writing)}"] form`) : null;
    fill(this.list, ...this.visitors.slice(0, SHOWN).map((v) => this.row(v, keep)));
  }

  /** @param {OnlineVisitor} v @param {Element | null} keep */
  row(v, keep) {
    const chatting = this.inChat(v.id);
    const where = v.title || v.url || "";
    const what = [v.device === "bot" ? t("bot") : v.device, v.browser, v.lang].filter(Boolean).join(" · ");
    const form = v.id === this.writing ? keep || this.form(v) : null;
    return el(
      "li",
      { class: "online-item", "data-visitor": v.id },
      el(
        "div",
        { class: "online-head" },
        el("span", { class: "who", text: visitorLabel(this.store, v.id) }),
        el("span", { class: "muted", text: ` ${ago(Number(v.since) || 0)}` }),
        chatting
          ? el("span", { class: "badge", text: t("in chat") })
          : el("button", {
              type: "button",
              class: "linkish start-chat",
              "aria-expanded": v.id === this.writing ? "true" : "false",
              text: t("Chat"),
              onclick: () => {
                this.writing = this.writing === v.id ? null : v.id;
                this.render();
                /** @type {HTMLElement | null} */ (this.list.querySelector(".start-form textarea"))?.focus();
              },
            }),
      ),
      where ? el("div", { class: "online-page", title: v.url || "", text: where }) : null,
      what ? el("div", { class: "online-what muted", text: what }) : null,
      form,
    );
  }

  /** The first message's form. @param {OnlineVisitor} v */
  form(v) {
    const box = el("textarea", { rows: "2", maxlength: "4000", "aria-label": t("Your first message"), placeholder: t("Hello! Can I help you?") });
    const error = el("p", { class: "error", role: "alert" });
    const send = el("button", { type: "submit", class: "primary small", text: t("Send") });
    const form = el("form", { class: "start-form" }, box, send, error);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = /** @type {HTMLTextAreaElement} */ (box).value.trim();
      if (!body) return;
      send.toggleAttribute("disabled", true);
      error.textContent = "";
      try {
        const cid = `start-${crypto.randomUUID()}`;
        const ack = await this.store.conn.request({ t: "start", visitor: v.id, cid, body });
        this.writing = null;
        this.whenKnown(ack.conv);
        this.render();
      } catch (err) {
        error.textContent = String(/** @type {Error} */ (err).message || err);
        send.toggleAttribute("disabled", false);
      }
    });
    return form;
  }

  /** Open the conversation once its `conv` frame has arrived. @param {string} conv */
  whenKnown(conv, tries = 50) {
    if (this.store.get(conv)) this.open(conv);
    else if (tries > 0) setTimeout(() => this.whenKnown(conv, tries - 1), 100);
  }
}

// The conversation list: the queue, mine, and colleagues' chats, with unread
// counts, waiting times, the last message (or the visitor's draft) and who
// else is looking.

import { avatar } from "./avatars.js";
import { ago, el, fill } from "./dom.js";
import { visitorLabel } from "./labels.js";
import { t, tn } from "../i18n.js";

/**
 * @typedef {import("./conversations.js").Store} Store
 * @typedef {import("./conversations.js").ConvRecord} Rec
 */

export class ConversationList {
  /**
   * @param {Store} store
   * @param {{queued: HTMLElement, mine: HTMLElement, others: HTMLElement}} lists
   * @param {(id: string) => void} open
   */
  constructor(store, lists, open) {
    this.store = store;
    this.lists = lists;
    this.open = open;
    /** @type {string | null} */
    this.current = null;
    /** @type {number | null} */
    this.frame = null;
    /**
     * Each conversation's item, kept from one render to the next: a render
     * that replaced the button between the press and the release of a click
     * lost the click (a visitor typing redraws the list ten times a second).
     * @type {Map<string, {li: HTMLLIElement, button: HTMLButtonElement}>}
     */
    this.items = new Map();
  }

  /** Redraw on the next animation frame (many changes come in bursts). */
  update() {
    if (this.frame !== null) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.render();
    });
  }

  /** The conversations in the order they are shown (for Alt+Up/Down). */
  ordered() {
    const { queued, mine, others } = this.groups();
    return [...queued, ...mine, ...others];
  }

  groups() {
    const store = this.store;
    const all = [...store.records.values()];
    const queued = all
      .filter((r) => r.conv.state === "queued")
      .sort((a, b) => (a.conv.position ?? 1e9) - (b.conv.position ?? 1e9) || a.conv.created_at - b.conv.created_at);
    const active = all.filter((r) => r.conv.state === "active");
    const waiting = (/** @type {Rec} */ r) => r.waitingSince || Infinity;
    const mine = active
      .filter((r) => store.isMine(r))
      .sort((a, b) => waiting(a) - waiting(b) || a.conv.created_at - b.conv.created_at);
    const others = active.filter((r) => !store.isMine(r)).sort((a, b) => a.conv.created_at - b.conv.created_at);
    return { queued, mine, others };
  }

  render() {
    const { queued, mine, others } = this.groups();
    const shown = new Set([...queued, ...mine, ...others].map((r) => r.id));
    for (const id of this.items.keys()) if (!shown.has(id)) this.items.delete(id);
    this.section(this.lists.queued, queued, t("Nobody is waiting. New chats arrive here, with a sound when Sound is on."));
    this.section(this.lists.mine, mine, t("No chats yet. Take one from the queue, or write to a visitor on the site now."));
    this.section(this.lists.others, others, t("Your colleagues' chats show here; open one to follow it."));
  }

  /** @param {HTMLElement} list @param {Rec[]} recs @param {string} empty */
  section(list, recs, empty) {
    const count = list.parentElement?.querySelector(".count");
    if (count) count.textContent = recs.length ? String(recs.length) : "";
    if (!recs.length) {
      fill(list, el("li", { class: "empty", text: empty }));
      return;
    }
    const lis = recs.map((r) => this.item(r));
    const same = list.children.length === lis.length && lis.every((li, i) => list.children[i] === li);
    if (!same) fill(list, ...lis); // moved only when the order changed
  }

  /**
   * The conversation's list item, its button kept and its contents redrawn.
   * @param {Rec} rec
   * @returns {HTMLLIElement}
   */
  item(rec) {
    let kept = this.items.get(rec.id);
    if (!kept) {
      const button = /** @type {HTMLButtonElement} */ (
        el("button", { type: "button", class: "conv-item", "data-conv": rec.id, onclick: () => this.open(rec.id) })
      );
      kept = { li: /** @type {HTMLLIElement} */ (el("li", {}, button)), button };
      this.items.set(rec.id, kept);
    }
    kept.button.setAttribute("aria-current", this.current === rec.id ? "true" : "false");
    kept.button.replaceChildren(...this.contents(rec));
    // The contents take no pointer events (workspace.css): the colleagues
    // viewing are named on the button.
    const eyes = kept.button.querySelector(".eyes");
    if (eyes) kept.button.title = eyes.getAttribute("title") || "";
    else kept.button.removeAttribute("title");
    return kept.li;
  }

  /**
   * What the conversation's button shows.
   * @param {Rec} rec
   * @returns {HTMLElement[]}
   */
  contents(rec) {
    const store = this.store;
    const me = store.me?.id || "";
    const { conv } = rec;
    // Unread counts are for the agent's own chats and the queue, not colleagues'.
    const unread = rec.loaded && (conv.state === "queued" || store.isMine(rec)) ? rec.unreadAfter(me) : 0;
    const others = rec.viewers.filter((v) => v.id !== me);
    let meta = "";
    let urgent = false;
    if (conv.state === "queued") {
      meta = conv.position
        ? t("waiting %(time)s · #%(position)s in line", { time: ago(conv.created_at), position: conv.position })
        : t("waiting %(time)s", { time: ago(conv.created_at) });
      urgent = true;
    } else if (store.isMine(rec)) {
      const since = rec.waitingSince;
      meta = since ? t("waiting %(time)s for you", { time: ago(since) }) : t("open %(time)s", { time: ago(conv.created_at) });
      urgent = !!since;
    } else {
      const nobody = t("nobody");
      meta = t("with %(agents)s · %(time)s", { agents: conv.agents.map((a) => a.name).join(", ") || nobody, time: ago(conv.created_at) });
    }
    if (conv.department) meta += ` · ${conv.department}`;
    const last = rec.lastText;
    let line = "";
    let lineClass = "last";
    if (rec.preview) {
      line = t("typing: %(text)s", { text: rec.preview });
      lineClass = "last draft";
    } else if (rec.visitorTyping) {
      line = t("typing…");
      lineClass = "last draft";
    } else if (last) {
      line = last.kind === "note" ? t("Note: %(text)s", { text: last.body }) : last.from.kind === "agent" ? t("You: %(text)s", { text: last.body }) : last.body;
      if (last.from.kind === "agent" && last.from.id !== me && last.kind !== "note") line = `${last.from.name}: ${last.body}`;
    }
    return [
      avatar("visitor", conv.visitor, visitorLabel(store, conv.visitor)),
      el(
        "span",
        { class: "conv-text" },
        el(
          "span",
          { class: "row" },
          el("span", { class: "who", text: visitorLabel(store, conv.visitor) }),
          others.length ? el("span", { class: "eyes", title: t("Also viewing: %(names)s", { names: others.map((v) => v.name).join(", ") }), text: tn("%(n)s viewing", "%(n)s viewing", others.length) }) : null,
          unread ? el("span", { class: "unread", "aria-label": tn("%(n)s unread", "%(n)s unread", unread), text: String(unread) }) : null,
        ),
        el("span", { class: urgent ? "meta urgent" : "meta", text: meta }),
        line ? el("span", { class: lineClass, text: line }) : null,
      ),
    ];
  }
}

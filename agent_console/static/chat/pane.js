// One open conversation: its head (state, agents, who else views and types,
// actions), tags, the history with lazy loading of older entries, the
// visitor's live draft and the composer.

import { avatar } from "./avatars.js";
import { icon, labelled } from "./icons.js";
import { clock, el, fill } from "./dom.js";
import { eventText, ratingText, stateText, visitorLabel } from "./labels.js";
import { Composer } from "./composer.js";
import { Rewind } from "./rewind.js";
import { t, tn } from "../i18n.js";

/**
 * Open a menu's body under its button, inside the conversation pane: right-
 * aligned to the button (the CSS), or left-aligned when that would cover the
 * conversation list. @param {HTMLElement} body @param {HTMLElement} button
 */
function place(body, button) {
  body.style.left = body.style.right = "";
  const pane = button.closest(".pane");
  if (pane && body.getBoundingClientRect().left < pane.getBoundingClientRect().left) {
    body.style.left = "0";
    body.style.right = "auto";
  }
}

/**
 * @typedef {import("./conversations.js").Store} Store
 * @typedef {import("./conversations.js").ConvRecord} Rec
 * @typedef {import("./conversations.js").Entry} Entry
 * @typedef {import("./conversations.js").Pending} Pending
 * @typedef {import("./canned.js").CannedResponses} CannedResponses
 * @typedef {{id: string, name: string, role: string, departments: string[], status: string, avatar?: string | null}} Colleague
 * @typedef {{store: Store, canned: CannedResponses, colleagues: (fresh?: boolean) => Promise<Colleague[]>}} Context
 */

const TYPING_SHOWN = 8000; // ms: the server never times typing out (§5.8)

export class Pane {
  /** @param {Context} ctx @param {Rec} rec */
  constructor(ctx, rec) {
    this.ctx = ctx;
    this.store = ctx.store;
    this.rec = rec;
    /** @type {Map<number, HTMLElement>} */
    this.shown = new Map();
    this.scrolled = false; // scrolled once (to the newest entry)

    this.title = el("h2", { class: "pane-title" });
    this.face = el("span", { class: "pane-face" });
    this.state = el("span", { class: "state" });
    this.info = el("span", { class: "pane-info" });
    this.rating = el("span", { class: "rating", hidden: true });
    this.viewers = el("span", { class: "viewers" });
    this.typers = el("span", { class: "typers" });
    this.collision = el("div", { class: "collision", "aria-live": "polite" }, this.viewers, this.typers);
    this.joinButton = el("button", { type: "button", class: "primary join", onclick: () => this.join() }, icon("join"), t("Join"));
    this.closeButton = el("button", { type: "button", class: "danger close-chat", onclick: () => this.closeChat() }, icon("close"), t("Close chat"));
    this.transferMenu = this.menu(t("Transfer"), "transfer", (select) => this.fillTransfer(select), (value) => this.transfer(value));
    this.inviteMenu = this.menu(t("Invite"), "invite", (select) => this.fillInvite(select), (value) => this.invite(value));
    // Co-browsing opens beside the chat (docs/cobrowse.md); recordings are for admins.
    this.cobrowseLink = el("a", { class: "secondary cobrowse-link", target: "_blank", rel: "noopener" }, icon("cobrowse"), t("Co-browse"));
    this.recordingsLink = el("a", { class: "secondary recordings-link", target: "_blank", rel: "noopener" }, icon("recordings"), t("Recordings"));
    // The visitor's last seconds, inline (rewind.js): for the chat's agents.
    this.rewind = new Rewind(rec.id);
    this.signalsSeen = -1; // the visitor's signals when the rewind was last asked for
    this.actions = el(
      "div",
      { class: "actions" },
      this.joinButton,
      this.transferMenu,
      this.inviteMenu,
      this.rewind.button,
      this.cobrowseLink,
      this.recordingsLink,
      this.closeButton,
    );
    this.tagList = el("ul", { class: "tag-list", "aria-label": t("Tags") });
    this.tagInput = el("input", { type: "text", class: "tag-input", maxlength: 32, placeholder: t("Add tag"), "aria-label": t("Add a tag") });
    this.tagInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        this.addTags();
      }
    });
    this.tags = el("div", { class: "tags" }, this.tagList, this.tagInput);

    this.olderButton = el("button", { type: "button", class: "older", text: t("Load older messages"), hidden: true, onclick: () => this.store.loadOlder(this.rec) });
    this.log = el("ol", { class: "log" });
    this.pendingList = el("ol", { class: "log pending-list" });
    this.scroller = el("div", { class: "scroll", role: "log", "aria-label": t("Messages"), tabindex: 0 }, this.olderButton, this.log, this.pendingList);
    this.preview = el("div", { class: "preview", hidden: true });
    this.problem = el("p", { class: "pane-error", role: "alert" });
    this.composer = new Composer(this.store, rec, ctx.canned);
    this.readOnly = el("p", { class: "read-only", hidden: true });

    this.el = el(
      "section",
      { class: "pane", "data-conv": rec.id, role: "tabpanel" },
      el("header", { class: "pane-head" }, el("div", { class: "pane-heading" }, this.face, this.title, this.state, this.info, this.rating), this.collision, this.actions),
      this.tags,
      this.rewind.panel,
      this.scroller,
      this.preview,
      this.problem,
      this.readOnly,
      this.composer.form,
    );
    // Scrolled to the top: fetch older entries by themselves.
    this.observer = new IntersectionObserver(
      (seen) => {
        if (seen.some((s) => s.isIntersecting) && this.rec.older) this.store.loadOlder(this.rec);
      },
      { root: this.scroller },
    );
    this.observer.observe(this.olderButton);
    this.update();
    this.entries();
    this.live();
  }

  /** The pane became visible: show the newest entries. */
  reveal() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  destroy() {
    this.rewind.close();
    this.observer.disconnect();
    this.composer.stopTyping();
    this.el.remove();
  }

  /**
   * A `<details>` menu with a select and a button.
   * @param {string} label @param {string} cls
   * @param {(select: HTMLSelectElement) => Promise<void>} populate
   * @param {(value: string) => Promise<void>} act
   */
  menu(label, cls, populate, act) {
    const select = el("select", { "aria-label": label });
    const go = el("button", { type: "submit", class: "primary", text: label });
    const error = el("p", { class: "error", role: "alert" });
    const form = el("form", { class: "menu-body" }, select, go, error);
    const details = el("details", { class: `menu ${cls}` }, el("summary", {}, icon(/** @type {"transfer" | "invite"} */ (cls)), label), form);
    details.addEventListener("toggle", () => {
      if (details.open) {
        place(form, details);
        error.textContent = "";
        populate(select).catch((err) => {
          error.textContent = String(err.message || err);
        });
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!select.value) return;
      go.disabled = true;
      act(select.value)
        .then(() => {
          details.open = false;
        })
        .catch((err) => {
          error.textContent = String(err.message || err);
        })
        .finally(() => {
          go.disabled = false;
        });
    });
    return details;
  }

  /** @param {HTMLSelectElement} select */
  async fillTransfer(select) {
    const me = this.store.me?.id;
    const inConv = new Set(this.rec.conv.agents.map((a) => a.id));
    const people = (await this.ctx.colleagues(true)).filter((a) => a.id !== me && !inConv.has(a.id));
    const agents = el(
      "optgroup",
      { label: t("Agents") },
      ...people.map((a) => el("option", { value: `agent:${a.id}`, disabled: a.status === "offline", text: `${a.name} (${stateText(a.status)})` })),
    );
    const depts = el(
      "optgroup",
      { label: t("Departments") },
      ...(this.store.site?.departments || []).map((d) => el("option", { value: `dept:${d}`, text: d })),
    );
    fill(select, agents, depts);
    const first = [...select.options].find((o) => !o.disabled);
    if (first) select.value = first.value;
  }

  /** @param {HTMLSelectElement} select */
  async fillInvite(select) {
    const me = this.store.me?.id;
    const inConv = new Set(this.rec.conv.agents.map((a) => a.id));
    const people = (await this.ctx.colleagues(true)).filter((a) => a.id !== me && !inConv.has(a.id));
    fill(select, ...people.map((a) => el("option", { value: a.id, disabled: a.status === "offline", text: `${a.name} (${stateText(a.status)})` })));
    const first = [...select.options].find((o) => !o.disabled);
    if (first) select.value = first.value;
  }

  /** @param {string} value "agent:<id>" or "dept:<name>" */
  async transfer(value) {
    const [kind, target] = [value.slice(0, value.indexOf(":")), value.slice(value.indexOf(":") + 1)];
    await this.store.conn.request({ t: "transfer", conv: this.rec.id, ...(kind === "agent" ? { agent: target } : { dept: target }) });
  }

  /** @param {string} agent */
  async invite(agent) {
    await this.store.conn.request({ t: "invite", conv: this.rec.id, agent });
    this.say(t("Invitation sent."));
  }

  join() {
    this.say("");
    this.store.join(this.rec).catch((err) => this.say(err.message));
  }

  closeChat() {
    this.say("");
    this.store.conn.request({ t: "close", conv: this.rec.id }).catch((err) => this.say(err.message));
  }

  addTags() {
    const add = this.tagInput.value
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean);
    if (!add.length) return;
    this.store.conn
      .request({ t: "tag", conv: this.rec.id, add })
      .then(() => {
        this.tagInput.value = "";
      })
      .catch((err) => this.say(err.message));
  }

  /** @param {string} tag */
  removeTag(tag) {
    this.store.conn.request({ t: "tag", conv: this.rec.id, remove: [tag] }).catch((err) => this.say(err.message));
  }

  /** @param {string} text */
  say(text) {
    this.problem.textContent = text;
  }

  /** The conversation object changed (state, agents, tags, rating). */
  update() {
    const { conv } = this.rec;
    const store = this.store;
    const mine = store.isMine(this.rec);
    const admin = store.me?.role === "admin";
    const closed = conv.state === "closed";
    const label = visitorLabel(store, conv.visitor);
    if (this.title.textContent !== label) this.face.replaceChildren(avatar("visitor", conv.visitor, label));
    this.title.textContent = label;
    this.state.textContent = conv.state === "queued" && conv.position ? t("queued #%(position)s", { position: conv.position }) : stateText(conv.state);
    this.state.className = `state ${conv.state}`;
    const agents = conv.agents.map((a) => a.name).join(", ");
    this.info.textContent = [conv.department, agents ? t("with %(agents)s", { agents }) : ""].filter(Boolean).join(" · ");
    const rating = ratingText(conv.rating);
    this.rating.hidden = !rating;
    this.rating.textContent = rating || "";

    this.joinButton.hidden = mine || closed;
    labelled(this.joinButton, "join", conv.state === "queued" ? t("Take chat") : t("Join"));
    this.transferMenu.hidden = closed || !(mine || admin);
    this.inviteMenu.hidden = closed || !(mine || admin);
    this.closeButton.hidden = closed || !(mine || admin);
    this.cobrowseLink.hidden = closed || !mine || this.store.site?.settings?.cobrowse === false;
    this.cobrowseLink.setAttribute("href", `/console/cobrowse/${encodeURIComponent(conv.id)}`);
    this.recordingsLink.hidden = !admin;
    const signals = store.signals.get(conv.visitor)?.length || 0;
    this.rewind.update((mine || admin) && !closed, signals !== this.signalsSeen);
    this.signalsSeen = signals;
    this.recordingsLink.setAttribute("href", `/console/sessions?visitor=${encodeURIComponent(conv.visitor)}`);
    const mayTag = mine || admin;
    this.tagInput.hidden = !mayTag;
    const tags = conv.tags || [];
    fill(
      this.tagList,
      ...tags.map((tag) =>
        el(
          "li",
          { class: "tag" },
          el("span", { text: tag }),
          mayTag ? el("button", { type: "button", class: "untag", "aria-label": t("Remove tag %(tag)s", { tag }), text: "×", onclick: () => this.removeTag(tag) }) : null,
        ),
      ),
    );
    this.composer.enable(mine && !closed);
    this.composer.form.hidden = !mine || closed;
    this.readOnly.hidden = mine && !closed;
    this.readOnly.textContent = closed
      ? t("This conversation is closed.")
      : t("You are not in this conversation: join it to reply.");
  }

  /** Entries arrived (live, recovered or older): add the missing ones in order. */
  entries() {
    const rec = this.rec;
    const me = this.store.me?.id || "";
    const nearBottom = this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < 80;
    const fromBottom = this.scroller.scrollHeight - this.scroller.scrollTop;
    let prepended = false;
    const sorted = rec.sorted();
    if (sorted.length < this.shown.size) {
      // the copy was replaced (a failed recovery): start over
      this.shown.clear();
      this.log.replaceChildren();
    }
    let next = /** @type {HTMLElement | null} */ (null);
    for (let i = sorted.length - 1; i >= 0; i--) {
      const e = sorted[i];
      const have = this.shown.get(e.offset);
      if (have) {
        next = have;
        continue;
      }
      const item = this.entryView(e, me);
      this.shown.set(e.offset, item);
      if (e.from?.kind === "visitor" && this.scrolled) this.rewind.visitorWrote();
      if (next) {
        this.log.insertBefore(item, next);
        prepended = true;
      } else {
        this.log.append(item);
      }
      next = item;
    }
    for (const [offset, item] of this.shown) {
      if (!rec.entries.has(offset)) {
        item.remove();
        this.shown.delete(offset);
      }
    }
    fill(this.pendingList, ...this.store.pendingOf(rec.id).map((p) => this.pendingView(p)));
    this.olderButton.hidden = !rec.older;
    if (prepended && !nearBottom) this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom;
    else if (nearBottom || !this.scrolled) this.scroller.scrollTop = this.scroller.scrollHeight;
    this.scrolled = true;
  }

  /** @param {Entry} e @param {string} me */
  entryView(e, me) {
    if (e.kind === "event") {
      return el("li", { class: "entry event", "data-offset": e.offset }, el("span", { text: eventText(e) }), el("time", { text: clock(e.ts) }));
    }
    const mine = e.from.kind === "agent" && e.from.id === me;
    const who = e.from.kind === "visitor" ? visitorLabel(this.store, this.rec.conv.visitor) : mine ? t("You") : e.from.name;
    const cls = e.kind === "note" ? "entry note" : `entry ${e.from.kind}${mine ? " mine" : ""}`;
    return el(
      "li",
      { class: cls, "data-offset": e.offset },
      el(
        "div",
        { class: "entry-head" },
        e.kind === "note" ? null : avatar(e.from.kind === "agent" ? "agent" : "visitor", e.from.kind === "agent" ? e.from.id : this.rec.conv.visitor, mine ? e.from.name || who : who, "sm"),
        el("span", { class: "author", text: who }),
        e.kind === "note" ? el("span", { class: "note-tag", text: t("Internal note · not sent to the visitor") }) : null,
        el("time", { text: clock(e.ts) }),
      ),
      attachmentView(e) || el("div", { class: "body", text: e.body }),
      offlineView(e),
    );
  }

  /** @param {Pending} p */
  pendingView(p) {
    const status = p.failed
      ? el(
          "span",
          { class: "failed" },
          t("Not sent: %(reason)s", { reason: p.failed }) + " ",
          el("button", { type: "button", class: "linkish", text: t("Retry"), onclick: () => this.store.retry(p.cid) }),
          " ",
          el("button", { type: "button", class: "linkish", text: t("Discard"), onclick: () => this.store.discard(p.cid) }),
        )
      : el("span", { class: "sending", text: t("Sending…") });
    return el(
      "li",
      { class: `entry ${p.note ? "note" : "agent mine"} pending` },
      el("div", { class: "entry-head" }, el("span", { class: "author", text: t("You") }), status),
      el("div", { class: "body", text: p.body }),
    );
  }

  /** Drafts, typing and viewers changed. */
  live() {
    const rec = this.rec;
    const me = this.store.me?.id;
    this.preview.hidden = !rec.preview && !rec.visitorTyping;
    fill(
      this.preview,
      el("span", { class: "preview-label", text: rec.preview ? t("Visitor is typing:") : t("Visitor is typing…") }),
      rec.preview ? el("span", { class: "preview-text", text: rec.preview }) : null,
    );
    const others = rec.viewers.filter((v) => v.id !== me);
    this.viewers.textContent = others.length ? t("Also viewing: %(names)s", { names: others.map((v) => v.name).join(", ") }) : "";
    const now = Date.now();
    /** @type {Map<string, string>} */
    const typing = new Map();
    for (const v of others) if (v.typing) typing.set(v.id, v.name);
    for (const [id, who] of rec.typing) {
      if (id !== me && now - who.at < TYPING_SHOWN) typing.set(id, who.note ? t("%(name)s (a note)", { name: who.name }) : who.name);
    }
    const names = [...typing.values()];
    this.typers.textContent = names.length ? "✎ " + tn("%(names)s is typing…", "%(names)s are typing…", names.length, { names: names.join(", ") }) : "";
    this.collision.classList.toggle("busy", names.length > 0);
  }
}

/**
 * A file posted in the conversation (`data.attachment`): a thumbnail for an
 * image, a link for a PDF. The URL is signed by the server and relative to it.
 * @param {Entry} e
 */
function attachmentView(e) {
  const file = /** @type {{name?: string, type?: string, size?: number, url?: string} | undefined} */ (
    /** @type {any} */ (e).data?.attachment
  );
  if (!file || typeof file.url !== "string") return null;
  const href = `/${file.url.replace(/^\/+/, "")}`;
  const name = String(file.name || t("file"));
  const size = typeof file.size === "number" ? ` · ${Math.max(1, Math.round(file.size / 1024))} KB` : "";
  const isImage = String(file.type || "").startsWith("image/");
  return el(
    "div",
    { class: "body attachment" },
    el(
      "a",
      { href, target: "_blank", rel: "noopener noreferrer", download: isImage ? undefined : name },
      isImage ? el("img", { src: href, alt: name, class: "thumb", loading: "lazy" }) : null,
      el("span", { text: `${isImage ? "" : "📎 "}${name}${size}` }),
    ),
  );
}

/**
 * Who left an offline message (`data.offline`: the form's name and email).
 * @param {Entry} e
 */
function offlineView(e) {
  const who = /** @type {{name?: string, email?: string} | undefined} */ (/** @type {any} */ (e).data?.offline);
  if (!who) return null;
  const someone = t("a visitor");
  return el("div", { class: "offline-from", text: t("Left offline by %(name)s <%(email)s>", { name: who.name || someone, email: who.email || "?" }) });
}

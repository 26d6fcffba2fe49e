// The chat workspace: wires the connection, the conversation store and the
// views together; tabs, keyboard shortcuts, status, invitations, alerts.
//
// Shortcuts (listed on the page too): Alt+Up / Alt+Down previous / next
// conversation of the list, Alt+1..9 the n-th open tab, Alt+W close the tab,
// Alt+J join (take) the shown chat, Alt+N note on/off, Alt+S side by side.

import { setPictures } from "./avatars.js";
import { Connection } from "./connection.js";
import { Store } from "./conversations.js";
import { ConversationList } from "./list.js";
import { Pane } from "./pane.js";
import { VisitorPanel } from "./visitor.js";
import { OnlineVisitors } from "./online.js";
import { CannedResponses } from "./canned.js";
import { Alerts } from "./alerts.js";
import { byId, clock, el, fill } from "./dom.js";
import { visitorLabel } from "./labels.js";
import { number, t } from "../i18n.js";

/**
 * @typedef {import("./conversations.js").ConvRecord} Rec
 * @typedef {import("./conversations.js").Conv} Conv
 * @typedef {import("./pane.js").Colleague} Colleague
 */

const TABS_KEY = "chatserver.console.tabs";
const MAX_WATCHED_QUEUE = 20; // queued chats followed live (drafts, last message)

const root = byId("workspace");
const csrf = byId("main").dataset.csrf || "";

/**
 * A fresh WebSocket token from the session cookie; null when the session is
 * over (the page goes to the login form); throws when the server is unreachable.
 * @returns {Promise<string | null>}
 */
async function refreshToken() {
  const r = await fetch("/console/api/token", { method: "POST", headers: { "X-CSRF-Token": csrf, Accept: "application/json" }, credentials: "same-origin" });
  if (r.ok) return (await r.json()).token;
  if (r.status === 401 || r.status === 403) return null;
  throw new Error(t("token refresh failed (%(status)s)", { status: r.status }));
}

let chosenStatus = /** @type {string | undefined} */ (undefined);
const conn = new Connection({
  url: "/ws",
  token: root.dataset.token || "",
  refreshToken,
  onFrame: (frame) => store.onFrame(frame),
  onState: (state, detail) => link(state, detail),
  status: () => chosenStatus,
});
const store = new Store(conn);
const canned = new CannedResponses("/console/api/canned");
const alerts = new Alerts(document.title, { sound: root.dataset.sound !== "off", desktop: root.dataset.desktop || "new", csrf });

/** @type {Colleague[] | null} */
let colleaguesCache = null;
let colleaguesAt = 0;
/** The site's agents and their status; `fresh`: asked now (a menu about to show statuses). */
async function colleagues(fresh = false) {
  if (!fresh && colleaguesCache && Date.now() - colleaguesAt < 5000) return colleaguesCache;
  const r = await fetch("/console/api/agents", { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!r.ok) throw new Error(t("could not list colleagues (%(status)s)", { status: r.status }));
  colleaguesCache = await r.json();
  setPictures(/** @type {Colleague[]} */ (colleaguesCache));
  colleaguesAt = Date.now();
  return /** @type {Colleague[]} */ (colleaguesCache);
}

const list = new ConversationList(store, { queued: byId("list-queued"), mine: byId("list-mine"), others: byId("list-others") }, (id) => openTab(id));
const online = new OnlineVisitors(store, byId("list-online"), byId("online-count"), (id) => openTab(id));
const panel = new VisitorPanel(store, byId("visitor-body"), (conv) => {
  if (!store.get(conv.id)) store.upsert(conv);
  openTab(conv.id);
});

// -- tabs and panes ---------------------------------------------------------

/** @type {string[]} open conversations, in tab order */
let tabs = [];
/** @type {string | null} */
let active = null;
/** @type {string | null} shown beside the active one in side-by-side mode */
let second = null;
/** @type {Map<string, Pane>} */
const panes = new Map();
/** @type {Set<string>} conversations this connection announced with `view` */
const viewing = new Set();
const tabBar = byId("tabs");
const paneBox = byId("panes");
const emptyNote = byId("no-conversation");

/** @param {string} id */
function openTab(id) {
  const rec = store.get(id);
  if (!rec) return;
  if (!tabs.includes(id)) tabs.push(id);
  if (active && active !== id) second = active;
  active = id;
  if (!panes.has(id)) {
    const pane = new Pane({ store, canned, colleagues }, rec);
    panes.set(id, pane);
    paneBox.append(pane.el);
  }
  if (!rec.following && rec.conv.state !== "closed") store.watch(rec);
  else if (!rec.following && !rec.loaded) store.loadPage(rec);
  layout();
  panes.get(id)?.reveal();
  document.body.classList.add("show-pane");
}

/** @param {string} id */
function closeTab(id) {
  const i = tabs.indexOf(id);
  if (i < 0) return;
  tabs.splice(i, 1);
  panes.get(id)?.destroy();
  panes.delete(id);
  const rec = store.get(id);
  if (rec && !store.isMine(rec) && !isQueuedWatched(rec)) store.unwatch(rec);
  if (second === id) second = null;
  if (active === id) {
    active = tabs[Math.min(i, tabs.length - 1)] || null;
    if (second === active) second = null;
  }
  if (!active) document.body.classList.remove("show-pane", "show-visitor");
  layout();
}

function layout() {
  const split = root.classList.contains("split") && matchMedia("(min-width: 1300px)").matches;
  const shown = new Set([active, split ? second : null].filter(Boolean));
  renderTabs();
  for (const [id, pane] of panes) {
    pane.el.hidden = !shown.has(id);
    pane.el.classList.toggle("second", id === second && id !== active);
  }
  emptyNote.hidden = tabs.length > 0;
  list.current = active;
  list.update();
  panel.show(active ? store.get(active)?.conv || null : null);
  announceViews(shown);
  markVisibleRead();
  sessionStorage.setItem(TABS_KEY, JSON.stringify({ tabs, active }));
}

/** The tab bar: one tab per open conversation, with its unread count. */
function renderTabs() {
  const labels = tabs.map((id) => {
    const rec = store.get(id);
    return rec ? visitorLabel(store, rec.conv.visitor) : id;
  });
  fill(
    tabBar,
    ...tabs.map((id, i) => {
      const rec = store.get(id);
      // Two conversations of one visitor: each says when it began.
      const twin = labels.some((l, j) => j !== i && l === labels[i]);
      const label = rec && twin ? `${labels[i]} · ${clock(rec.conv.created_at)}` : labels[i];
      const unread = rec && rec.loaded ? rec.unreadAfter(store.me?.id || "") : 0;
      return el(
        "div",
        { class: "tab", role: "presentation" },
        el(
          "button",
          {
            type: "button",
            role: "tab",
            class: "tab-open",
            "data-conv": id,
            "aria-selected": id === active ? "true" : "false",
            title: i < 9 ? `Alt+${i + 1}` : "",
            onclick: () => openTab(id),
          },
          i < 9 ? el("span", { class: "tab-key", text: String(i + 1) }) : null,
          label,
          unread && id !== active ? el("span", { class: "unread", text: String(unread) }) : null,
        ),
        // A tab list holds tabs only: the × is for the mouse, Alt+W for the keyboard
        // (and assistive technology, which the shortcut list tells).
        el("button", { type: "button", class: "tab-close", "aria-hidden": "true", tabindex: -1, title: t("Close tab (Alt+W)"), text: "×", onclick: () => closeTab(id) }),
      );
    }),
  );
}

/** Tell colleagues what is on screen (collision detection). @param {Set<string | null>} shown */
function announceViews(shown) {
  if (conn.state !== "online") return;
  for (const id of [...viewing]) {
    if (!shown.has(id)) {
      viewing.delete(id);
      conn.send({ t: "view", conv: id, on: false });
    }
  }
  for (const id of shown) {
    if (id && !viewing.has(id)) {
      viewing.add(id);
      conn.send({ t: "view", conv: id, on: true });
    }
  }
}

function markVisibleRead() {
  if (document.visibilityState !== "visible") return;
  for (const id of viewing) {
    const rec = store.get(id);
    if (rec) store.markRead(rec);
  }
  updateBadge();
}

/** @param {Rec} rec */
function isQueuedWatched(rec) {
  return rec.conv.state === "queued" && store.queue.indexOf(rec.id) < MAX_WATCHED_QUEUE;
}

/** Follow the first queued chats live; stop following what no tab shows any more. */
function syncWatches() {
  for (const rec of store.records.values()) {
    if (isQueuedWatched(rec)) store.watch(rec);
    else if (rec.watching && !tabs.includes(rec.id) && !store.isMine(rec)) store.unwatch(rec);
  }
}

// -- status, capacity, connection ---------------------------------------------

const statusSelect = /** @type {HTMLSelectElement} */ (byId("status"));
statusSelect.addEventListener("change", () => {
  chosenStatus = statusSelect.value;
  conn.request({ t: "status", status: statusSelect.value }).catch(() => {
    statusSelect.value = store.status;
  });
});

function showStatus() {
  statusSelect.value = store.status;
  root.dataset.status = store.status;
  const me = store.me;
  if (me) byId("capacity").textContent = `${number(store.mine().length)} / ${number(me.capacity)}`;
}

/** @param {string} state @param {{retryIn?: number, code?: number}} detail */
function link(state, detail) {
  const box = byId("link");
  box.dataset.state = state;
  const text = byId("link-text");
  if (state === "online") text.textContent = t("Connected");
  else if (state === "connecting") text.textContent = t("Connecting…");
  else if (state === "offline") text.textContent = t("Reconnecting in %(n)s s…", { n: Math.ceil((detail.retryIn || 0) / 1000) });
  else if (detail.code === 4105 || detail.code === 4102 || detail.code === 4106) {
    text.textContent = t("Signed out");
    location.assign("/console/login?next=/console/");
  } else {
    text.textContent = t("Disconnected (%(code)s)", { code: String(detail.code) });
  }
  if (state !== "online") viewing.clear(); // the server forgets views with the connection
}

// -- invitations and alerts -----------------------------------------------------

const toasts = byId("toasts");

/** @param {{conv: Conv, by: {name: string}}} invite */
function showInvite(invite) {
  const id = invite.conv.id;
  const toast = el(
    "div",
    { class: "toast", role: "alert", "data-conv": id },
    el("span", { text: t("%(name)s invites you to the chat with %(visitor)s.", { name: invite.by.name, visitor: visitorLabel(store, invite.conv.visitor) }) }),
    el("button", {
      type: "button",
      class: "primary",
      text: t("Join"),
      onclick: () => {
        const rec = store.get(id);
        toast.remove();
        if (rec) store.join(rec).then(() => openTab(id)).catch((err) => showProblem(err.message));
      },
    }),
    el("button", { type: "button", class: "secondary", text: t("Dismiss"), onclick: () => toast.remove() }),
  );
  toasts.append(toast);
}

/** @param {string} text */
function showProblem(text) {
  const p = el("div", { class: "toast problem", role: "alert" }, el("span", { text }), el("button", { type: "button", class: "secondary", text: t("OK"), onclick: () => p.remove() }));
  toasts.append(p);
  setTimeout(() => p.remove(), 8000);
}

function updateBadge() {
  let count = store.queue.length;
  const me = store.me?.id || "";
  for (const rec of store.mine()) if (rec.loaded) count += rec.unreadAfter(me);
  alerts.badge(count);
}

/** @param {string} id @param {{kind: string, entry?: any}} detail */
function notify(id, detail) {
  const rec = store.get(id);
  if (!rec) return;
  const who = visitorLabel(store, rec.conv.visitor);
  const looking = viewing.has(id) && document.visibilityState === "visible" && document.hasFocus();
  if (detail.kind === "message") {
    if (looking || !(store.isMine(rec) || rec.conv.state === "queued")) return;
    alerts.beep();
    alerts.notify("message", t("%(name)s wrote", { name: who }), detail.entry?.body || "", id, () => openTab(id));
  } else if (detail.kind === "chat") {
    alerts.beep(true);
    alerts.notify("chat", t("New chat waiting"), who, id, () => openTab(id));
  } else if (detail.kind === "assigned") {
    alerts.beep(true);
    alerts.notify("chat", t("New chat for you"), who, id, () => openTab(id));
  }
}

const soundBox = /** @type {HTMLInputElement} */ (byId("sound"));
soundBox.checked = alerts.sound;
soundBox.addEventListener("change", () => {
  alerts.setSound(soundBox.checked).catch((err) => showProblem(err.message));
});
const notifyButton = /** @type {HTMLButtonElement} */ (byId("notify"));
function showPermission() {
  notifyButton.hidden = !alerts.canNotify || alerts.permission !== "default" || alerts.desktop === "none";
}
notifyButton.addEventListener("click", () => alerts.ask().then(showPermission));
showPermission();

// -- store events -----------------------------------------------------------------

store.on((change, id, detail) => {
  switch (change) {
    case "welcome":
      online.refresh();
      showStatus();
      layout();
      syncWatches();
      for (const pane of panes.values()) pane.update();
      if (panel.visitorId) panel.load();
      break;
    case "conv":
      if (id) panes.get(id)?.update();
      showStatus();
      syncWatches();
      list.update();
      updateBadge();
      break;
    case "entries":
      if (id) panes.get(id)?.entries();
      if (id && viewing.has(id)) markVisibleRead();
      if (id && tabs.includes(id)) renderTabs();
      list.update();
      updateBadge();
      break;
    case "live":
      if (id) panes.get(id)?.live();
      list.update();
      break;
    case "status":
      // Chosen on another tab (any process): this tab's reconnect keeps it.
      chosenStatus = store.status;
      showStatus();
      break;
    case "visitor":
      online.render();
      if (detail?.t === "visitor") panel.live(detail);
      else if (detail?.t === "signal" && id === panel.visitorId) panel.render();
      for (const pane of panes.values()) if (pane.rec.conv.visitor === id) pane.update();
      if (tabs.some((t) => store.get(t)?.conv.visitor === id)) layout();
      list.update();
      break;
    case "invite":
      showInvite(detail);
      alerts.beep(true);
      alerts.notify("chat", t("Invitation"), t("%(name)s invites you to a chat", { name: detail.by.name }), `invite-${id}`, () => window.focus());
      break;
    case "notify":
      if (id) notify(id, detail);
      break;
    case "problem":
      if (id && panes.has(id)) panes.get(id)?.say(String(detail));
      else showProblem(String(detail));
      break;
  }
});

document.addEventListener("visibilitychange", markVisibleRead);
addEventListener("focus", markVisibleRead);
addEventListener("resize", () => layout());
setInterval(() => {
  list.update(); // waiting times
  for (const pane of panes.values()) pane.live(); // typing indicators time out
}, 5000);

// -- keyboard -----------------------------------------------------------------------

document.addEventListener("keydown", (event) => {
  if (!event.altKey || event.ctrlKey || event.metaKey) return;
  const digit = /^Digit([1-9])$/.exec(event.code);
  if (digit) {
    const id = tabs[Number(digit[1]) - 1];
    if (id) openTab(id);
    event.preventDefault();
    return;
  }
  const pane = active ? panes.get(active) : undefined;
  switch (event.code) {
    case "ArrowDown":
    case "ArrowUp": {
      const order = list.ordered().map((r) => r.id);
      if (!order.length) return;
      const at = active ? order.indexOf(active) : -1;
      const step = event.code === "ArrowDown" ? 1 : -1;
      const next = order[at < 0 ? (step > 0 ? 0 : order.length - 1) : (at + step + order.length) % order.length];
      openTab(next);
      panes.get(next)?.composer.focus();
      break;
    }
    case "KeyW":
      if (active) closeTab(active);
      break;
    case "KeyJ":
      pane?.join();
      break;
    case "KeyN":
      pane?.composer.toggleNote();
      break;
    case "KeyS":
      toggleSplit();
      break;
    default:
      return;
  }
  event.preventDefault();
});

const splitButton = byId("split");
function toggleSplit() {
  const on = root.classList.toggle("split");
  splitButton.setAttribute("aria-pressed", String(on));
  layout();
}
splitButton.addEventListener("click", toggleSplit);
byId("back").addEventListener("click", () => {
  showVisitor(false);
  document.body.classList.remove("show-pane");
});

// Below 1280 px the visitor panel is a drawer (below 800 px a screen of its own).
const visitorToggle = byId("visitor-toggle");
/** @param {boolean} on */
function showVisitor(on) {
  const was = document.body.classList.contains("show-visitor");
  document.body.classList.toggle("show-visitor", on);
  visitorToggle.setAttribute("aria-expanded", String(on));
  if (on && !was) byId("visitor-close").focus();
  else if (!on && was && visitorToggle.offsetParent) visitorToggle.focus();
}
visitorToggle.addEventListener("click", () => showVisitor(!document.body.classList.contains("show-visitor")));
byId("visitor-close").addEventListener("click", () => showVisitor(false));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && document.body.classList.contains("show-visitor")) showVisitor(false);
});

// -- start ---------------------------------------------------------------------------

try {
  const saved = JSON.parse(sessionStorage.getItem(TABS_KEY) || "null");
  if (saved && Array.isArray(saved.tabs)) {
    const restore = () => {
      for (const id of saved.tabs) if (store.get(id) && !tabs.includes(id)) openTab(id);
      if (saved.active && store.get(saved.active)) openTab(saved.active);
    };
    store.on((change) => change === "welcome" && tabs.length === 0 && restore());
  }
} catch {
  // a broken saved state: start with no tabs
}
layout();
// Signing out (here or everywhere) ends this session on the server, which
// closes this page's socket with 4106; stop first, so that the close is not
// taken for a session ended elsewhere (which goes to the login form with ?next).
document.querySelector("header.top form.logout")?.addEventListener("submit", () => conn.stop());
conn.start();
colleagues().catch(() => {}); // the agents' pictures, for the avatars

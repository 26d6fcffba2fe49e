// The minimal agent page: log in, list conversations, answer them.
// A stand-in until the real agent console exists; message text only ever goes through textContent.

const TOKEN_KEY = "chatserver-agent-token";

/**
 * @typedef {{id: string, name: string}} Person
 * @typedef {{id: string, visitor: string, state: string, epoch: string, offset: number,
 *   agents: Person[], created_at: number}} Conv
 * @typedef {{conv: string, offset: number, kind: string, from: {kind: string, id: string, name: string},
 *   body: string, ts: number, data?: any}} Entry
 * @typedef {{conv: Conv, entries: Map<number, Entry>, last: number, preview: string}} Record
 */

/**
 * An element with a class and a text (never HTML).
 * @param {string} tag @param {string} className @param {string} [text]
 */
const make = (tag, className, text = "") => Object.assign(document.createElement(tag), { className, textContent: text });
/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const loginForm = /** @type {HTMLFormElement} */ ($("login"));
const replyForm = /** @type {HTMLFormElement} */ ($("reply"));
const replyInput = /** @type {HTMLTextAreaElement} */ ($("reply-input"));
const joinButton = /** @type {HTMLButtonElement} */ ($("join"));
const closeButton = /** @type {HTMLButtonElement} */ ($("close"));

/** @type {WebSocket | null} */
let ws = null;
/** @type {Person | null} */
let me = null;
/** @type {Map<string, Record>} */
const convs = new Map();
/** @type {string | null} */
let open = null;
let rid = 0;
let attempt = 0;
let typingOn = false;

/** @param {Record<string, unknown>} frame */
function transmit(frame) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ id: ++rid, ...frame }));
}

/** @param {string} text */
function problem(text) {
  $("problem").textContent = text;
}

/** @param {Conv} conv */
const isMine = (conv) => !!me && conv.agents.some((a) => a.id === me?.id);

/** @param {string} id */
function record(id) {
  let rec = convs.get(id);
  if (!rec) {
    rec = { conv: /** @type {Conv} */ ({ id, agents: [] }), entries: new Map(), last: 0, preview: "" };
    convs.set(id, rec);
  }
  return rec;
}

/** Ask for the entries after the ones we hold. @param {Record} rec */
function catchUp(rec) {
  transmit({ t: "history", conv: rec.conv.id, since: rec.last, epoch: rec.conv.epoch });
}

/** @param {Conv} conv */
function onConv(conv) {
  const rec = record(conv.id);
  const epochChanged = rec.conv.epoch && rec.conv.epoch !== conv.epoch;
  rec.conv = conv;
  if (epochChanged) Object.assign(rec, { entries: new Map(), last: 0 });
  if ((isMine(conv) || open === conv.id) && conv.offset > rec.last) catchUp(rec);
  renderList();
  if (open === conv.id) renderConv();
}

/** @param {Entry} entry */
function addEntry(entry) {
  const rec = record(entry.conv);
  rec.entries.set(entry.offset, entry);
  rec.last = Math.max(rec.last, entry.offset);
  if (entry.from.kind === "visitor") rec.preview = "";
}

function renderList() {
  const list = $("convs");
  const items = [...convs.values()].sort((a, b) => b.conv.created_at - a.conv.created_at);
  list.replaceChildren(...items.map(({ conv }) => {
    const button = Object.assign(make("button", ""), { type: "button" });
    button.setAttribute("aria-current", String(conv.id === open));
    const agents = conv.agents.map((a) => a.name).join(", ");
    button.append(make("span", "who", `Visitor ${conv.visitor} `), make("span", `state ${conv.state}`, conv.state),
      make("span", "meta", agents ? `with ${agents}` : "nobody yet"));
    button.addEventListener("click", () => openConv(conv.id));
    const li = document.createElement("li");
    li.append(button);
    return li;
  }));
  if (!items.length) list.innerHTML = '<li class="empty">No conversations yet.</li>';
}

/** @param {Entry} e */
function entryElement(e) {
  if (e.kind === "event") {
    const d = e.data || {};
    const name = d.agent?.name || d.to?.name || d.by?.name || d.by?.kind || "";
    return make("div", "sys", { joined: `${name} joined`, left: `${name} left`, closed: `Closed by ${name}`,
      transferred: `Transferred by ${d.by?.name || ""}`,
      rated: `Rated ${d.rating}${d.comment ? `: ${d.comment}` : ""}` }[/** @type {string} */ (d.event)] || d.event);
  }
  const el = make("div", `msg ${e.from.kind}${e.kind === "note" ? " note" : ""}`);
  el.append(make("span", "author", e.from.kind === "visitor" ? "Visitor" : e.from.name));
  const file = e.data?.attachment;
  if (file && file.url) { // a file: a link (signed URL, relative to the server)
    const link = make("a", "file", `${file.name} (${file.type}, ${Math.ceil(file.size / 1024)} KB)`);
    Object.assign(link, { href: new URL(file.url, location.href).href, target: "_blank", rel: "noopener noreferrer" });
    el.append(link);
  } else {
    el.append(e.body);
  }
  if (e.data?.offline) el.append(make("span", "author", `Left offline; reply by email to ${e.data.offline.email}`));
  return el;
}

function renderConv() {
  if (!open) return;
  const rec = record(open);
  const { conv } = rec;
  $("placeholder").hidden = true;
  $("conversation").hidden = false;
  $("conv-title").textContent = `Visitor ${conv.visitor}`;
  $("conv-state").textContent = conv.state;
  $("conv-state").className = `state ${conv.state}`;
  joinButton.hidden = isMine(conv) || conv.state === "closed";
  closeButton.hidden = conv.state === "closed";
  replyInput.disabled = !isMine(conv) || conv.state === "closed";
  replyInput.placeholder = conv.state === "closed" ? "This conversation is closed"
    : replyInput.disabled ? "Join the conversation to reply" : "Reply…";
  const messages = $("messages");
  const entries = [...rec.entries.values()].sort((a, b) => a.offset - b.offset);
  messages.replaceChildren(...entries.map(entryElement));
  messages.scrollTop = messages.scrollHeight;
  const preview = $("preview");
  preview.hidden = !rec.preview;
  preview.textContent = rec.preview ? `Visitor is typing: ${rec.preview}` : "";
}

/** @param {string} id */
function openConv(id) {
  if (open && open !== id) setTyping(false);
  open = id;
  problem("");
  catchUp(record(id));
  renderList();
  renderConv();
}

/** @param {boolean} on */
function setTyping(on) {
  if (on === typingOn || !open) return;
  typingOn = on;
  transmit({ t: "typing", conv: open, on });
}

/** @param {any} f a frame from the server */
function onFrame(f) {
  switch (f.t) {
    case "welcome":
      attempt = 0;
      me = f.agent;
      $("me").textContent = `${f.agent.name} · ${f.site.name}`;
      loginForm.hidden = true;
      $("app").hidden = false;
      $("logout").hidden = false;
      problem("");
      f.conversations.forEach(onConv);
      renderList();
      if (open) openConv(open);
      break;
    case "conv":
      onConv(f.conv);
      break;
    case "history": {
      const rec = record(f.conv);
      if (!f.complete) Object.assign(rec, { entries: new Map(), last: 0 });
      f.messages.forEach(addEntry);
      if (open === f.conv) renderConv();
      break;
    }
    case "msg":
      addEntry(f);
      if (open === f.conv) renderConv();
      break;
    case "preview": // the visitor's live draft (sites with typing previews on)
      record(f.conv).preview = f.text;
      if (open === f.conv) renderConv();
      break;
    case "typing": // typing previews off: only whether the visitor types
      if (f.from.kind !== "visitor") break;
      record(f.conv).preview = f.on ? "…" : "";
      if (open === f.conv) renderConv();
      break;
    case "error":
      problem(f.message);
      break;
  }
}

/** @param {string} token */
function connect(token) {
  const sock = (ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`, "chatserver.json"));
  sock.onopen = () => sock.send(JSON.stringify({ t: "hello", v: 1, kind: "agent", token }));
  sock.onmessage = (event) => onFrame(JSON.parse(event.data));
  sock.onclose = (event) => {
    if (ws !== sock) return; // logged out
    ws = null;
    typingOn = false;
    if (event.code >= 4100 && event.code < 4200) { // terminal: log in again
      logout(event.reason || "please log in again");
      return;
    }
    problem("Connection lost, reconnecting…");
    setTimeout(() => connect(token), Math.min(30000, 500 * 2 ** attempt++) * (0.5 + Math.random() / 2));
  };
}

/** @param {string} [why] */
function logout(why = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  const sock = ws;
  ws = null;
  sock?.close();
  $("app").hidden = true;
  $("logout").hidden = true;
  $("me").textContent = "";
  loginForm.hidden = false;
  $("login-error").textContent = why;
}

loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(loginForm);
  $("login-error").textContent = "";
  try {
    const response = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: data.get("email"), password: data.get("password") }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `login failed (${response.status})`);
    sessionStorage.setItem(TOKEN_KEY, body.token);
    connect(body.token);
  } catch (err) {
    $("login-error").textContent = err instanceof Error ? err.message : String(err);
  }
});

replyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const body = replyInput.value.trim();
  if (!body || !open) return;
  transmit({ t: "send", conv: open, cid: crypto.getRandomValues(new Uint32Array(3)).join("-"), body });
  replyInput.value = "";
  setTyping(false);
});
replyInput.addEventListener("input", () => setTyping(replyInput.value.trim() !== ""));
replyInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    replyForm.requestSubmit();
  }
});
joinButton.addEventListener("click", () => open && transmit({ t: "join", conv: open }));
closeButton.addEventListener("click", () => open && transmit({ t: "close", conv: open }));
$("logout").addEventListener("click", () => logout());

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) connect(saved);
else loginForm.hidden = false;

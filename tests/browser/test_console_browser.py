"""The chat workspace (``/console/``) in a real browser, against a real server.

Agents are Chromium contexts signed in through the login form; visitors are
other contexts on shop pages served from another origin with the real widget
(``/widget.js``). Every page's console is watched: an error in any page fails
the test. The server keeps a dropped agent's chats for 30 s, so cutting an
agent's socket does not move their chats.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Role, SiteSettings

from ..conftest import PASSWORD, Server, Shop
from .test_demo_browser import watch
from .test_widget_browser import ShopServer, make_shop, shop_page

pytestmark = pytest.mark.browser

SHOWN = ".pane:not([hidden])"  # the conversation pane on screen
CANNED_TEXT = "Hello! Thanks for writing to us. How can I help you today?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module, with a grace period longer than any cut socket."""
    srv = Server(tmp_path_factory.mktemp("console"), grace=30.0).start()
    yield srv
    srv.stop()


@pytest.fixture
def problems() -> Iterator[list[str]]:
    found: list[str] = []
    expect.set_options(timeout=7000)
    yield found
    assert found == [], found


@pytest.fixture
def contexts(chromium: Browser) -> Iterator[list[BrowserContext]]:
    """Make contexts with ``new(...)``; all are closed after the test."""
    made: list[BrowserContext] = []
    yield made
    for ctx in made:
        ctx.close()


def new(contexts: list[BrowserContext], browser: Browser, **kw: Any) -> BrowserContext:
    ctx = browser.new_context(**kw)
    contexts.append(ctx)
    return ctx


def sign_in(ctx: BrowserContext, server: Server, email: str, problems: list[str]) -> Page:
    """An agent signs in through the form and waits for the workspace to connect."""
    page = watch(ctx.new_page(), email.split("-")[0], problems)
    page.goto(f"{server.url}/console")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    expect(page).to_have_url(f"{server.url}/console/")
    expect(page.locator("#link")).to_have_attribute("data-state", "online")
    return page


def visitor_writes(ctx: BrowserContext, url: str, text: str, problems: list[str]) -> Page:
    page = watch(ctx.new_page(), f"visitor {text[:12]}", problems)
    page.goto(url)
    page.click("chatserver-chat .bubble")
    box = page.locator("#chatserver-input")
    box.fill(text)
    box.press("Enter")
    expect(page.locator(".msg.me .b").last).to_have_text(text)
    return page


def put_canned(server: Server, site_id: str, shortcut: str, text: str) -> None:
    """Store a canned response as the admin pages do (a site document)."""

    async def put() -> None:
        store = SQLiteStore(server.data / "chatserver.db")
        await store.start()
        try:
            await store.put_doc(site_id, "canned", shortcut, {"shortcut": shortcut, "text": text})
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(put())).result()


def emails(shop: Shop) -> list[str]:
    return list(shop.agents)


def test_login_and_logout_through_the_form(
    server: Server,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    shop = make_shop(server, agents=1)
    ctx = new(contexts, chromium)
    page = watch(ctx.new_page(), "agent", problems)
    page.goto(f"{server.url}/console")
    expect(page).to_have_url(re.compile(r"/console/login\?next=/console/"))
    page.fill("input[name=email]", emails(shop)[0])
    page.fill("input[name=password]", "not the password")
    page.click("form.login button[type=submit]")
    expect(page.locator("form.login .error")).to_have_text("Wrong email or password.")
    # The refused form answers 401, which Chromium logs: expected here, and only here.
    assert [p for p in problems if "status of 401" not in p] == []
    problems.clear()
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    expect(page).to_have_url(f"{server.url}/console/")
    expect(page.locator("#link")).to_have_attribute("data-state", "online")
    expect(page.locator("#capacity")).to_have_text("0 / 5")
    expect(page.locator("header.top .who")).to_contain_text("Agent 0")
    # The keyboard shortcuts are documented on the page.
    page.click(".shortcuts summary")
    expect(page.locator(".shortcuts dl")).to_contain_text("next / previous conversation")

    page.click("header.top .logout button")
    expect(page).to_have_url(f"{server.url}/console/login")
    page.goto(f"{server.url}/console/")
    expect(page).to_have_url(re.compile(r"/console/login"))


def test_draft_reply_canned_response_and_note(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    shop = make_shop(server, agents=1)
    put_canned(server, shop.site.id, "hi", CANNED_TEXT)
    put_canned(server, shop.site.id, "bye", "Thanks, have a nice day!")
    agent = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)

    vctx = new(contexts, chromium)
    received: list[str] = []  # every frame the visitor's browser received
    vctx.on("websocket", lambda ws: ws.on("framereceived", lambda f: received.append(str(f))))
    url = shops.add(f"draft-{shop.site.id}", shop_page(server, shop.key))
    visitor = visitor_writes(vctx, url, "Hi, is the linen shirt in stock?", problems)

    item = agent.locator("#list-mine .conv-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("Hi, is the linen shirt in stock?")
    expect(agent.locator("#capacity")).to_have_text("1 / 5")
    item.click()
    pane = agent.locator(SHOWN)
    expect(pane.locator(".entry.visitor .body")).to_have_text(["Hi, is the linen shirt in stock?"])

    # The draft shows before it is sent, apart from the messages, as text.
    box = visitor.locator("#chatserver-input")
    box.fill("And in size <b>XL</b>?")
    expect(pane.locator(".preview-text")).to_have_text("And in size <b>XL</b>?")
    expect(pane.locator(".entry.visitor")).to_have_count(1)
    box.press("Enter")
    expect(pane.locator(".entry.visitor .body")).to_have_count(2)
    # at once with the message, not at the next typing refresh (#21: it lingered 4 s)
    expect(pane.locator(".preview")).to_be_hidden(timeout=1000)

    # "/hi" suggests the canned response; Enter inserts it for editing; Enter sends.
    reply = pane.locator("textarea.reply")
    reply.press_sequentially("/h")
    suggestions = pane.locator(".canned-item")
    expect(suggestions).to_have_count(1)
    expect(suggestions.first).to_contain_text("/hi")
    reply.press("Backspace")
    reply.press_sequentially("b")
    expect(suggestions.first).to_contain_text("/bye")
    reply.press("Backspace")
    reply.press_sequentially("hi")
    expect(suggestions.first).to_contain_text(CANNED_TEXT)
    reply.press("Enter")
    expect(reply).to_have_value(CANNED_TEXT)
    expect(pane.locator(".canned")).to_be_hidden()
    reply.press("End")
    reply.press_sequentially(" Yes, XL too.")
    reply.press("Enter")
    expect(reply).to_have_value("")
    theirs = visitor.locator(".msg.them .b")
    expect(theirs).to_have_count(1)
    expect(theirs.first).to_contain_text(f"{CANNED_TEXT} Yes, XL too.")

    # A note (Alt+N): agents see it marked as such; the visitor never receives it.
    agent.keyboard.press("Alt+KeyN")
    expect(pane.locator(".composer")).to_have_class(re.compile("is-note"))
    reply.fill("Secret: VIP customer, offer free shipping")
    reply.press("Enter")
    note = pane.locator(".entry.note")
    expect(note).to_have_count(1)
    expect(note).to_contain_text("Internal note")
    expect(note.locator(".body")).to_have_text("Secret: VIP customer, offer free shipping")
    agent.keyboard.press("Alt+KeyN")
    reply.fill("Anything else?")
    reply.press("Enter")
    expect(theirs).to_have_count(2)
    visitor.reload()
    expect(visitor.locator(".msg .b")).to_have_count(4)
    assert not [f for f in received if "VIP customer" in f]
    expect(visitor.locator("chatserver-chat")).not_to_contain_text("VIP")
    expect(agent.locator(".pane b, .preview b")).to_have_count(0)


def test_one_agent_juggles_three_visitors_with_the_keyboard(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    shop = make_shop(server, agents=1)
    agent = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    url = shops.add(f"juggle-{shop.site.id}", shop_page(server, shop.key))
    visitors = [
        visitor_writes(new(contexts, chromium), url, f"Question {n} from visitor {n}", problems)
        for n in (1, 2, 3)
    ]
    expect(agent.locator("#list-mine .conv-item")).to_have_count(3)
    expect(agent.locator("#capacity")).to_have_text("3 / 5")
    expect(agent).to_have_title(re.compile(r"^\(3\) "))  # three unread messages

    # Alt+Down walks the list and opens each conversation as a tab.
    for _ in range(3):
        agent.keyboard.press("Alt+ArrowDown")
    expect(agent.locator(".tab-open")).to_have_count(3)
    expect(agent).to_have_title(re.compile(r"^Chats"))  # all read now
    texts: dict[str, int] = {}
    for i in range(3):
        agent.keyboard.press(f"Alt+Digit{i + 1}")
        expect(agent.locator(".tab-open").nth(i)).to_have_attribute("aria-selected", "true")
        question = agent.locator(f"{SHOWN} .entry.visitor .body").first.inner_text()
        n = int(question.split()[-1])
        texts[question] = n
        reply = agent.locator(f"{SHOWN} textarea.reply")
        expect(reply).to_be_enabled()
        reply.fill(f"Answer for visitor {n}")
        reply.press("Enter")
    assert sorted(texts.values()) == [1, 2, 3]
    for n, page in enumerate(visitors, 1):
        expect(page.locator(".msg.them .b")).to_have_text([f"Answer for visitor {n}"])

    # A message in a tab not shown gets an unread badge on its tab and in the list.
    agent.keyboard.press("Alt+Digit1")
    expect(agent.locator(".tab-open").first).to_have_attribute("aria-selected", "true")
    first = agent.locator(".tab-open").first.get_attribute("data-conv")
    shown = int(agent.locator(f"{SHOWN} .entry.visitor .body").first.inner_text().split()[-1])
    other = visitors[shown % 3]  # a visitor whose chat is not on screen
    other.locator("#chatserver-input").fill("One more thing")
    other.locator("#chatserver-input").press("Enter")
    busy = agent.locator(".tab-open", has=agent.locator(".unread"))
    expect(busy).to_have_count(1)
    assert busy.get_attribute("data-conv") != first
    expect(agent.locator("#list-mine .conv-item .unread")).to_have_text(["1"])
    expect(agent).to_have_title(re.compile(r"^\(1\) "))
    busy.click()
    expect(agent.locator(f"{SHOWN} .entry.visitor .body").last).to_have_text("One more thing")
    expect(agent.locator(".tab-open .unread")).to_have_count(0)

    # Alt+W closes a tab; on a narrow screen the list and the pane take turns.
    agent.keyboard.press("Alt+KeyW")
    expect(agent.locator(".tab-open")).to_have_count(2)
    agent.set_viewport_size({"width": 400, "height": 760})
    expect(agent.locator(".side")).to_be_hidden()
    expect(agent.locator(f"{SHOWN} textarea.reply")).to_be_visible()
    agent.click("#back")
    expect(agent.locator(".side")).to_be_visible()
    agent.locator("#list-mine .conv-item").first.click()
    expect(agent.locator(".side")).to_be_hidden()
    expect(agent.locator(f"{SHOWN} .entry.visitor").first).to_be_visible()


def test_a_click_in_the_list_survives_its_redraws(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    """The list redraws at every change (a visitor typing: up to ten times a second).
    A press and a release on a conversation with redraws between them still open it:
    the item's button is kept and its contents take no pointer events (list.js).
    Before, the redraw replaced the button under the pointer and the click was lost."""
    shop = make_shop(server, agents=1)
    agent = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    url = shops.add(f"redraw-{shop.site.id}", shop_page(server, shop.key))
    visitor = visitor_writes(new(contexts, chromium), url, "Do you ship abroad?", problems)
    item = agent.locator("#list-mine .conv-item")
    expect(item).to_contain_text("Do you ship abroad?")
    box = item.bounding_box()
    assert box is not None
    agent.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    agent.mouse.down()
    for draft in ("To Norway", "To Norway, and how long"):  # two redraws while pressed
        visitor.locator("#chatserver-input").fill(draft)
        expect(item).to_contain_text(draft)
    agent.mouse.up()
    expect(agent.locator(f"{SHOWN} .entry.visitor .body")).to_have_text(["Do you ship abroad?"])


def test_take_a_queued_chat_then_transfer_it(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    shop = make_shop(server, agents=2, settings=SiteSettings(routing="manual"))
    anna = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    marc = sign_in(new(contexts, chromium), server, emails(shop)[1], problems)
    url = shops.add(f"transfer-{shop.site.id}", shop_page(server, shop.key))
    visitor = visitor_writes(new(contexts, chromium), url, "Can someone help me?", problems)

    # Manual routing: the chat waits in the queue, its messages and draft visible.
    queued = anna.locator("#list-queued .conv-item")
    expect(queued).to_have_count(1)
    expect(queued).to_contain_text("Can someone help me?")
    expect(anna).to_have_title(re.compile(r"^\(1\) "))
    queued.click()
    pane = anna.locator(SHOWN)
    expect(pane.locator(".state")).to_contain_text("queued")
    expect(pane.locator(".read-only")).to_contain_text("join it to reply")
    visitor.locator("#chatserver-input").fill("Hello?")
    expect(pane.locator(".preview-text")).to_have_text("Hello?")
    pane.locator("button.join").click()
    expect(pane.locator(".state")).to_have_text("active")
    expect(anna.locator("#list-mine .conv-item")).to_have_count(1)
    expect(visitor.locator(".head h2")).to_have_text("Agent 0")

    # Marc sees it among colleagues' chats and goes away (no new chats, but
    # transfers still reach him); Anna hands it to him.
    expect(marc.locator("#list-others .conv-item")).to_contain_text("with Agent 0")
    marc.select_option("#status", "away")
    expect(marc.locator("#workspace")).to_have_attribute("data-status", "away")
    pane.locator(".menu.transfer summary").click()
    # #21: under its button, inside the pane (it used to cover the list)
    body = pane.locator(".menu.transfer .menu-body").bounding_box()
    button = pane.locator(".menu.transfer summary").bounding_box()
    box = pane.bounding_box()
    assert body is not None and button is not None and box is not None
    assert body["x"] >= box["x"] and body["y"] >= button["y"] + button["height"], (body, box)
    select = pane.locator(".menu.transfer select")
    expect(select.locator("option", has_text="Agent 1 (away)")).to_have_count(1)
    expect(select.locator("optgroup[label=Departments] option")).to_have_count(0)
    select.select_option(label="Agent 1 (away)")
    pane.locator(".menu.transfer button[type=submit]").click()
    expect(pane.locator(".read-only")).to_contain_text("join it to reply")
    expect(pane.locator(".entry.event").last).to_contain_text("Agent 0 left")
    expect(anna.locator("#list-mine .conv-item")).to_have_count(0)
    mine = marc.locator("#list-mine .conv-item")
    expect(mine).to_have_count(1)
    mine.click()
    mpane = marc.locator(SHOWN)
    expect(mpane.locator(".entry.event")).to_contain_text(
        ["Agent 0 joined", "Agent 0 transferred the chat to Agent 1", "Agent 1 joined"]
    )
    mpane.locator("textarea.reply").fill("Marc here, I'll take it from here.")
    mpane.locator("textarea.reply").press("Enter")
    expect(visitor.locator(".msg.them .b")).to_have_text(["Marc here, I'll take it from here."])
    expect(visitor.locator(".head h2")).to_have_text("Agent 1")


def test_collision_indicator_and_invitation(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    shop = make_shop(server, agents=2, settings=SiteSettings(routing="manual"))
    anna = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    marc = sign_in(new(contexts, chromium), server, emails(shop)[1], problems)
    url = shops.add(f"collision-{shop.site.id}", shop_page(server, shop.key))
    visitor = visitor_writes(new(contexts, chromium), url, "Where is my order?", problems)
    anna.locator("#list-queued .conv-item").click()
    apane = anna.locator(SHOWN)
    apane.locator("button.join").click()
    expect(apane.locator(".state")).to_have_text("active")

    # Marc opens the same chat: each sees the other viewing.
    marc.locator("#list-others .conv-item").click()
    mpane = marc.locator(SHOWN)
    expect(apane.locator(".collision .viewers")).to_have_text("Also viewing: Agent 1")
    expect(mpane.locator(".collision .viewers")).to_have_text("Also viewing: Agent 0")
    expect(marc.locator("#list-others .eyes")).to_have_text("1 viewing")

    # Anna invites Marc; he accepts and types: Anna sees it, and so does the visitor.
    apane.locator(".menu.invite summary").click()
    apane.locator(".menu.invite select").select_option(label="Agent 1 (online)")
    apane.locator(".menu.invite button[type=submit]").click()
    toast = marc.locator(".toast", has_text="Agent 0 invites you")
    expect(toast).to_be_visible()
    toast.locator("button", has_text="Join").click()
    expect(mpane.locator("textarea.reply")).to_be_enabled()
    mpane.locator("textarea.reply").press_sequentially("Let me check")
    expect(apane.locator(".collision .typers")).to_have_text("✎ Agent 1 is typing…")
    expect(visitor.locator(".typing")).to_contain_text("Agent 1 is typing")
    mpane.locator("textarea.reply").fill("")
    expect(apane.locator(".collision .typers")).to_have_text("")
    expect(visitor.locator(".typing", has_text="typing")).to_have_count(0)

    # Typing a note shows to Anna, not to the visitor.
    marc.keyboard.press("Alt+KeyN")
    mpane.locator("textarea.reply").press_sequentially("internal")
    expect(apane.locator(".collision .typers")).to_have_text("✎ Agent 1 (a note) is typing…")
    visitor.wait_for_timeout(500)
    expect(visitor.locator(".typing", has_text="typing")).to_have_count(0)

    # Marc closes his tab: Anna no longer sees him viewing.
    marc.keyboard.press("Alt+KeyW")
    expect(apane.locator(".collision .viewers")).to_have_text("")
    expect(apane.locator(".collision .typers")).to_have_text("")


SHOP_SCRIPT = """<script>
  window.$chat = window.$chat || [];
  $chat.push(["identify", {name: "Ann Smith", email: "ann@example.com"}]);
  $chat.push(["set", {plan: "pro", cart: {items: 2, total: 59.9, currency: "EUR"}}]);
</script>"""


def page_html(server: Server, key: str, title: str, link: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{title}</title><link rel="icon" href="data:,">{SHOP_SCRIPT}</head>
<body><h1>{title}</h1><a id="next" href="{link}">next page</a>
<script src="{server.url}/widget.js" data-site="{key}" async></script></body></html>"""


def test_visitor_panel_follows_the_visitor(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    shop = make_shop(server, agents=1)
    agent = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    first = f"panel-{shop.site.id}/shirts"
    second = f"panel-{shop.site.id}/checkout"
    url = shops.add(first, page_html(server, shop.key, "Linen shirts", f"/{second}"))
    shops.add(second, page_html(server, shop.key, "Checkout", f"/{first}"))
    vctx = new(contexts, chromium, timezone_id="Asia/Tokyo")
    visitor = visitor_writes(vctx, url, "Do you have the shirt in blue?", problems)
    agent.locator("#list-mine .conv-item").click()
    panel = agent.locator("#visitor-panel")
    expect(panel.locator(".v-name")).to_have_text("Ann Smith")
    expect(panel.locator(".v-email")).to_contain_text("ann@example.com")
    expect(panel.locator(".v-cart")).to_contain_text("2 items")
    expect(panel.locator(".cart-total")).to_contain_text("59.90")
    expect(panel.locator(".v-attrs")).to_contain_text("plan")
    expect(panel.locator(".v-attrs dd")).to_have_text(["pro"])
    expect(panel.locator(".v-facts")).to_contain_text("(Asia/Tokyo)")
    expect(panel.locator(".v-facts")).to_contain_text("Visits1")
    expect(panel.locator(".v-now .page-title")).to_have_text("Linen shirts")
    expect(agent.locator("#list-mine .conv-item .who")).to_have_text("Ann Smith")

    # The visitor moves on: the panel follows without any action of the agent.
    visitor.click("#next")
    expect(visitor).to_have_title("Checkout")
    expect(panel.locator(".v-now .page-title")).to_have_text("Checkout")
    pages = panel.locator(".v-pages .page-view .page-title")
    expect(pages).to_have_text(["Checkout", "Linen shirts"])
    # time on the first page: from one page view to the next
    expect(panel.locator(".v-pages .page-view .spent").nth(1)).to_have_text(re.compile(r"· \d+ s"))
    link = panel.locator(".v-now a.page-title")
    expect(link).to_have_attribute("href", shops.url + second)
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    # #21: the time on the current page counts up while the panel is open
    so_far = panel.locator(".v-pages .page-view .spent.so-far")
    before = so_far.inner_text()
    expect(so_far).not_to_have_text(before, timeout=3000)

    # A past conversation shows, and opens read-only.
    conv = agent.locator(f"{SHOWN}").get_attribute("data-conv")
    agent.locator(f"{SHOWN} button.close-chat").click()
    expect(agent.locator(f"{SHOWN} .read-only")).to_have_text("This conversation is closed.")
    expect(visitor.locator(".sys").last).to_have_text("The chat has ended")
    box = visitor.locator("#chatserver-input")
    box.fill("One more question")
    box.press("Enter")
    new_item = agent.locator("#list-mine .conv-item")
    expect(new_item).to_have_count(1)
    new_item.click()
    past = panel.locator(".v-past button")
    expect(past).to_have_count(1)
    past.click()
    expect(agent.locator(SHOWN)).to_have_attribute("data-conv", conv or "")
    expect(agent.locator(f"{SHOWN} .entry.visitor .body")).to_have_text(
        ["Do you have the shirt in blue?"]
    )
    # #21: two tabs of one visitor's two conversations say which is which
    tabs = agent.locator(".tab-open")
    expect(tabs).to_have_count(2)
    labels = tabs.all_inner_texts()
    assert len(set(labels)) == 2 and all("Ann Smith · " in label for label in labels), labels
    # #21: once the visitor has left, the panel stops saying they are online
    expect(panel.locator(".v-presence")).to_have_class(re.compile(r"\bon\b"))
    visitor.close()
    expect(panel.locator(".v-presence")).to_have_text("Not on the site now", timeout=15000)


def test_messages_sent_while_the_socket_is_cut_appear_without_a_reload(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    shop = make_shop(server, agents=1)
    actx = new(contexts, chromium)
    offline = threading.Event()
    sockets: list[WebSocketRoute] = []

    def route_ws(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        if not offline.is_set():
            ws.connect_to_server()
        # else: a socket that opens and never answers (a dead network)

    actx.route_web_socket(re.compile(r"/ws$"), route_ws)
    agent = sign_in(actx, server, emails(shop)[0], problems)
    url = shops.add(f"cut-{shop.site.id}", shop_page(server, shop.key))
    visitor = visitor_writes(new(contexts, chromium), url, "Before the cut", problems)
    agent.locator("#list-mine .conv-item").click()
    pane = agent.locator(SHOWN)
    expect(pane.locator(".entry.visitor .body")).to_have_text(["Before the cut"])
    agent.evaluate("window.__samePage = true")

    offline.set()
    sockets[-1].close(code=1001, reason="test: network down")
    expect(agent.locator("#link")).not_to_have_attribute("data-state", "online")
    expect(agent.locator("#link-text")).to_contain_text("Reconnect")
    box = visitor.locator("#chatserver-input")
    for text in ("Sent during the cut", "And another one"):
        box.fill(text)
        box.press("Enter")
    expect(visitor.locator(".msg.me .meta").last).to_contain_text("Sent")
    # The agent writes meanwhile: kept as pending, sent once back.
    reply = pane.locator("textarea.reply")
    reply.fill("Written while cut off")
    reply.press("Enter")
    expect(pane.locator(".entry.pending")).to_contain_text("Sending")
    expect(pane.locator(".entry.visitor .body")).to_have_count(1)

    offline.clear()
    sockets[-1].close(code=1001, reason="test: network back")
    expect(agent.locator("#link")).to_have_attribute("data-state", "online", timeout=20000)
    expect(pane.locator(".entry.visitor .body")).to_have_text(
        ["Before the cut", "Sent during the cut", "And another one"]
    )
    expect(pane.locator(".entry.pending")).to_have_count(0)
    expect(pane.locator(".entry.agent.mine .body")).to_have_text(["Written while cut off"])
    expect(visitor.locator(".msg.them .b")).to_have_text(["Written while cut off"])
    assert agent.evaluate("window.__samePage") is True
    expect(agent.locator("body")).not_to_contain_text("refresh")
    # Still live after the recovery.
    box.fill("After the cut")
    box.press("Enter")
    expect(pane.locator(".entry.visitor .body").last).to_have_text("After the cut")
    visitor.reload()
    expect(visitor.locator(".msg.them .b")).to_have_text(["Written while cut off"])


def test_long_history_is_paged_in_when_scrolled_up(
    server: Server,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    shop = make_shop(server, agents=1)
    protocol = [Subprotocol("chatserver.json")]
    with connect(server.ws_url, subprotocols=protocol, compression=None) as ws:
        ws.send(json.dumps({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key}))
        for i in range(1, 71):  # paced under the server's rate limit
            ws.send(json.dumps({"t": "send", "id": i, "cid": f"m{i}", "body": f"message {i:02d}"}))
            time.sleep(0.06)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            frame = json.loads(ws.recv(timeout=5))
            if frame.get("t") == "ack" and frame["cid"] == "m70":
                break
        else:
            raise AssertionError("the visitor's messages were not all stored")

        # The agent comes online and gets the chat: only the newest page of 50
        # entries is loaded (the joined event, 71, and messages 22 to 70).
        agent = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
        agent.locator("#list-mine .conv-item").click()
        pane = agent.locator(SHOWN)
        bodies = pane.locator(".entry.visitor .body")
        expect(bodies).to_have_count(49)
        expect(bodies.first).to_have_text("message 22")
        expect(bodies.last).to_have_text("message 70")
        expect(pane.locator("button.older")).to_be_attached()
        # Scrolled to the top, the older entries come by themselves.
        pane.locator(".scroll").evaluate("e => { e.scrollTop = 0; }")
        expect(bodies).to_have_count(70)
        expect(bodies.first).to_have_text("message 01")
        expect(pane.locator("button.older")).to_be_hidden()
        expect(pane.locator(".entry.event")).to_contain_text(["Agent 0 joined"])


def test_pane_links_to_cobrowse_and_recordings(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
) -> None:
    """The agent who has the chat gets a Co-browse link to its live view; an
    admin also gets the visitor's recordings."""
    problems: list[str] = []
    shop = make_shop(server, agents=1, roles={0: Role.ADMIN})
    agent = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    url = shops.add(f"links-{shop.site.id}", shop_page(server, shop.key))
    visitor_writes(new(contexts, chromium), url, "Can you show me?", problems)
    item = agent.locator("#list-mine .conv-item")
    expect(item).to_have_count(1)
    item.click()
    pane = agent.locator(SHOWN)
    cobrowse = pane.locator("a.cobrowse-link")
    expect(cobrowse).to_be_visible()
    href = cobrowse.get_attribute("href") or ""
    assert href.startswith("/console/cobrowse/c_")
    recordings = pane.locator("a.recordings-link")
    expect(recordings).to_be_visible()
    assert (recordings.get_attribute("href") or "").startswith("/console/sessions?visitor=v_")
    assert problems == []


def test_an_offline_visitors_name_shows_in_the_lists(
    server: Server,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    """#21: the offline form's name, not "Visitor 1a2b", for an agent online then and
    for a colleague who signs in later (the conversation came in their welcome)."""
    shop = make_shop(server, agents=2, settings=SiteSettings(routing="manual"))  # stays queued
    first, second = emails(shop)
    now = sign_in(new(contexts, chromium), server, first, problems)
    protocol = [Subprotocol("chatserver.json")]
    with connect(server.ws_url, subprotocols=protocol, compression=None) as ws:
        ws.send(json.dumps({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key}))
        form = {"name": "Ann Example", "email": "ann@example.com", "body": "Do you ship?"}
        ws.send(json.dumps({"t": "offline", "id": 1, "cid": "o1", **form}))
        deadline = time.monotonic() + 10
        while json.loads(ws.recv(timeout=5)).get("t") != "ack":
            assert time.monotonic() < deadline
    item = now.locator(".conv-item").filter(has_text="Do you ship?")
    expect(item.locator(".who")).to_have_text("Ann Example")
    later = sign_in(new(contexts, chromium), server, second, problems)
    later_item = later.locator(".conv-item").filter(has_text="Do you ship?")
    expect(later_item.locator(".who")).to_have_text("Ann Example", timeout=4000)


def test_an_agent_starts_a_chat_from_the_visitors_on_the_site(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    """#21: "On the site now" lists who browses; the agent's first message opens the
    visitor's chat window with it, and the conversation opens in the console."""
    shop = make_shop(server, agents=1)
    url = shops.add(f"online-{shop.site.id}", page_html(server, shop.key, "Linen shirts", "/x"))
    visitor = watch(new(contexts, chromium).new_page(), "visitor", problems)
    visitor.goto(url)
    expect(visitor.locator("chatserver-chat .bubble")).to_be_visible()
    agent = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    row = agent.locator("#list-online .online-item")
    expect(row).to_have_count(1)
    expect(row.locator(".online-page")).to_have_text("Linen shirts")
    expect(row.locator(".who")).to_have_text("Ann Smith")  # the page's identify
    row.locator("button.start-chat").click()
    row.locator(".start-form textarea").fill("Hello Ann! The linen shirt is back in blue.")
    row.locator(".start-form button[type=submit]").click()
    expect(visitor.locator("#chatserver-panel")).to_be_visible()  # opened for them
    expect(visitor.locator(".msg .b").last).to_have_text(
        "Hello Ann! The linen shirt is back in blue."
    )
    pane = agent.locator(SHOWN)
    expect(pane.locator(".entry.agent .body")).to_have_text(
        ["Hello Ann! The linen shirt is back in blue."]
    )
    expect(row.locator(".badge")).to_have_text("in chat")
    box = visitor.locator("#chatserver-input")
    box.fill("Great, size M please")
    box.press("Enter")
    expect(pane.locator(".entry.visitor .body")).to_have_text(["Great, size M please"])

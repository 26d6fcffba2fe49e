"""The embeddable widget (``/widget.js`` from ``chatserver/widget_build``) in a real browser.

The shop pages are served by the test itself from a tiny web server on
another port (so another origin than the chat server), with the one script
tag pointing at the chat server, as a shop owner would paste it. The agent
is a protocol client (JSON over ``websockets``' sync client, read on a
thread). Every page's console is watched: no error may come from the widget.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    WebSocketRoute,
    expect,
    sync_playwright,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from chatserver.types import SiteSettings

from ..conftest import PASSWORD, Server, Shop, seed
from .test_demo_browser import CHROMIUM, CHROMIUM_ARGS, watch

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


class Agent:
    """An agent on the real protocol, frames collected by a reader thread."""

    def __init__(self, server: Server, email: str, password: str = PASSWORD) -> None:
        r = httpx.post(f"{server.url}/api/login", json={"email": email, "password": password})
        r.raise_for_status()
        self._stack = ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(server.ws_url, subprotocols=[Subprotocol("chatserver.json")], compression=None)
        )
        self.frames: list[dict[str, Any]] = []
        self._new = threading.Condition()
        self._rid = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.request({"t": "hello", "v": 1, "kind": "agent", "token": r.json()["token"]})

    def _read(self) -> None:
        try:
            for raw in self.ws:
                with self._new:
                    self.frames.append(json.loads(raw))
                    self._new.notify_all()
        except ConnectionClosed:
            pass

    def send(self, frame: dict[str, Any]) -> None:
        self.ws.send(json.dumps(frame))

    def expect(
        self, t: str, where: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 5
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                for f in self.frames:
                    if f.get("t") == t and (where is None or where(f)):
                        return f
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"agent: no {t!r}; got {[f['t'] for f in self.frames]}")
                self._new.wait(left)

    def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send with a fresh request id; the reply (or error) carrying it."""
        self._rid += 1
        rid = self._rid
        self.send({**frame, "id": rid})
        deadline = time.monotonic() + 5
        with self._new:
            while True:
                for f in self.frames:
                    if f.get("re") == rid:
                        return f
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"agent: no reply to #{rid}")
                self._new.wait(left)

    def assigned(self) -> str:
        """The id of the first conversation assigned to this agent."""
        return str(self.expect("conv", lambda f: f["conv"]["state"] == "active")["conv"]["id"])

    def texts(self, conv: str) -> list[str]:
        """The conversation's text entries, from the server's history."""
        reply = self.request({"t": "history", "conv": conv, "since": 0})
        return [m["body"] for m in reply["messages"] if m["kind"] == "text"]

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    ctx = chromium.new_context()
    expect.set_options(timeout=5000)
    yield ctx
    ctx.close()


def shop_page(server: Server, key: str, head: str = "", body: str = "", lang: str = "en") -> str:
    """A shop page on another origin than the chat server, with the one script tag."""
    return f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>Shop</title><link rel="icon" href="data:,">{head}</head>
<body><div id="shop"><h1>A shop</h1><p class="copy">Some products.</p></div>{body}
<script src="{server.url}/widget.js" data-site="{key}" async></script></body></html>"""


class ShopServer:
    """The shop's own web server: another origin (another port) than the chat server.

    A real loopback server rather than Playwright's router, because Chromium's
    local-network-access checks refuse loopback requests from intercepted pages.
    """

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.headers: dict[str, dict[str, str]] = {}
        pages, extra = self.pages, self.headers

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.split("?")[0].lstrip("/")
                body = pages.get(name)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                for key, value in extra.get(name, {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write((body or "no such page").encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, name: str, html: str, headers: dict[str, str] | None = None) -> str:
        """Serve ``html`` at ``name`` (with extra response ``headers``); return its URL."""
        self.pages[name] = html
        self.headers[name] = dict(headers or {})
        return self.url + name


@pytest.fixture(scope="module")
def shops() -> Iterator[ShopServer]:
    srv = ShopServer()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def make_shop(server: Server, **kw: Any) -> Shop:
    """Seed a site (on a thread: Playwright's sync API keeps an event loop running here)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(seed(server.data, **kw))).result()


def test_visitor_chats_across_reload_and_tabs(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    problems: list[str] = []
    url = shops.add("chat", shop_page(server, shop.key))
    tab1 = watch(context.new_page(), "tab1", problems)
    tab1.goto(url)

    # The visitor opens the chat; the draft reaches the agent while typing.
    tab1.click("chatserver-chat .bubble")
    box = tab1.locator("#chatserver-input")
    expect(box).to_be_focused()
    box.fill("Hello, is the blue mug in stock?")
    box.press("Enter")
    conv = agent.assigned()
    expect(tab1.locator(".head h2")).to_have_text("Agent 0")  # assigned at once
    expect(tab1.locator(".head .avatar")).to_have_text("A0")
    box.fill("And the red one?")
    agent.expect("preview", lambda f: f["text"] == "And the red one?")
    box.press("Enter")

    # The agent types, then replies with markup and a link: shown as text, link safe.
    agent.send({"t": "typing", "conv": conv, "on": True})
    expect(tab1.locator(".typing")).to_have_text("Agent 0 is typing…")
    reply = f"Yes! {XSS} See https://shop.example/mugs?c=blue."
    agent.send({"t": "send", "conv": conv, "cid": "a1", "body": reply})
    theirs = tab1.locator(".msg.them .b")
    expect(theirs).to_have_count(1)
    expect(theirs.first).to_contain_text(f"Yes! {XSS} See https://shop.example/mugs?c=blue")
    expect(tab1.locator(".typing")).to_be_hidden()
    link = theirs.locator("a")
    expect(link).to_have_attribute("href", "https://shop.example/mugs?c=blue")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow ugc")
    expect(link).to_have_attribute("target", "_blank")
    expect(tab1.locator("chatserver-chat img, chatserver-chat script")).to_have_count(0)
    assert tab1.evaluate("window.__pwned") is None
    expect(tab1.locator(".msg.them time")).to_have_count(1)

    # The open window counts as read; the agent reads the visitor's messages: "Read".
    agent.expect("read", lambda f: f["by"]["kind"] == "visitor" and f["offset"] >= 4)
    agent.send({"t": "read", "conv": conv, "offset": 3})
    expect(tab1.locator(".msg.me .meta").last).to_contain_text("Read")

    # A reload keeps the conversation and the open window.
    tab1.reload()
    expect(tab1.locator("#chatserver-panel")).to_be_visible()
    texts = [
        "Hello, is the blue mug in stock?",
        "And the red one?",
        f"Yes! {XSS} See https://shop.example/mugs?c=blue (opens in a new tab).",
    ]
    expect(tab1.locator(".msg .b")).to_have_text(texts)

    # A second tab: same visitor, same conversation; what it sends shows in both.
    tab2 = watch(context.new_page(), "tab2", problems)
    tab2.goto(url)
    expect(tab2.locator("chatserver-chat .bubble")).to_be_visible()
    expect(tab2.locator("#chatserver-panel")).to_be_hidden()  # open state is per tab
    tab2.click("chatserver-chat .bubble")
    expect(tab2.locator(".msg .b")).to_have_text(texts)
    tab2.locator("#chatserver-input").fill("Sent from the second tab")
    tab2.locator("#chatserver-input").press("Enter")
    expect(tab1.locator(".msg.me .b").last).to_have_text("Sent from the second tab")
    agent.expect("msg", lambda f: f.get("body") == "Sent from the second tab")

    # Unread badge while closed, cleared in every tab once read in one.
    tab1.locator("chatserver-chat .head button").click()
    tab2.keyboard.press("Escape")
    expect(tab2.locator("#chatserver-panel")).to_be_hidden()
    expect(tab2.locator("chatserver-chat .bubble")).to_be_focused()
    agent.send({"t": "send", "conv": conv, "cid": "a2", "body": "Anything else?"})
    for tab in (tab1, tab2):
        expect(tab.locator(".bubble .badge")).to_have_text("1")
        expect(tab.locator("chatserver-chat .bubble")).to_have_attribute(
            "aria-label", "Open chat, 1 unread message"
        )
    tab2.click("chatserver-chat .bubble")
    expect(tab1.locator(".bubble .badge")).to_be_hidden()
    assert agent.texts(conv).count("Sent from the second tab") == 1
    agent.close()
    assert problems == []


def test_api_calls_queued_before_the_loader(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    head = """<style>.copy { color: rgb(1, 2, 3); font-family: serif; }</style>
<script>
  window.seen = [];
  window.$chat = window.$chat || [];
  $chat.push(["on", "ready", () => seen.push("ready")]);
  $chat.push(["on", "open", () => seen.push("open")]);
  $chat.push(["on", "close", () => seen.push("close")]);
  $chat.push(["on", "message", (m) => seen.push(m.from.kind + ": " + m.text)]);
  $chat.push(["on", "unread", (n) => seen.push("unread " + n)]);
  $chat.push(["on", "open", () => { throw new Error("a shop bug") }]);
  $chat.push(["locale", "es"]);
  $chat.push(["strings", "es", { placeholder: "¿En qué te ayudamos?" }]);
  $chat.push(["identify", { email: "ana@example.com" }]);
  $chat.push(["open"]);
  $chat.push(["send", "Hola desde la API"]);
</script>"""
    problems: list[str] = []
    url = shops.add("api", shop_page(server, shop.key, head=head))
    page = watch(context.new_page(), "api", problems)
    page.goto(url)
    copy_style = page.evaluate("getComputedStyle(document.querySelector('.copy')).cssText")

    expect(page.locator("#chatserver-panel")).to_be_visible()
    expect(page.locator("#chatserver-input")).to_have_attribute(
        "placeholder", "¿En qué te ayudamos?"
    )
    expect(page.locator("chatserver-chat .cf button[type=submit]")).to_have_attribute(
        "aria-label", "Enviar"
    )
    expect(page.locator(".msg.me .b")).to_have_text(["Hola desde la API"])
    conv = agent.assigned()
    assert agent.texts(conv) == ["Hola desde la API"]
    page.wait_for_function("seen.includes('visitor: Hola desde la API')")
    assert page.evaluate("seen.slice(0, 2)") == ["ready", "open"]

    # Calls after the loader run at once; events keep coming.
    agent.send({"t": "send", "conv": conv, "cid": "a1", "body": "¡Hola!"})
    page.wait_for_function("seen.includes('agent: ¡Hola!')")
    page.evaluate("$chat.push(['close'])")
    expect(page.locator("#chatserver-panel")).to_be_hidden()
    agent.send({"t": "send", "conv": conv, "cid": "a2", "body": "¿Sigues ahí?"})
    page.wait_for_function("seen.includes('unread 1')")
    page.evaluate("$chat.push(['toggle'])")
    page.wait_for_function("seen.includes('unread 0')")
    assert page.evaluate("seen.filter((e) => e === 'open' || e === 'close')") == [
        "open",
        "close",
        "open",
    ]

    # The widget did not restyle the page.
    assert page.evaluate("getComputedStyle(document.querySelector('.copy')).cssText") == copy_style
    # The shop's throwing callback became a widget warning, not an error in the page.
    assert problems == []
    agent.close()


def test_hostile_page_css_leaves_the_widget_intact(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))  # online: the composer, not the offline form
    head = "<style>* { all: unset } div { display: none !important }</style>"
    problems: list[str] = []
    url = shops.add("hostile", shop_page(server, shop.key, head=head, lang="ca-ES"))
    page = watch(context.new_page(), "hostile", problems)
    page.set_viewport_size({"width": 1000, "height": 700})
    page.goto(url)

    bubble = page.locator("chatserver-chat .bubble")
    expect(bubble).to_be_visible()
    expect(bubble).to_have_attribute("aria-label", "Obre el xat")  # <html lang="ca-ES">
    box = bubble.bounding_box()
    assert box is not None
    assert (round(box["width"]), round(box["height"])) == (60, 60)
    assert box["x"] + box["width"] == pytest.approx(1000 - 20, abs=1)
    assert box["y"] + box["height"] == pytest.approx(700 - 20, abs=1)
    bubble.click()
    panel = page.locator("#chatserver-panel")
    expect(panel).to_be_visible()
    pbox = panel.bounding_box()
    assert pbox is not None and pbox["width"] == pytest.approx(380, abs=1)
    page.locator("#chatserver-input").fill("Still works")
    page.locator("#chatserver-input").press("Enter")
    expect(page.locator(".msg.me .b")).to_have_text(["Still works"])
    assert page.locator(".msg.me .b").evaluate("e => getComputedStyle(e).display") == "block"

    # Narrow screens: the window fills the viewport.
    page.set_viewport_size({"width": 400, "height": 700})
    pbox = panel.bounding_box()
    assert pbox is not None
    assert (pbox["x"], pbox["y"], pbox["width"], pbox["height"]) == (0, 0, 400, 700)
    expect(bubble).to_be_hidden()
    page.locator("chatserver-chat .head button").click()
    expect(bubble).to_be_visible()
    agent.close()
    assert problems == []


def test_wrong_site_key_degrades_silently(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    problems: list[str] = []
    warnings: list[str] = []
    url = shops.add("wrong-key", shop_page(server, "pk-no-such-site"))
    page = watch(context.new_page(), "wrong key", problems)

    def console(m: ConsoleMessage) -> None:
        if m.type == "warning":
            warnings.append(m.text)

    page.on("console", console)
    with page.expect_request(re.compile(r"/widget/chat\.[A-Z0-9]+\.js$")):
        page.goto(url)
    deadline = time.monotonic() + 5
    while not warnings and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    page.wait_for_timeout(1500)  # no retry, no second warning
    assert len(warnings) == 1, warnings
    assert "unknown site key" in warnings[0]
    expect(page.locator("chatserver-chat")).to_have_count(0)
    expect(page.locator("#shop h1")).to_be_visible()
    page.evaluate("$chat.push(['open'])")  # API calls are harmless no-ops
    expect(page.locator("chatserver-chat")).to_have_count(0)
    assert problems == []


def test_offline_messages_are_queued_and_recovered(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    """The visitor's socket drops: what they write waits and is stored once, and
    what the agent wrote meanwhile is recovered from the last offset held."""
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    offline = threading.Event()
    sockets: list[WebSocketRoute] = []

    def route_ws(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        if not offline.is_set():
            ws.connect_to_server()
        # else: a socket that opens but never answers (a dead network)

    context.route_web_socket(re.compile(r"/ws$"), route_ws)
    problems: list[str] = []
    url = shops.add("offline", shop_page(server, shop.key))
    page = watch(context.new_page(), "offline", problems)
    page.goto(url)
    page.click("chatserver-chat .bubble")
    box = page.locator("#chatserver-input")
    box.fill("Before the drop")
    box.press("Enter")
    conv = agent.assigned()
    expect(page.locator(".msg.me .meta").last).to_contain_text("Sent")

    offline.set()
    sockets[-1].close(code=1001, reason="test: network down")
    expect(page.locator(".status")).to_have_text("Connection lost. Reconnecting…")
    box.fill("Written while offline")
    box.press("Enter")
    expect(page.locator(".msg.me").last).to_have_class(re.compile("pending"))
    agent.send({"t": "send", "conv": conv, "cid": "a1", "body": "Replied meanwhile"})
    agent.expect("ack", lambda f: f.get("cid") == "a1")

    offline.clear()
    sockets[-1].close(code=1001, reason="test: network back")
    expect(page.locator(".status")).to_be_hidden(timeout=10000)
    expect(page.locator(".msg .b")).to_have_text(
        ["Before the drop", "Replied meanwhile", "Written while offline"]
    )
    expect(page.locator(".msg.me").last).not_to_have_class(re.compile("pending"))
    assert agent.texts(conv) == ["Before the drop", "Replied meanwhile", "Written while offline"]
    agent.close()
    assert problems == []


def test_preview_off_keeps_the_draft_in_the_page(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    """With the site's typing preview off, agents learn only that the visitor
    types; the page's own key handlers never see what is typed in the chat."""
    shop = make_shop(
        server, agents=1, settings=SiteSettings(typing_preview=False, routing="manual")
    )
    agent = Agent(server, next(iter(shop.agents)))
    head = "<script>window.pageKeys = 0; addEventListener('keydown', () => pageKeys++);</script>"
    problems: list[str] = []
    url = shops.add("no-preview", shop_page(server, shop.key, head=head))
    page = watch(context.new_page(), "no preview", problems)
    page.goto(url)
    page.click("chatserver-chat .bubble")
    box = page.locator("#chatserver-input")
    box.fill("Hi")
    box.press("Enter")
    conv = agent.expect("conv", lambda f: f["conv"]["state"] == "queued")["conv"]["id"]
    expect(page.locator(".head p")).to_have_text(
        "You are number 1 in line. An agent will be with you shortly."
    )

    agent.request({"t": "watch", "conv": conv})
    box.press_sequentially("my secret draft")
    agent.expect("typing", lambda f: f["from"]["kind"] == "visitor" and f["on"] is True)
    box.fill("")
    agent.expect("typing", lambda f: f["from"]["kind"] == "visitor" and f["on"] is False)
    assert not [f for f in agent.frames if f["t"] == "preview" or "secret" in json.dumps(f)]
    assert page.evaluate("pageKeys") == 0

    assert agent.request({"t": "join", "conv": conv})["t"] == "ok"
    expect(page.locator(".head h2")).to_have_text("Agent 0")
    expect(page.locator(".sys")).to_have_text(["Agent 0 joined the chat"])
    agent.close()
    assert problems == []


def test_a_closed_chat_is_followed_by_a_new_one(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    problems: list[str] = []
    url = shops.add("closed", shop_page(server, shop.key))
    page = watch(context.new_page(), "closed", problems)
    page.goto(url)
    page.click("chatserver-chat .bubble")
    box = page.locator("#chatserver-input")
    box.fill("First chat")
    box.press("Enter")
    first = agent.assigned()
    agent.expect("read", lambda f: f["conv"] == first and f["by"]["kind"] == "visitor")
    assert agent.request({"t": "close", "conv": first})["t"] == "ok"
    expect(page.locator(".sys").last).to_have_text("The chat has ended")
    expect(page.locator(".status")).to_have_text(
        "This chat has ended. Write a message to start a new one."
    )

    box.fill("Second chat")
    box.press("Enter")
    second = str(
        agent.expect("conv", lambda f: f["conv"]["id"] != first and f["conv"]["state"] == "active")[
            "conv"
        ]["id"]
    )
    # Read receipts start again in the new conversation (its offsets start at 1 again).
    agent.expect("read", lambda f: f["conv"] == second and f["by"]["kind"] == "visitor")
    expect(page.locator(".status")).to_be_hidden()
    expect(page.locator(".msg.me .b")).to_have_text(["First chat", "Second chat"])
    assert agent.texts(second) == ["Second chat"]
    agent.close()
    assert problems == []

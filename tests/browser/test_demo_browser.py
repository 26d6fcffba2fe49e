"""The first-run demo in a real browser: a visitor on the demo shop chats with an agent.

Two Chromium contexts (two people): the agent signs into the console at
``/console`` (the address ``chatserver demo`` prints), the visitor opens
``/demo/`` and the embedded widget (``/widget.js``, built from ``widget/`` by
``scripts/setup``).  Checks the typing preview, that message text is never
parsed as HTML, the agent's reply, the history after a reload of either
page, and that neither page logs an error.

Set ``CHATSERVER_SCREENSHOTS=DIR`` to save a screenshot of each page.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect, sync_playwright

from chatserver.cli import ensure_demo
from chatserver.web.demo import DEMO_EMAIL

from ..conftest import Server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server whose data directory holds the demo site, and the demo logins."""
    data = tmp_path / "data"
    _site, logins = asyncio.run(ensure_demo(data))
    server = Server(data).start()
    yield server, logins
    server.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def watch(page: Page, name: str, problems: list[str]) -> Page:
    """Record console errors, uncaught exceptions and dialogs of ``page``."""

    def console(m: ConsoleMessage) -> None:
        if m.type == "error":
            problems.append(f"{name}: {m.text}")

    def dialog(d: Dialog) -> None:
        problems.append(f"{name}: dialog {d.message!r}")
        d.dismiss()

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"{name}: uncaught {e}"))
    page.on("dialog", dialog)
    return page


def test_visitor_chats_with_agent(demo: tuple[Server, dict[str, str]], browser: Browser) -> None:
    server, logins = demo
    expect.set_options(timeout=5000)
    problems: list[str] = []
    agent = watch(browser.new_context().new_page(), "agent", problems)
    visitor = watch(browser.new_context().new_page(), "visitor", problems)

    # The agent opens the address `chatserver demo` prints and signs in.
    agent.goto(f"{server.url}/console")
    expect(agent).to_have_url(re.compile(r"/console/login"))
    agent.fill("input[name=email]", DEMO_EMAIL)
    agent.fill("input[name=password]", logins[DEMO_EMAIL])
    agent.click("form.login button[type=submit]")
    expect(agent.locator("header.top .who")).to_contain_text("Anna")
    expect(agent.locator("#link")).to_have_attribute("data-state", "online")

    # The visitor shops a little, then opens the chat and writes.
    visitor.goto(f"{server.url}/demo/")
    expect(visitor.locator(".card")).to_have_count(3)
    visitor.click("[data-add=canvas-bag]")
    expect(visitor.locator("#cart-count")).to_have_text("1")
    visitor.click("chatserver-chat .bubble")
    box = visitor.locator("#chatserver-input")
    box.fill("Hello, do you ship to Belgium?")
    box.press("Enter")
    mine = visitor.locator(".msg.me .b")
    expect(mine).to_have_text(["Hello, do you ship to Belgium?"])
    expect(visitor.locator(".sys", has_text="Anna (demo agent) joined")).to_be_visible()

    # The chat was routed to Anna: she opens it and sees the cart.
    agent.locator("#list-mine .conv-item").click()
    pane = agent.locator(".pane:not([hidden])")
    messages = pane.locator(".entry.visitor .body")
    expect(messages).to_have_text(["Hello, do you ship to Belgium?"])
    expect(agent.locator("#visitor-panel .v-cart")).to_contain_text("1 item")

    # The agent sees the draft before it is sent, as text.
    draft = f"Is this {XSS} safe?"
    box.fill(draft)
    expect(pane.locator(".preview-text")).to_have_text(draft)
    box.press("Enter")
    expect(messages).to_have_count(2)
    expect(messages.nth(1)).to_have_text(draft)
    expect(pane.locator(".preview")).to_be_hidden()
    expect(mine.nth(1)).to_have_text(draft)
    expect(visitor.locator(".msg.me").nth(1)).not_to_have_class("pending")

    # The agent replies; the visitor sees them typing, then the reply.
    reply = pane.locator("textarea.reply")
    reply.fill("Yes, in 2-3 days. And that image tag is just text here.")
    expect(visitor.locator(".typing")).to_have_text("Anna (demo agent) is typing…")
    reply.press("Enter")
    theirs = visitor.locator(".msg.them .b")
    expect(theirs).to_have_count(1)
    expect(theirs.first).to_contain_text("Yes, in 2-3 days.")
    expect(visitor.locator(".typing")).to_have_text("")
    expect(pane.locator(".entry.agent.mine")).to_have_count(1)

    # After a reload the conversation is still there (token in localStorage, history),
    # and the chat window stays open (this tab's sessionStorage).
    visitor.reload()
    expect(visitor.locator("#cart-count")).to_have_text("1")
    expect(visitor.locator("#chatserver-panel")).to_be_visible()
    expect(visitor.locator(".msg .b")).to_have_text(
        [
            "Hello, do you ship to Belgium?",
            draft,
            "Yes, in 2-3 days. And that image tag is just text here.",
        ]
    )
    expect(visitor.locator(".msg.them .meta")).to_contain_text("Anna (demo agent)")
    expect(visitor.locator(".sys", has_text="joined")).to_have_count(1)

    # The agent's page reloaded: the open tab comes back with its history.
    agent.reload()
    expect(agent.locator(".tab-open")).to_have_count(1)
    expect(pane.locator(".entry.visitor .body")).to_have_text(
        ["Hello, do you ship to Belgium?", draft]
    )

    # The checkout page shows the cart; emptied, its buttons go (`hidden` wins
    # over the row's `display: flex`) and the empty-cart line comes back.
    visitor.goto(f"{server.url}/demo/checkout")
    expect(visitor.locator("#cart-table")).to_be_visible()
    expect(visitor.locator("#cart-empty")).to_be_hidden()
    expect(visitor.locator("#cart-order")).to_be_visible()
    visitor.click("#cart-clear")
    expect(visitor.locator("#cart-count")).to_have_text("0")
    expect(visitor.locator("#cart-empty")).to_be_visible()
    for hidden in ("#cart-table", "#cart-actions", "#cart-clear", "#cart-order"):
        expect(visitor.locator(hidden)).to_be_hidden()

    # No markup from messages ever became elements, and nothing went wrong.
    expect(visitor.locator("chatserver-chat img")).to_have_count(0)
    expect(agent.locator(".workspace img")).to_have_count(0)
    shots = os.environ.get("CHATSERVER_SCREENSHOTS")
    if shots:
        visitor.screenshot(path=f"{shots}/demo-shop.png")
        agent.screenshot(path=f"{shots}/console.png")
    assert problems == []

"""The replay page's way-finding in Chromium (#21; static/replay-nav.js): the
events list and the transcript beside the player, the highlight as it plays,
the keys, and links to a moment.

One recording is stored through the real ingest (a visitor's ``rec`` frames,
rrweb-shaped events at known times) by a visitor who also chats, so every
time below is known: page "Home" at 0:00, a click at 0:08, page "Cart" at
0:16, the chat message at about 0:20, pointer moves every second to 0:39.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from ..conftest import Client, Server
from ..in_process.test_recordings import custom, meta, move
from .axe import serious
from .test_demo_browser import browser  # noqa: F401  (fixture)
from .test_recordings_replay_browser import demo, sign_in  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

HOME = "https://shop.example/"
CART = "https://shop.example/cart"


def page_snapshot(ts: float, text: str) -> dict[str, Any]:
    """A full snapshot of a tiny page (html, body, one paragraph)."""
    para = {
        "type": 2,
        "tagName": "p",
        "attributes": {},
        "childNodes": [{"type": 3, "textContent": text, "id": 6}],
        "id": 5,
    }
    body = {"type": 2, "tagName": "body", "attributes": {}, "childNodes": [para], "id": 4}
    html = {"type": 2, "tagName": "html", "attributes": {}, "childNodes": [body], "id": 3}
    doc = {
        "type": 0,
        "childNodes": [{"type": 1, "name": "html", "publicId": "", "systemId": "", "id": 2}, html],
        "id": 1,
    }
    return {
        "type": 2,
        "data": {"node": doc, "initialOffset": {"top": 0, "left": 0}},
        "timestamp": ts,
    }


async def _record_and_chat(server: Server, key: str) -> str:
    """A 40-second recording whose visitor writes once, 20 s in; its id."""
    visitor = await Client.visitor(server, key)
    rec = "nav_" + secrets.token_hex(6)
    t0 = time.time() * 1000.0 - 20_000
    events = [
        meta(t0, HOME),
        page_snapshot(t0, "Hello shop"),
        custom(t0 + 1, "page", url=HOME, title="Home"),
        custom(t0 + 8000, "click", selector="button.buy", text="Buy now"),
        custom(t0 + 16000, "page", url=CART, title="Cart"),
        *(move(t0 + 1000 * s + 500) for s in range(40)),
    ]
    try:
        reply = await visitor.request(
            {"t": "rec", "session": rec, "seq": 0, "events": events, "now": time.time() * 1000}
        )
        assert reply["t"] == "recorded", reply
        ack = await visitor.request({"t": "send", "cid": "m1", "body": "Where is my parcel?"})
        assert ack["t"] == "ack", ack
    finally:
        await visitor.close()
    return rec


def clock_at(page: Page, text: str) -> None:
    expect(page.locator("[data-clock]")).to_have_text(re.compile(rf"^{re.escape(text)} / 0:39$"))


def test_events_list_keys_highlight_and_links(
    demo: tuple[Server, str],  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    server, key = demo
    expect.set_options(timeout=10000)
    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        rec = pool.submit(lambda: asyncio.run(_record_and_chat(server, key))).result()
    ctx = browser.new_context()
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    try:
        page = ctx.new_page()
        sign_in(page, server)
        page.goto(f"{server.url}/console/sessions/{rec}")
        expect(page.locator("#replay[data-ready]")).to_have_count(1)
        clock_at(page, "0:00")

        # The events list: page views, the click, the chat message, in order, with times.
        rows = page.locator("[data-events] li")
        expect(rows).to_have_count(4)
        texts = [re.sub(r"\s+", " ", t).strip() for t in rows.all_text_contents()]
        assert texts[:3] == ["0:00 Page Home", "0:08 Click Buy now", "0:16 Page Cart"]
        assert re.fullmatch(r"0:(19|2\d) Chat .*: Where is my parcel\?", texts[3]), texts
        transcript = page.locator(".replay-transcript li")
        expect(transcript).to_have_count(1)
        expect(transcript).to_contain_text("Where is my parcel?")
        expect(page.locator("#replay-keys")).to_be_visible()
        expect(rows.nth(0)).to_have_attribute("aria-current", "true")

        # A row seeks there and becomes the current one.
        rows.nth(2).locator("button").click()
        clock_at(page, "0:16")
        expect(page.locator("[data-url]")).to_have_text(CART)
        expect(rows.nth(2)).to_have_class(re.compile(r"\bcurrent\b"))
        expect(page.locator("[data-events] li.current")).to_have_count(1)

        # Keys: arrows seek 5 s, with shift the previous/next event; space plays and pauses.
        page.locator("#replay-title").click()  # focus off the row's button
        page.keyboard.press("ArrowRight")
        clock_at(page, "0:21")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        clock_at(page, "0:11")
        page.keyboard.press("Shift+ArrowLeft")
        clock_at(page, "0:08")
        expect(rows.nth(1)).to_have_attribute("aria-current", "true")
        page.keyboard.press("Shift+ArrowRight")
        clock_at(page, "0:16")
        page.keyboard.press(" ")
        expect(page.locator("[data-state]")).to_have_text("Playing.")
        # As it plays, the chat message becomes the current event and transcript line.
        expect(rows.nth(3)).to_have_class(re.compile(r"\bcurrent\b"), timeout=15000)
        expect(transcript.first).to_have_class(re.compile(r"\bcurrent\b"))
        page.keyboard.press(" ")
        expect(page.locator("[data-state]")).to_have_text("Paused.")

        # Copy a link to this moment: it is shown, copied, and opens there.
        rows.nth(2).locator("button").click()
        clock_at(page, "0:16")
        page.click("[data-action=copy-link]")
        expect(page.locator("[data-link]")).to_have_text(re.compile(r"#t=16$"))
        link = page.locator("[data-link]").text_content() or ""
        assert link == f"{server.url}/console/sessions/{rec}#t=16"
        assert page.evaluate("navigator.clipboard.readText()") == link
        other = ctx.new_page()
        other.goto(link)
        clock_at(other, "0:16")
        expect(other.locator("[data-url]")).to_have_text(CART)
        other.goto(f"{server.url}/console/sessions/{rec}?t=8")
        clock_at(other, "0:08")
        other.evaluate("location.hash = 't=0:30'")  # a new #t= on the open page seeks too
        clock_at(other, "0:30")

        # axe on the page (injected as a script, so in a context that bypasses the
        # page's Content-Security-Policy), the events list and transcript included.
        checker_ctx = browser.new_context(bypass_csp=True)
        try:
            checker = checker_ctx.new_page()
            sign_in(checker, server)
            checker.goto(f"{server.url}/console/sessions/{rec}#t=16")
            clock_at(checker, "0:16")
            assert serious(checker, ".replay-side") == []
            assert serious(checker, ".replay-controls") == []
            assert serious(checker, "#replay-keys") == []
        finally:
            checker_ctx.close()
    finally:
        ctx.close()

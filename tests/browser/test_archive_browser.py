"""The conversation archive in Chromium: a recorded visitor asks about "envío"
(by the offline form: nobody is online),
an analyst finds the chat by searching "envio", opens it and jumps from the
message into the recorded session at that moment (archive/pages.py,
static/replay.js's ``?at=``), whose transcript links back.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from ..conftest import Server
from .test_cobrowse_browser import real_problems, wait_for
from .test_demo_browser import browser, watch  # noqa: F401  (fixtures)
from .test_recordings_replay_browser import demo, replay_body, sign_in  # noqa: F401

pytestmark = pytest.mark.browser

QUESTION = "¿Cuándo llega mi envío?"


def test_search_envio_and_jump_to_the_replay(
    demo: tuple[Server, str],  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    server, _key = demo
    expect.set_options(timeout=10000)
    problems: list[str] = []
    visitor_ctx = browser.new_context()
    analyst_ctx = browser.new_context()
    try:
        visitor = watch(visitor_ctx.new_page(), "visitor", problems)
        recs: list[str] = []
        visitor.on(
            "websocket",
            lambda ws: ws.on(
                "framesent",
                lambda p: recs.append(p) if isinstance(p, str) and '"t":"rec"' in p else None,
            ),
        )
        visitor.goto(f"{server.url}/demo/")
        wait_for(lambda: bool(recs), 20, "the first batch", pump=visitor)
        visitor.click("h2 a[href='/demo/product/canvas-bag']")
        expect(visitor.locator("h1")).to_have_text("Canvas tote bag")
        # Nobody is online: the widget offers the offline form, which starts the chat.
        visitor.click("chatserver-chat .bubble")
        visitor.get_by_label("Name").fill("María Pérez")
        visitor.get_by_label("Email").fill("maria@example.com")
        visitor.get_by_label("Your message").fill(QUESTION)
        visitor.get_by_role("button", name="Send message").click()
        sent = len(recs)
        visitor.wait_for_timeout(500)
        visitor.click("[data-add=canvas-bag]")  # something recorded after the message
        wait_for(lambda: len(recs) > sent, 30, "a batch after the message", pump=visitor)

        analyst = watch(analyst_ctx.new_page(), "analyst", problems)
        sign_in(analyst, server)
        analyst.click("nav >> text=Conversations")
        analyst.fill("input[name=q]", "envio")
        analyst.click("form[role=search] button[type=submit]")
        results = analyst.locator(".archive-results > li")

        def listed() -> bool:
            if results.count():
                return True
            analyst.reload()
            return False

        wait_for(listed, 10, "the conversation found")
        expect(results).to_have_count(1)
        expect(results.locator("mark")).to_have_text("envío")
        results.locator("a").first.click()
        expect(analyst.locator(".transcript .entry.visitor .body")).to_have_text([QUESTION])
        link = analyst.locator(".entry.visitor .replay-link")

        def linked() -> bool:
            if link.count():
                return True
            analyst.reload()
            return False

        wait_for(linked, 20, "the message's replay link", pump=visitor)
        link.click()
        expect(analyst.locator("#replay[data-ready]")).to_have_count(1)
        section = analyst.locator("#replay")
        start = float(section.get_attribute("data-start") or 0)
        at = re.search(r"[?&]at=(\d+)", analyst.url)
        assert at and abs(start - float(at.group(1))) < 1.0, (start, analyst.url)
        # At the moment of the message the visitor was on the product page.
        expect(analyst.locator("[data-url]")).to_have_text(f"{server.url}/demo/product/canvas-bag")
        wait_for(lambda: "Canvas tote bag" in replay_body(analyst), 10, "the product page")
        expect(analyst.locator(".replay-transcript .body")).to_contain_text([QUESTION])
        analyst.locator(".replay-transcript h2 a").click()
        expect(analyst.locator("h1")).to_contain_text("Conversation of")
        assert real_problems([p.replace("analyst:", "agent:") for p in problems]) == []
    finally:
        visitor_ctx.close()
        analyst_ctx.close()

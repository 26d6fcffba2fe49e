"""Consent (docs/privacy.md#consent), in real chromium.

With ``data-consent="required"`` on the script tag, the widget keeps nothing in
the browser's storage and records nothing until the page says the visitor
agreed; withdrawing stops the recording at once and takes our keys out of the
browser's storage; the visitor opening the chat is their own request, which
lets the chat keep its token, but still records nothing.
"""

from __future__ import annotations

import time

from playwright.sync_api import BrowserContext, Page, expect

from chatserver.types import SiteSettings

from ..conftest import Server
from .test_demo_browser import watch
from .test_widget_browser import ShopServer, make_shop

OURS = """() => [localStorage, sessionStorage].flatMap((area) =>
  Object.keys(area).filter((k) => k.startsWith("chatserver:")))"""


def consent_page(server: Server, key: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<link rel="icon" href="data:,"></head><body><h1>A shop</h1>
<script src="{server.url}/widget.js" data-site="{key}" data-consent="required" async></script>
</body></html>"""


def rec_frames(sent: list[str]) -> int:
    return sum('"t":"rec"' in frame for frame in sent)


def wait_until(page: Page, check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:  # type: ignore[operator]
        page.wait_for_timeout(50)
    assert check(), "condition not met in time"  # type: ignore[operator]


def test_nothing_stored_or_recorded_until_consent(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    settings = SiteSettings(recording=True, recording_sample=1.0)
    shop = make_shop(server, agents=1, settings=settings)
    problems: list[str] = []
    page = watch(context.new_page(), "consent", problems)
    sent: list[str] = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framesent", lambda p: sent.append(p if isinstance(p, str) else p.decode("latin-1"))
        ),
    )
    page.goto(shops.add("consent", consent_page(server, shop.key)))
    expect(page.locator("chatserver-chat .bubble")).to_be_visible()
    page.wait_for_timeout(1000)  # time for a recorder to start, were it allowed to
    assert page.evaluate(OURS) == []
    assert rec_frames(sent) == 0
    assert page.evaluate("typeof window.__chatserverRecorder") == "undefined"

    page.evaluate("$chat.push(['consent', true])")
    wait_until(page, lambda: rec_frames(sent) > 0)
    assert any(k.endswith(":token") for k in page.evaluate(OURS))

    page.evaluate("$chat.push(['consent', false])")
    assert page.evaluate(OURS) == []  # nothing of ours is left in the browser
    page.wait_for_timeout(800)  # what was recorded before may still be sent
    stopped = rec_frames(sent)
    # The visitor opens the chat: their request, so the chat keeps its token;
    # and clicks about: nothing of it is recorded (batches go every 3 s).
    page.click("chatserver-chat .bubble")
    expect(page.locator("#chatserver-panel")).to_be_visible()
    wait_until(page, lambda: any(k.endswith(":token") for k in page.evaluate(OURS)))
    page.mouse.move(40, 40)
    page.mouse.click(60, 60)
    page.wait_for_timeout(3500)
    assert rec_frames(sent) == stopped, "recording went on after the consent was withdrawn"
    assert problems == []

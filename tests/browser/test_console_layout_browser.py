"""#21: the console's layout at phone, laptop and desktop widths, in real chromium.

From 1280 px the list, the chat and the visitor panel stand side by side; below, the
panel is a drawer over the chat; at 375 px the list, the chat and the panel are three
screens with a way back. No console page scrolls sideways at 375, 1280 or 1920 px.
"""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from chatserver.types import Role, SiteSettings

from ..conftest import Server, Shop
from .test_console_browser import emails, new, sign_in
from .test_widget_browser import make_shop

pytestmark = pytest.mark.browser

# Every page of the console an admin can open without an id in its path.
PAGES = (
    "/console/",
    "/console/admin",
    "/console/admin/agents",
    "/console/admin/agents/new",
    "/console/admin/departments",
    "/console/admin/canned",
    "/console/admin/canned/new",
    "/console/admin/webhooks",
    "/console/admin/webhooks/new",
    "/console/admin/site",
    "/console/admin/privacy",
    "/console/admin/audit",
    "/console/admin/api-keys",
    "/console/admin/mail",
    "/console/triggers",
    "/console/triggers/new",
    "/console/triggers/hours",
    "/console/sessions",
    "/console/reports",
    "/console/conversations",
    "/console/mail",
)
OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"
# The outermost elements that stick out on the right, for a message that says what to fix.
CULPRITS = """() => {
  const out = (e) => e.getBoundingClientRect().right > innerWidth + 0.5;
  const clipped = (e) => { for (let p = e.parentElement; p; p = p.parentElement)
    if (getComputedStyle(p).overflowX !== "visible") return true; return false; };
  return [...document.querySelectorAll("body *")]
    .filter((e) => out(e) && !(e.parentElement && out(e.parentElement)) && !clipped(e))
    .slice(0, 3).map((e) => e.tagName.toLowerCase() + (e.className ? "." + e.className : ""));
}"""


def offline_message(server: Server, shop: Shop, name: str, body: str) -> None:
    """A visitor leaves a message through the offline form (the chat stays queued)."""
    with connect(
        server.ws_url, subprotocols=[Subprotocol("chatserver.json")], compression=None
    ) as ws:
        ws.send(json.dumps({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key}))
        form = {"name": name, "email": "ann@example.com", "body": body}
        ws.send(json.dumps({"t": "offline", "id": 1, "cid": "o1", **form}))
        deadline = time.monotonic() + 10
        while json.loads(ws.recv(timeout=5)).get("t") != "ack":
            assert time.monotonic() < deadline


def admin_with_a_chat(server: Server) -> Shop:
    shop = make_shop(
        server, agents=1, roles={0: Role.ADMIN}, settings=SiteSettings(routing="manual")
    )
    offline_message(server, shop, "Ann Example", "Do you ship to Norway?")
    return shop


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


def test_no_console_page_scrolls_sideways(
    server: Server, chromium: Browser, contexts: list[BrowserContext], problems: list[str]
) -> None:
    shop = admin_with_a_chat(server)
    page = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    wide: dict[str, str] = {}
    for path in PAGES:  # each page once, measured at each width (a resize lays it out again)
        page.goto(f"{server.url}{path}")
        for width, height in ((375, 740), (1280, 800), (1920, 1080)):
            page.set_viewport_size({"width": width, "height": height})
            over = page.evaluate(OVERFLOW)
            if over > 0:
                wide[f"{path} at {width}"] = f"{over} px: {page.evaluate(CULPRITS)}"
    assert wide == {}, f"pages wider than the window: {wide}"


def test_list_chat_and_visitor_side_by_side_from_1280(
    server: Server, chromium: Browser, contexts: list[BrowserContext], problems: list[str]
) -> None:
    shop = admin_with_a_chat(server)
    page = sign_in(
        new(contexts, chromium, viewport={"width": 1280, "height": 800}),
        server,
        emails(shop)[0],
        problems,
    )
    page.locator(".conv-item").filter(has_text="Do you ship").click()
    expect(page.locator("#visitor-panel h2")).to_contain_text("Ann Example")
    side, work, panel = box(page, ".side"), box(page, ".work"), box(page, "#visitor-panel")
    assert side["x"] + side["width"] <= work["x"] + 1
    assert work["x"] + work["width"] <= panel["x"] + 1
    assert abs(panel["y"] - work["y"]) < 1 and work["width"] >= 600
    expect(page.locator("#visitor-toggle")).to_be_hidden()  # nothing to toggle

    # Narrower: the panel is a drawer the agent opens over the chat, and closes.
    page.set_viewport_size({"width": 1024, "height": 768})
    expect(page.locator("#visitor-panel")).to_be_hidden()
    assert box(page, ".work")["x"] + box(page, ".work")["width"] <= 1024
    toggle = page.locator("#visitor-toggle")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(page.locator("#visitor-panel")).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#visitor-close")).to_be_focused()
    drawer = box(page, "#visitor-panel")
    assert drawer["x"] + drawer["width"] <= 1024 + 1 and drawer["x"] > 500
    page.keyboard.press("Escape")
    expect(page.locator("#visitor-panel")).to_be_hidden()
    expect(toggle).to_be_focused()


def test_a_phone_gets_list_chat_and_visitor_as_screens(
    server: Server, chromium: Browser, contexts: list[BrowserContext], problems: list[str]
) -> None:
    shop = admin_with_a_chat(server)
    page = sign_in(
        new(contexts, chromium, viewport={"width": 375, "height": 740}, has_touch=True),
        server,
        emails(shop)[0],
        problems,
    )
    side, work, panel = page.locator(".side"), page.locator(".work"), page.locator("#visitor-panel")
    expect(side).to_be_visible()
    expect(work).to_be_hidden()
    page.locator(".conv-item").filter(has_text="Do you ship").click()
    expect(work).to_be_visible()
    expect(side).to_be_hidden()
    expect(panel).to_be_hidden()
    expect(page.locator(".pane:not([hidden]) .entry .body").first).to_be_visible()
    composer = page.locator(".pane:not([hidden]) .pane-head")
    assert box(page, ".pane:not([hidden]) .pane-head")["width"] <= 375
    expect(composer).to_be_visible()
    page.locator("#visitor-toggle").click()
    expect(panel).to_be_visible()
    expect(work).to_be_hidden()
    expect(panel.locator("h2")).to_contain_text("Ann Example")
    assert box(page, "#visitor-panel")["width"] <= 375
    page.locator("#visitor-close").click()
    expect(work).to_be_visible()
    expect(panel).to_be_hidden()
    page.locator("#back").click()
    expect(side).to_be_visible()
    expect(work).to_be_hidden()
    assert page.evaluate(OVERFLOW) <= 0

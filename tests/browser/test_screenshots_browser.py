"""The screenshots in the docs (docs/img/), taken from a real chat in real chromium.

CI runs this test (it checks the scene it photographs); the PNGs are written into
``docs/img/`` only with ``CHATSERVER_SCREENSHOTS=1``, so a test run leaves the tree
clean. Refresh them after a visible change:

    CHATSERVER_SCREENSHOTS=1 .venv/bin/python -m pytest -q tests/browser/test_screenshots_browser.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from chatserver.types import Role

from ..conftest import Server
from .test_console_browser import SHOP_SCRIPT, SHOWN, emails, new, sign_in
from .test_demo_browser import watch
from .test_widget_browser import ShopServer, make_shop

pytestmark = pytest.mark.browser

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
MAX_BYTES = 150 * 1024


def shop_html(server: Server, key: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Linen shirts</title><link rel="icon" href="data:,">{SHOP_SCRIPT}
<style>body {{ font: 16px system-ui, sans-serif; margin: 0; color: #1f2937; }}
header {{ padding: 18px 32px; background: #f5efe6; font-weight: 700; font-size: 20px; }}
main {{ padding: 24px 32px; max-width: 560px; }} .price {{ font-size: 22px; color: #7c2d12; }}
.swatch {{ width: 220px; height: 160px; border-radius: 12px; background: #c7d2fe; }}</style></head>
<body><header>Atelier Lin</header><main><h1>Linen shirt, sky blue</h1>
<div class="swatch"></div><p class="price">€59.90</p>
<p>Washed linen, relaxed fit. Sizes S to XL.</p></main>
<script src="{server.url}/widget.js" data-site="{key}" async></script></body></html>"""


def shoot(page: Page, name: str, out: Path) -> Path:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    size = path.stat().st_size
    assert 1000 < size < MAX_BYTES, f"{name}.png is {size} bytes"
    return path


def test_screenshots_of_the_widget_and_the_console(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
    tmp_path: Path,
) -> None:
    out = DOCS_IMG if os.environ.get("CHATSERVER_SCREENSHOTS") == "1" else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    shop = make_shop(server, agents=1, roles={0: Role.ADMIN})
    url = shops.add(f"shots-{shop.site.id}", shop_html(server, shop.key))
    visitor = watch(
        new(contexts, chromium, viewport={"width": 900, "height": 640}).new_page(),
        "visitor",
        problems,
    )
    visitor.goto(url)
    agent = sign_in(
        new(contexts, chromium, viewport={"width": 1280, "height": 760}),
        server,
        emails(shop)[0],
        problems,
    )
    visitor.click("chatserver-chat .bubble")
    box = visitor.locator("#chatserver-input")
    box.fill("Hi! Is the sky blue shirt available in M?")
    box.press("Enter")
    item = agent.locator("#list-mine .conv-item").filter(has_text="Ann Smith")
    item.click()
    pane = agent.locator(SHOWN)
    reply = pane.locator(".reply")
    reply.fill("Hello Ann! Yes, M is in stock: it ships today.")
    reply.press("Enter")
    expect(visitor.locator(".msg .b").last).to_have_text(
        "Hello Ann! Yes, M is in stock: it ships today."
    )
    box.fill("Perfect, thank you!")
    box.press("Enter")
    expect(pane.locator(".entry.visitor .body").last).to_have_text("Perfect, thank you!")
    expect(agent.locator("#visitor-panel .cart-total")).to_be_visible()
    shots = [shoot(visitor, "widget-open", out)]

    theme = agent.locator("select#theme")
    for scheme in ("light", "dark"):
        agent.set_viewport_size({"width": 1280, "height": 760})
        theme.select_option(scheme)
        expect(agent.locator("html")).to_have_attribute("data-theme", scheme)
        expect(agent.locator("#visitor-panel")).to_be_visible()  # side by side at 1280
        shots.append(shoot(agent, f"console-1280-{scheme}", out))
        agent.set_viewport_size({"width": 375, "height": 740})
        expect(agent.locator(".side")).to_be_hidden()  # the conversation's screen
        expect(pane.locator(".entry.agent .body").last).to_be_visible()
        shots.append(shoot(agent, f"console-375-{scheme}", out))
    assert [p.name for p in shots] == [
        "widget-open.png",
        "console-1280-light.png",
        "console-375-light.png",
        "console-1280-dark.png",
        "console-375-dark.png",
    ]

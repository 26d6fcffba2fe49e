"""#21: the widget's theme (`data-theme="light|dark|auto"` on the script tag,
widget/src/view/styles.js) in real chromium: light unless the shop asks,
dark when it does, and with `auto` the visitor's system setting; in dark,
readable text on the brand colour and no serious axe violation (closed, the
offline form, chatting, the rating)."""

from __future__ import annotations

from typing import Literal

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from chatserver.types import SiteSettings

from ..conftest import Server
from .axe import AXE, serious
from .contrast import widget_contrast
from .test_demo_browser import watch
from .test_widget_browser import Agent, ShopServer, make_shop, shop_page

LIGHT = "rgb(255, 255, 255)"
DARK = "rgb(31, 41, 55)"


def themed_page(server: Server, key: str, theme: str | None) -> str:
    """The shop's page with the one script tag, with ``data-theme`` when given."""
    page = shop_page(server, key)
    return page.replace(" data-site=", f' data-theme="{theme}" data-site=') if theme else page


def panel_background(page: Page) -> str:
    return str(
        page.evaluate(
            "getComputedStyle(document.querySelector('chatserver-chat').shadowRoot"
            ".querySelector('.panel')).backgroundColor"
        )
    )


def open_chat(page: Page) -> None:
    page.click("chatserver-chat .bubble")
    expect(page.locator("chatserver-chat .panel")).to_be_visible()


@pytest.mark.parametrize(
    ("theme", "system", "want"),
    [
        (None, "dark", LIGHT),  # existing shops do not change, whatever the system says
        ("light", "dark", LIGHT),
        ("dark", "light", DARK),
        ("auto", "dark", DARK),
        ("auto", "light", LIGHT),
    ],
)
def test_the_theme_follows_the_shops_choice(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    theme: str | None,
    system: Literal["dark", "light"],
    want: str,
) -> None:
    shop = make_shop(server, agents=1)
    ctx = chromium.new_context(color_scheme=system)
    try:
        problems: list[str] = []
        page = watch(ctx.new_page(), "theme", problems)
        page.goto(shops.add(f"theme-{theme}-{system}", themed_page(server, shop.key, theme)))
        open_chat(page)
        assert panel_background(page) == want
        if theme == "auto":  # the system changes its mind: the open window follows
            page.emulate_media(color_scheme="light" if system == "dark" else "dark")
            assert panel_background(page) == (LIGHT if want == DARK else DARK)
        assert problems == []
    finally:
        ctx.close()


@pytest.mark.parametrize("color", ["#2563eb", "#facc15", "#111827"])
def test_dark_is_readable_and_passes_axe(
    server: Server, shops: ShopServer, context: BrowserContext, color: str
) -> None:
    assert AXE.exists(), "axe-core comes with widget/package-lock.json: run scripts/setup"
    shop = make_shop(server, agents=1, settings=SiteSettings(color=color))
    seen: list[str] = []
    page = watch(context.new_page(), "dark", seen)
    page.goto(shops.add(f"dark-{color[1:]}", themed_page(server, shop.key, "dark")))
    expect(page.locator("chatserver-chat .bubble")).to_be_visible()
    assert widget_contrast(page, ".bubble") >= 3, color
    assert serious(page, ["chatserver-chat"]) == []  # closed
    open_chat(page)
    expect(page.locator("form.offline")).to_be_visible()  # nobody online: the offline form
    assert panel_background(page) == DARK
    assert serious(page, ["chatserver-chat"]) == []
    agent = Agent(server, next(iter(shop.agents)))
    page.reload()
    box = page.locator("#chatserver-input")
    expect(box).to_be_visible()
    box.fill("Hello")
    box.press("Enter")
    conv = agent.assigned()
    agent.request({"t": "send", "conv": conv, "cid": "a1", "body": "Hi! See https://example.com"})
    expect(page.locator(".msg .b").last).to_contain_text("Hi! See")
    assert widget_contrast(page, ".head") >= 4.5, color  # the title on the brand colour
    assert widget_contrast(page, ".msg.me .b") >= 4.5, color
    assert widget_contrast(page, ".msg:not(.me) .b") >= 4.5
    assert widget_contrast(page, ".status") >= 4.5
    assert serious(page, ["chatserver-chat"]) == []  # open, chatting
    agent.request({"t": "close", "conv": conv})
    expect(page.locator(".csat")).to_be_visible()
    assert serious(page, ["chatserver-chat"]) == []  # the rating
    agent.close()
    assert seen == []

"""#21: emoji in both composers, in real chromium against a real server.

Shortcodes (``:wave:`` → 👋) are replaced as they are typed, in the widget
(whose emoji bundle is loaded only when first wanted) and in the console; the
pickers work with the keyboard; what is sent is plain text with the emoji in it.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from ..conftest import Server
from .axe import serious
from .test_console_browser import SHOWN, emails, new, server, sign_in  # noqa: F401
from .test_demo_browser import watch
from .test_widget_browser import ShopServer, make_shop, shop_page

pytestmark = pytest.mark.browser


def test_shortcodes_and_pickers_in_the_widget_and_the_console(
    server: Server,  # noqa: F811
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    shop = make_shop(server, agents=1)
    agent = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    visitor = watch(new(contexts, chromium).new_page(), "visitor", problems)
    bundles: list[str] = []
    visitor.on("request", lambda r: bundles.append(r.url) if "/widget/emoji." in r.url else None)
    visitor.goto(shops.add(f"emoji-{shop.site.id}", shop_page(server, shop.key)))
    visitor.click("chatserver-chat .bubble")
    box = visitor.locator("#chatserver-input")
    expect(box).to_be_focused()
    assert bundles == []  # not with the chat: only when wanted

    # The widget: replaced as typed (not inside "10:30:", not an unknown code).
    box.press_sequentially("Hi :wave: at 10:30: :nope: ok")
    expect(box).to_have_value("Hi 👋 at 10:30: :nope: ok")
    assert len(bundles) == 1
    box.press("Enter")
    expect(visitor.locator(".msg.me .b").last).to_have_text("Hi 👋 at 10:30: :nope: ok")

    # The widget's picker, by keyboard: arrows move, Escape goes back, Enter picks.
    toggle = visitor.locator("chatserver-chat .cf button[aria-label=Emoji]")
    grid = visitor.locator("#chatserver-emoji")
    cells = grid.locator("button")
    expect(grid).to_be_hidden()
    toggle.click()
    expect(grid).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(cells).to_have_count(64)
    expect(cells.first).to_be_focused()
    assert serious(visitor, ["chatserver-chat"]) == []  # the picker open
    visitor.keyboard.press("ArrowRight")
    visitor.keyboard.press("ArrowDown")
    expect(cells.nth(9)).to_be_focused()
    visitor.keyboard.press("Escape")
    expect(grid).to_be_hidden()
    expect(toggle).to_be_focused()
    visitor.keyboard.press("Enter")
    expect(cells.nth(9)).to_be_focused()  # where the visitor left it
    visitor.keyboard.press("Enter")
    expect(grid).to_be_hidden()
    expect(box).to_be_focused()
    expect(box).to_have_value("😍")
    box.press("Enter")
    assert len(bundles) == 1  # loaded once

    # The console: the visitor's text as sent; shortcodes and the picker in the reply box.
    expect(agent.locator("#list-mine .conv-item")).to_have_count(1)
    agent.keyboard.press("Alt+ArrowDown")
    visitor_says = agent.locator(f"{SHOWN} .entry.visitor .body")
    expect(visitor_says).to_have_text(["Hi 👋 at 10:30: :nope: ok", "😍"])
    reply = agent.locator(f"{SHOWN} textarea.reply")
    expect(reply).to_be_enabled()
    reply.press_sequentially(":+1: thanks :tada:")
    expect(reply).to_have_value("👍 thanks 🎉")
    picker = agent.locator(f"{SHOWN} .emoji-toggle")
    agent_grid = agent.locator(f"{SHOWN} .emoji-grid")
    picker.click()
    expect(agent_grid).to_be_visible()
    expect(agent_grid.locator("button").first).to_be_focused()
    agent.keyboard.press("ArrowRight")
    expect(agent_grid.locator("button").nth(1)).to_be_focused()
    agent.keyboard.press("Enter")
    expect(agent_grid).to_be_hidden()
    expect(reply).to_be_focused()
    expect(reply).to_have_value("👍 thanks 🎉😁")
    reply.press("Enter")
    expect(visitor.locator(".msg.them .b").last).to_have_text("👍 thanks 🎉😁")
    assert problems == []

"""The widget's "Read" (seen by the agent) survives a page reload, in real chromium.

Reuses the fixtures of ``test_widget_browser``: the shop page on its own
origin, the agent as a protocol client (docs/read-receipts.md).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, expect

from .conftest import Server
from .test_demo_browser import watch
from .test_widget_browser import (  # noqa: F401  (chromium, context, shops are fixtures)
    Agent,
    ShopServer,
    chromium,
    context,
    make_shop,
    shop_page,
    shops,
)

pytestmark = pytest.mark.browser


def test_seen_survives_a_reload(
    server: Server,
    shops: ShopServer,  # noqa: F811
    context: BrowserContext,  # noqa: F811
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    problems: list[str] = []
    page = watch(context.new_page(), "visitor", problems)
    page.goto(shops.add("seen", shop_page(server, shop.key)))
    page.click("chatserver-chat .bubble")
    box = page.locator("#chatserver-input")
    box.fill("Do you ship to Spain?")
    box.press("Enter")
    conv = agent.assigned()
    mine = page.locator(".msg.me .meta").last
    expect(mine).to_contain_text("Sent")

    # The agent reads the visitor's message: "Read", live.
    history = agent.request({"t": "history", "conv": conv, "since": 0})["messages"]
    (offset,) = [m["offset"] for m in history if m["body"] == "Do you ship to Spain?"]
    agent.send({"t": "read", "conv": conv, "offset": offset})
    expect(mine).to_contain_text("Read")

    # After a reload nobody sends a read again: the follow start's markers restore it.
    page.reload()
    expect(page.locator("#chatserver-panel")).to_be_visible()
    expect(page.locator(".msg.me .b")).to_have_text(["Do you ship to Spain?"])
    expect(page.locator(".msg.me .meta").last).to_contain_text("Read")
    agent_reads = [f for f in agent.frames[:] if f["t"] == "read" and f["by"]["kind"] == "agent"]
    assert len(agent_reads) == 1  # the one before the reload: no live event restored it

    # And a message after the reload is "Sent" until the agent reads it.
    box = page.locator("#chatserver-input")
    box.fill("And to Portugal?")
    box.press("Enter")
    expect(page.locator(".msg.me .meta").last).to_contain_text("Sent")
    agent.close()
    assert problems == []

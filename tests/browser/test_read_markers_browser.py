"""Read markers survive a reload, in real chromium (docs/read-receipts.md).

The widget's "Read" (seen by the agent) and the console's unread counts come
back from the follow-start frame's markers. Reuses the fixtures of
``test_widget_browser`` and ``test_console_browser``: shop pages on their own
origin, agents as protocol clients or signed-in console pages.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from ..conftest import Server
from .test_console_browser import new, sign_in, visitor_writes
from .test_demo_browser import watch
from .test_widget_browser import Agent, ShopServer, make_shop, shop_page

pytestmark = pytest.mark.browser


def test_seen_survives_a_reload(
    server: Server,
    shops: ShopServer,
    context: BrowserContext,
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    errors: list[str] = []
    page = watch(context.new_page(), "visitor", errors)
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
    assert errors == []


def test_console_unread_counts_follow_the_agent_to_another_browser(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    shop = make_shop(server, agents=1)
    (email,) = shop.agents
    first = sign_in(new(contexts, chromium), server, email, problems)
    url = shops.add(f"unread-{shop.site.id}", shop_page(server, shop.key))
    visitor = visitor_writes(new(contexts, chromium), url, "Where is my order?", problems)
    item = first.locator("#list-mine .conv-item")
    expect(item.locator(".unread")).to_have_text("1")
    item.click()  # shown: read, and the server gets the marker
    expect(item.locator(".unread")).to_have_count(0)
    expect(visitor.locator(".msg.me .meta").last).to_contain_text("Read")

    # Another browser (nothing in its localStorage): the server's marker says it was read.
    second = sign_in(new(contexts, chromium), server, email, problems)
    item = second.locator("#list-mine .conv-item")
    expect(item.locator(".last")).to_have_text("Where is my order?")  # its entries are loaded
    expect(item.locator(".unread")).to_have_count(0)
    expect(second).to_have_title(re.compile(r"^Chats"))

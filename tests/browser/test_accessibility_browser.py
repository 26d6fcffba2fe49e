"""#21: axe-core finds no serious or critical violation on the widget (closed, open,
the offline form, the rating), the agents' workspace, the admin pages and the
reports page, in real chromium."""

from __future__ import annotations

from typing import Literal

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from chatserver.types import Role, SiteSettings

from ..conftest import Server
from .axe import AXE, serious
from .test_console_browser import contexts, emails, new, problems, sign_in  # noqa: F401
from .test_console_layout_browser import offline_message
from .test_demo_browser import watch
from .test_widget_browser import Agent, ShopServer, make_shop, shop_page


@pytest.fixture(autouse=True)
def installed() -> None:
    assert AXE.exists(), "axe-core comes with widget/package-lock.json: run scripts/setup"


def test_the_widget_has_no_serious_violation(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    shop = make_shop(server, agents=1)
    seen: list[str] = []
    page = watch(context.new_page(), "axe-widget", seen)
    page.goto(shops.add("axe-widget", shop_page(server, shop.key)))
    expect(page.locator("chatserver-chat .bubble")).to_be_visible()
    assert serious(page, ["chatserver-chat"]) == []  # closed
    page.click("chatserver-chat .bubble")
    expect(page.locator("form.offline")).to_be_visible()  # nobody online: the offline form
    assert serious(page, ["chatserver-chat"]) == []
    agent = Agent(server, next(iter(shop.agents)))
    page.reload()  # the window stays open across the reload
    box = page.locator("#chatserver-input")
    expect(box).to_be_visible()
    box.fill("Hello")
    box.press("Enter")
    conv = agent.assigned()
    agent.request({"t": "send", "conv": conv, "cid": "a1", "body": "Hi! How can I help?"})
    expect(page.locator(".msg .b").last).to_have_text("Hi! How can I help?")
    assert serious(page, ["chatserver-chat"]) == []  # open, chatting
    agent.request({"t": "close", "conv": conv})
    expect(page.locator(".csat")).to_be_visible()
    assert serious(page, ["chatserver-chat"]) == []  # the rating
    agent.close()
    assert seen == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_console_has_no_serious_violation(
    server: Server,
    chromium: Browser,
    contexts: list[BrowserContext],  # noqa: F811
    problems: list[str],  # noqa: F811
    scheme: Literal["light", "dark"],
) -> None:
    """In the system's light and dark schemes (the console follows it), with a
    conversation open: the list, the pane, the visitor panel and the avatars."""
    shop = make_shop(
        server, agents=1, roles={0: Role.ADMIN}, settings=SiteSettings(routing="manual")
    )
    offline_message(server, shop, "Ann Example", "Do you ship to Norway?")
    # axe is injected as a script: the console's Content-Security-Policy would refuse it.
    ctx = new(contexts, chromium, bypass_csp=True, color_scheme=scheme)
    page = sign_in(ctx, server, emails(shop)[0], problems)
    page.locator(".conv-item").filter(has_text="Do you ship").click()
    expect(page.locator("#visitor-panel h2")).to_contain_text("Ann Example")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (background == "rgb(243, 244, 246)") == (scheme == "light"), background
    found = {"/console/": serious(page)}
    for path in (
        "/console/admin",
        "/console/admin/agents",
        "/console/admin/site",
        "/console/admin/canned",
        "/console/admin/privacy",
        "/console/admin/audit",
        "/console/admin/webhooks",
        "/console/admin/webhooks/new",
        "/console/admin/api-keys",
        "/console/triggers",
        "/console/sessions",
        "/console/reports",
        "/console/conversations",
        "/console/profile",
        "/console/mail",
    ):
        page.goto(f"{server.url}{path}")
        found[path] = serious(page)
    bad = {k: v for k, v in found.items() if v}
    assert not bad, "\n".join(f"{k}: {v}" for k, v in bad.items())

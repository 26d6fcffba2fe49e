"""Proactive triggers on the demo shop, in a real browser against a real server.

Each test gets its own server with the demo site (``demo`` of
``test_demo_browser``).  Rules are written through the console, as an admin
would: over HTTP for the setup, and once through the form in the browser.
The visitor is Debian's chromium on the demo shop with the real widget; the
shop tells the chat about the cart with the widget's API (``["set", ...]``).
What the visitor was sent is read back from the server with a protocol
client (the demo agent).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from chatserver.web.demo import DEMO_ADMIN_EMAIL, DEMO_EMAIL

from ..conftest import Server, csrf_of
from .test_demo_browser import browser, demo, watch  # noqa: F401  (fixtures)
from .test_widget_browser import Agent

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GREETING = "Free shipping on orders over 50 today!"
CHECKOUT_RULE = {
    "name": "Checkout help",
    "enabled": "on",
    "match": "all",
    "c0_kind": "url",
    "c0_op": "contains",
    "c0_value": "/demo/checkout",
    "c1_kind": "time_on_page",
    "c1_op": ">=",
    "c1_value": "3",
    "c2_kind": "attribute",
    "c2_path": "cart.total",
    "c2_op": ">=",
    "c2_value": "50",
    "a0_type": "message",
    "a0_body": GREETING,
    "a0_as": "shop",
    "frequency": "visit",
    "gap": "600",
}


class Console:
    """The demo admin on the console over HTTP (httpx, with its session cookie)."""

    def __init__(self, server: Server, password: str) -> None:
        self.http = httpx.Client(base_url=server.url)
        page = self.http.get("/console/login")
        r = self.http.post(
            "/console/login",
            data={"email": DEMO_ADMIN_EMAIL, "password": password, "csrf": csrf_of(page.text)},
            headers=self.origin,
        )
        assert r.status_code == 303, r.text

    @property
    def origin(self) -> dict[str, str]:
        return {"Origin": str(self.http.base_url).rstrip("/")}

    def post(self, path: str, data: dict[str, Any]) -> httpx.Response:
        csrf = csrf_of(self.http.get("/console/triggers").text)
        return self.http.post(path, data={**data, "csrf": csrf}, headers=self.origin)

    def rule(self, form: dict[str, Any]) -> None:
        assert self.post("/console/triggers/new", form).status_code == 303

    def counters(self) -> list[tuple[str, int, int]]:
        """(name, fired, chats) per rule, from the list page."""
        html = self.http.get("/console/triggers").text
        return [
            (name, int(fired), int(chats))
            for name, fired, chats in re.findall(
                r'class="trg-name">([^<]*)</a>.*?trg-fired">(\d+)<.*?trg-chats">(\d+)<', html, re.S
            )
        ]

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def console(demo: tuple[Server, dict[str, str]]) -> Iterator[Console]:  # noqa: F811
    server, logins = demo
    c = Console(server, logins[DEMO_ADMIN_EMAIL])
    yield c
    c.close()


@pytest.fixture
def agent(demo: tuple[Server, dict[str, str]]) -> Iterator[Agent]:  # noqa: F811
    server, logins = demo
    a = Agent(server, DEMO_EMAIL, logins[DEMO_EMAIL])
    # Away: the test reads what visitors were sent without taking their chats.
    assert a.request({"t": "status", "status": "away"})["t"] == "ok"
    yield a
    a.close()


def set_cart(page: Page, total: float, items: int = 2) -> None:
    """What a shop does with the widget's API: tell the chat about the cart."""
    page.evaluate(
        "([items, total]) => (window.$chat = window.$chat || [])"
        ".push(['set', {cart: {items, total, currency: 'EUR'}}])",
        [items, total],
    )


def greetings(agent: Agent) -> list[dict[str, Any]]:
    """Every proactive message the site's visitors were sent, from the server."""
    found = []
    listed = agent.request({"t": "visitors"})
    seen: set[str] = set()
    for f in list(agent.frames):
        if f.get("t") == "conv" and f["conv"]["id"] not in seen:
            seen.add(f["conv"]["id"])
            for m in agent.request({"t": "history", "conv": f["conv"]["id"], "since": 0})[
                "messages"
            ]:
                if m["kind"] == "text" and m.get("data", {}).get("auto"):
                    found.append(m)
    assert listed["t"] == "visitors"
    return found


def widget_ready(page: Page) -> None:
    expect(page.locator("chatserver-chat .bubble")).to_be_visible(timeout=10_000)


def stays_quiet(page: Page, seconds: float) -> None:
    """No preview and no open window for ``seconds`` (polled, not slept blind)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert page.locator("chatserver-chat .teaser").is_hidden()
        assert page.locator("chatserver-chat .panel").is_hidden()
        page.wait_for_timeout(250)


def test_checkout_greeting_once_per_visit(
    demo: tuple[Server, dict[str, str]],  # noqa: F811
    browser: Browser,  # noqa: F811
    console: Console,
    agent: Agent,
) -> None:
    server, _ = demo
    console.rule(CHECKOUT_RULE)
    problems: list[str] = []
    context = browser.new_context()
    page = watch(context.new_page(), "visitor", problems)
    started = time.monotonic()
    page.goto(f"{server.url}/demo/checkout")
    widget_ready(page)
    set_cart(page, 60)
    teaser = page.locator("chatserver-chat .teaser")
    expect(teaser).to_be_visible(timeout=15_000)
    assert time.monotonic() - started >= 3.0  # not before three seconds on the page
    expect(teaser).to_contain_text(GREETING)
    expect(teaser).to_contain_text("Demo shop")  # sent as the shop
    # The agent side: one conversation, tagged, the message marked automatic.
    conv = agent.expect("conv", lambda f: "proactive" in f["conv"].get("tags", []))["conv"]
    assert conv["state"] == "queued" and conv["agents"] == []
    (sent,) = greetings(agent)
    assert sent["body"] == GREETING and sent["data"]["auto"]["name"] == "Checkout help"

    # Clicking the preview opens the chat with the message in it.
    teaser.click()
    expect(page.locator("chatserver-chat .panel")).to_be_visible()
    expect(page.locator("chatserver-chat .msg.them")).to_have_count(1)
    expect(teaser).to_be_hidden()

    # A reload in the same visit: the same conversation, no second greeting.
    page.reload()
    widget_ready(page)
    set_cart(page, 60)
    page.wait_for_timeout(5000)
    expect(page.locator("chatserver-chat .msg.them")).to_have_count(1)
    assert len(greetings(agent)) == 1
    assert console.counters() == [("Checkout help", 1, 0)]

    # The visitor answers: now the chat is routed (an agent online takes it).
    assert agent.request({"t": "status", "status": "online"})["t"] == "ok"
    page.locator("#chatserver-input").fill("Do you ship to Spain?")
    page.locator("#chatserver-input").press("Enter")
    agent.expect("conv", lambda f: f["conv"]["id"] == conv["id"] and f["conv"]["agents"] != [])
    deadline = time.monotonic() + 5
    while console.counters() != [("Checkout help", 1, 1)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert console.counters() == [("Checkout help", 1, 1)]
    context.close()
    assert not problems, problems


def test_other_pages_and_smaller_carts_get_nothing(
    demo: tuple[Server, dict[str, str]],  # noqa: F811
    browser: Browser,  # noqa: F811
    console: Console,
    agent: Agent,
) -> None:
    server, _ = demo
    console.rule(CHECKOUT_RULE)
    problems: list[str] = []
    contexts: list[BrowserContext] = [browser.new_context(), browser.new_context()]
    home = watch(contexts[0].new_page(), "home", problems)
    home.goto(f"{server.url}/demo/")
    small = watch(contexts[1].new_page(), "small", problems)
    small.goto(f"{server.url}/demo/checkout")
    for page, total in ((home, 60), (small, 40)):
        widget_ready(page)
        set_cart(page, total)
    stays_quiet(small, 6)
    stays_quiet(home, 0.5)
    assert greetings(agent) == []
    assert console.counters() == [("Checkout help", 0, 0)]
    for ctx in contexts:
        ctx.close()
    assert not problems, problems


def test_business_hours_rule_stays_silent_outside_them(
    demo: tuple[Server, dict[str, str]],  # noqa: F811
    browser: Browser,  # noqa: F811
    console: Console,
    agent: Agent,
) -> None:
    server, _ = demo
    # Open one hour a day, starting two hours from now (UTC): closed now.
    hour = time.gmtime(time.time() + 7200).tm_hour
    span = f"{hour:02d}:00-{hour + 1:02d}:00" if hour < 23 else "23:00-24:00"
    days = {d: span for d in ("monday", "tuesday", "wednesday", "thursday", "friday")}
    days |= {"saturday": span, "sunday": span}
    r = console.post("/console/triggers/hours", {"timezone": "UTC", **days})
    assert r.status_code == 200 and "closed" in r.text
    rule = {
        **CHECKOUT_RULE,
        "name": "Only when open",
        "c1_value": "1",
        "c3_kind": "business_hours",
        "c3_op": "is",
        "c3_value": "yes",
    }
    console.rule(rule)
    problems: list[str] = []
    context = browser.new_context()
    page = watch(context.new_page(), "visitor", problems)
    page.goto(f"{server.url}/demo/checkout")
    widget_ready(page)
    set_cart(page, 60)
    stays_quiet(page, 5)
    assert greetings(agent) == []
    assert console.counters() == [("Only when open", 0, 0)]
    # The same rule without the hours condition fires: the silence was the hours.
    r = console.post("/console/triggers/hours", {"clear": "1"})
    assert "open all the time" in r.text
    page.reload()
    widget_ready(page)
    set_cart(page, 60)
    expect(page.locator("chatserver-chat .teaser")).to_be_visible(timeout=10_000)
    context.close()
    assert not problems, problems


def test_admin_writes_the_rule_in_the_console_and_it_fires(
    demo: tuple[Server, dict[str, str]],  # noqa: F811
    browser: Browser,  # noqa: F811
    agent: Agent,
) -> None:
    """The whole journey: an admin writes the checkout rule in the console form,
    a visitor on the demo shop gets it at the right moment, and only once."""
    server, logins = demo
    problems: list[str] = []
    admin_ctx = browser.new_context()
    admin = watch(admin_ctx.new_page(), "admin", problems)
    admin.goto(f"{server.url}/console/login")
    admin.fill("input[name=email]", DEMO_ADMIN_EMAIL)
    admin.fill("input[name=password]", logins[DEMO_ADMIN_EMAIL])
    admin.click("button[type=submit]")
    admin.get_by_role("link", name="Triggers").click()
    expect(admin).to_have_url(f"{server.url}/console/triggers")
    admin.get_by_role("link", name="New trigger").click()

    admin.fill("input[name=name]", "Checkout help")
    # The path field shows only for attribute conditions (the form's script).
    expect(admin.locator("input[name=c0_path]")).to_be_hidden()
    admin.select_option("select[name=c0_kind]", "url")
    admin.select_option("select[name=c0_op]", "contains")
    admin.fill("input[name=c0_value]", "/demo/checkout")
    admin.select_option("select[name=c1_kind]", "time_on_page")
    admin.select_option("select[name=c1_op]", ">=")
    admin.fill("input[name=c1_value]", "3")
    admin.click("button[name=more]")  # a third condition row
    admin.select_option("select[name=c2_kind]", "attribute")
    expect(admin.locator("input[name=c2_path]")).to_be_visible()
    admin.fill("input[name=c2_path]", "cart.total")
    admin.select_option("select[name=c2_op]", ">=")
    admin.fill("input[name=c2_value]", "fifty")  # a mistake, refused with its field
    admin.select_option("select[name=a0_type]", "message")
    admin.fill("textarea[name=a0_body]", GREETING)
    admin.select_option("select[name=a1_type]", "open")
    admin.get_by_role("button", name="Save").click()
    expect(admin.locator("#err-conditions-2-value")).to_contain_text("must be a number")
    admin.fill("input[name=c2_value]", "50")
    admin.get_by_role("button", name="Save").click()
    expect(admin).to_have_url(f"{server.url}/console/triggers")
    row = admin.locator("tr", has_text="Checkout help")
    expect(row).to_contain_text("cart.total at least 50")
    expect(row.locator(".trg-fired")).to_have_text("0")

    visitor_ctx = browser.new_context()
    visitor = watch(visitor_ctx.new_page(), "visitor", problems)
    started = time.monotonic()
    visitor.goto(f"{server.url}/demo/checkout")
    widget_ready(visitor)
    set_cart(visitor, 60)
    # "Open the chat window": the window pops open with the greeting in it.
    panel = visitor.locator("chatserver-chat .panel")
    expect(panel).to_be_visible(timeout=15_000)
    assert time.monotonic() - started >= 3.0
    expect(panel.locator(".msg.them")).to_have_count(1)
    expect(panel.locator(".msg.them")).to_contain_text(GREETING)
    # Once: not again on a reload in the same visit.
    visitor.reload()
    widget_ready(visitor)
    visitor.wait_for_timeout(5000)
    expect(visitor.locator("chatserver-chat .msg.them")).to_have_count(1)
    assert len(greetings(agent)) == 1
    admin.reload()
    expect(admin.locator("tr", has_text="Checkout help").locator(".trg-fired")).to_have_text("1")
    visitor_ctx.close()
    admin_ctx.close()
    # The refused form came back as 400 Bad Request, which Chromium logs.
    expected = "admin: Failed to load resource: the server responded with a status of 400"
    assert [p for p in problems if not p.startswith(expected)] == [], problems
    assert len(problems) == 1

"""The admin pages in a real browser: what a shop owner does, end to end.

One Chromium context per person (the admin, an agent, a shop visitor), the
real server, the widget build served by it on a shop page of another origin
(``ShopServer``), and every page's console watched for errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from chatserver.types import Role

from ..conftest import PASSWORD, Server
from .test_demo_browser import watch
from .test_widget_browser import ShopServer, chromium, make_shop, shops  # noqa: F401

pytestmark = pytest.mark.browser

NewPage = Callable[[str], Page]
# A form sent back with its errors is a 422 page (a refused action 409): Chromium
# logs those loads as errors, but they are the pages working as meant.
_EXPECTED = re.compile(r"Failed to load resource: the server responded with a status of 4(22|09)")


class Problems(list[str]):
    """What ``watch`` records, but the expected loads of 422 and 409 pages."""

    def append(self, item: str) -> None:
        if not _EXPECTED.search(item):
            super().append(item)


@pytest.fixture
def people(chromium: Browser) -> Iterator[tuple[NewPage, list[str]]]:  # noqa: F811
    """``open(name)``: a page in a browser context of its own; the problems seen."""
    contexts: list[BrowserContext] = []
    problems = Problems()
    expect.set_options(timeout=15_000)  # generous: the machine may be busy

    def open_page(name: str) -> Page:
        ctx = chromium.new_context()
        contexts.append(ctx)
        return watch(ctx.new_page(), name, problems)

    yield open_page, problems
    for ctx in contexts:
        ctx.close()


def sign_in(page: Page, server: Server, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{server.url}/console/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()


def open_admin(page: Page, section: str) -> None:
    """From the console's navigation: Admin, then a section of the admin pages."""
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Admin").click()
    expect(page).to_have_url(re.compile(r"/console/admin$"))
    page.get_by_role("navigation", name="Admin pages").get_by_role("link", name=section).click()


def test_an_admin_adds_an_agent_who_then_signs_in(
    server: Server,
    people: tuple[NewPage, list[str]],
) -> None:
    new_page, problems = people
    shop = make_shop(server, agents=1, roles={0: Role.ADMIN}, departments=("sales", "support"))
    admin = new_page("admin")
    sign_in(admin, server, next(iter(shop.agents)))
    open_admin(admin, "Agents")
    admin.get_by_role("link", name="Add an agent").click()

    email = f"nora-{shop.site.id.lower()}@test.shop"
    admin.get_by_label("Name (visitors see it)").fill("Nora")
    admin.get_by_label("Email (their login)").fill(email)
    admin.get_by_label("Password").fill("short")
    admin.get_by_label("Capacity (chats at once)").fill("4")
    admin.get_by_label("support").check()
    admin.get_by_role("button", name="Add the agent").click()
    # The mistake is shown next to its field; what was typed is still there.
    password = admin.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(admin.locator("#password-error")).to_have_text("At least 8 characters.")
    expect(admin.get_by_label("Name (visitors see it)")).to_have_value("Nora")
    expect(admin.get_by_label("support")).to_be_checked()

    password.fill("nora's password")
    admin.get_by_role("button", name="Add the agent").click()
    expect(admin).to_have_url(re.compile(r"/console/admin/agents$"))
    expect(admin.locator(".flash")).to_contain_text(
        f"Added Nora: they sign in at /console/login as {email}"
    )
    row = admin.locator("tr", has_text=email)
    expect(row).to_contain_text("support")
    expect(row.locator(".status")).to_have_text("active")

    nora = new_page("nora")
    sign_in(nora, server, email, "nora's password")
    expect(nora).to_have_url(re.compile(r"/console/$"))
    expect(nora.locator("header .who")).to_contain_text("Nora")
    expect(nora.get_by_role("link", name="Admin")).to_have_count(0)  # an agent, not an admin
    assert problems == []


def test_an_admin_adds_a_canned_response(server: Server, people: tuple[NewPage, list[str]]) -> None:
    new_page, problems = people
    shop = make_shop(server, agents=1, roles={0: Role.ADMIN})
    admin = new_page("admin")
    sign_in(admin, server, next(iter(shop.agents)))
    open_admin(admin, "Canned responses")
    expect(admin.get_by_role("status").last).to_have_text("0 canned responses.")
    admin.get_by_role("link", name="Add a canned response").click()
    admin.get_by_label("Shortcut").fill("/Shipping")
    admin.get_by_label("Text").fill("We ship in 2 days. <b>Free</b> over €50.")
    admin.get_by_role("button", name="Add").click()

    expect(admin.locator(".flash")).to_have_text("Added /shipping.")
    row = admin.locator("tr[data-canned]")
    expect(row).to_have_count(1)
    expect(row.locator(".shortcut")).to_have_text("/shipping")
    expect(row.locator(".text")).to_have_text("We ship in 2 days. <b>Free</b> over €50.")
    admin.get_by_role("searchbox", name="Search canned responses").fill("returns")
    admin.get_by_role("button", name="Search").click()
    expect(admin.locator("tr[data-canned]")).to_have_count(0)
    admin.get_by_role("link", name="Show all").click()
    expect(admin.locator("tr[data-canned]")).to_have_count(1)
    assert problems == []


def test_widget_colour_greeting_and_the_script_tag(
    server: Server,
    shops: ShopServer,  # noqa: F811
    people: tuple[NewPage, list[str]],
) -> None:
    new_page, problems = people
    shop = make_shop(server, agents=1, roles={0: Role.ADMIN})
    shop_origin = shops.url.rstrip("/")
    admin = new_page("admin")
    admin.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    sign_in(admin, server, next(iter(shop.agents)))
    open_admin(admin, "Site settings")

    admin.get_by_label("Widget colour").fill("#AA3300")
    admin.get_by_label("Greeting").fill("Hola! What can we do for you?")
    admin.get_by_label("Allowed origins").fill(f"{shop_origin}\nnot an origin")
    admin.get_by_role("button", name="Save the settings").click()
    expect(admin.locator("#origins-error")).to_contain_text("Line 2")
    expect(admin.get_by_label("Widget colour")).to_have_value("#AA3300")
    admin.get_by_label("Allowed origins").fill(shop_origin)
    admin.get_by_role("button", name="Save the settings").click()
    expect(admin.locator(".flash")).to_contain_text("Saved.")
    expect(admin.get_by_label("Widget colour")).to_have_value("#aa3300")

    # The script tag shown is this server's, with this site's key, and copies as is.
    tag = f'<script src="{server.url}/widget.js" data-site="{shop.key}" async></script>'
    expect(admin.locator("#script-tag")).to_have_text(tag)
    admin.get_by_role("button", name="Copy").click()
    expect(admin.locator(".copy-status")).to_have_text("Copied.")
    copied = admin.evaluate("navigator.clipboard.readText()")
    assert copied == tag

    # Pasted on a shop page: a new widget shows the colour and the greeting.
    url = shops.add(
        "pasted",
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<link rel="icon" href="data:,"></head><body><h1>A shop</h1>{copied}</body></html>""",
    )
    visitor = new_page("visitor")
    visitor.goto(url)
    bubble = visitor.locator("chatserver-chat .bubble")
    expect(bubble).to_be_visible()
    expect(bubble).to_have_css("background-color", "rgb(170, 51, 0)")
    bubble.click()
    expect(visitor.locator("chatserver-chat .msg.greet")).to_have_text(
        "Hola! What can we do for you?"
    )
    assert problems == []


def test_disabling_an_agent_closes_their_console_socket(
    server: Server, people: tuple[NewPage, list[str]]
) -> None:
    new_page, problems = people
    shop = make_shop(server, agents=2, roles={0: Role.ADMIN})
    admin_email, agent_email = list(shop.agents)
    agent = new_page("agent")
    sign_in(agent, server, agent_email)
    # The workspace's own connection to the hub is up.
    expect(agent.locator("#link")).to_have_attribute("data-state", "online")

    admin = new_page("admin")
    sign_in(admin, server, admin_email)
    open_admin(admin, "Agents")
    admin.locator("tr", has_text=agent_email).get_by_role("link", name="Edit").click()
    admin.get_by_role("button", name="Disable Agent 1").click()
    admin.locator("dialog.confirm-dialog").get_by_role(
        "button", name="Disable"
    ).click()  # asked first
    expect(admin.locator(".flash")).to_contain_text("Disabled Agent 1")
    expect(admin.locator("tr", has_text=agent_email).locator(".status")).to_have_text("disabled")

    # The socket closed with 4105 account_disabled: the workspace goes to the
    # login form, where the disabled account cannot sign in again.
    expect(agent).to_have_url(re.compile(r"/console/login"), timeout=15_000)
    assert problems == []


def test_ended_sessions_in_the_workspace(server: Server, people: tuple[NewPage, list[str]]) -> None:
    new_page, problems = people
    shop = make_shop(server, agents=2, roles={0: Role.ADMIN})
    admin_email, agent_email = list(shop.agents)
    laptop, phone = new_page("laptop"), new_page("phone")
    for p in (laptop, phone):
        sign_in(p, server, agent_email)
        expect(p.locator("#link")).to_have_attribute("data-state", "online")
    # "Sign out everywhere" on the laptop: the phone's socket closes (4106), its
    # cookie cannot get a new token, and its workspace goes to the login form.
    laptop.get_by_role("button", name="Sign out everywhere").click()
    expect(laptop).to_have_url(re.compile(r"/console/login"))
    expect(phone).to_have_url(re.compile(r"/console/login"))

    # The admin's own password reset in another tab: this browser stays signed
    # in (same session, same CSRF token for its open pages); its workspace
    # socket is spared and a reload connects with a token of the new cookie.
    admin = new_page("admin")
    sign_in(admin, server, admin_email)
    expect(admin.locator("#link")).to_have_attribute("data-state", "online")
    tab = watch(admin.context.new_page(), "admin tab", problems)
    tab.goto(f"{server.url}/console/admin/agents/{shop.agents[admin_email]}")
    tab.get_by_label("New password").fill("my own new password")
    tab.get_by_role("button", name="Set the password").click()
    expect(tab.locator(".flash")).to_contain_text("New password set")
    tab.get_by_role("button", name="Sign out everywhere").last.click()  # the agent page's
    expect(tab.locator(".flash")).to_contain_text("Signed Agent 0 out everywhere")
    admin.wait_for_timeout(1000)  # a closing socket would show within this
    expect(admin.locator("#link")).to_have_attribute("data-state", "online")
    admin.reload()
    expect(admin.locator("#link")).to_have_attribute("data-state", "online")
    expect(admin).to_have_url(re.compile(r"/console/$"))
    # The phone's token request after its session ended is the one refused load.
    refused = "Failed to load resource: the server responded with a status of 401"
    assert [p for p in problems if refused not in p] == []

"""#21 "a console people enjoy", in real chromium: avatars, icons with labels, empty
states that say what to do, dark mode, confirmations before destructive actions."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from chatserver.types import Role

from ..conftest import PASSWORD, Server
from ..in_process.test_avatars import png
from .test_console_browser import SHOWN, emails, new, put_canned, sign_in, visitor_writes
from .test_console_layout_browser import admin_with_a_chat
from .test_widget_browser import ShopServer, make_shop, shop_page

pytestmark = pytest.mark.browser


def test_avatars_pictures_and_initials(
    server: Server,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    shop = admin_with_a_chat(server)
    page = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    # The visitor's initials on a colour from their id, in the list, the pane and the panel.
    item = page.locator(".conv-item").filter(has_text="Do you ship")
    expect(item.locator(".avatar")).to_have_text("AE")
    colour = item.locator(".avatar").evaluate("(e) => getComputedStyle(e).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    item.click()
    pane = page.locator(SHOWN)
    expect(pane.locator(".pane-face .avatar")).to_have_text("AE")
    expect(page.locator("#visitor-panel .v-head .avatar")).to_have_text("AE")
    expect(pane.locator(".entry.visitor .avatar")).to_have_text("AE")

    # The agent sets a picture in their profile (reached from their name).
    picture = tmp_path_factory.mktemp("avatar") / "me.png"
    picture.write_bytes(png(8, 8))
    page.click("header.top a.who")
    expect(page).to_have_url(f"{server.url}/console/profile")
    expect(page.locator(".avatar.initials")).to_have_text("A0")  # "Agent 0"
    page.set_input_files("input[name=avatar]", str(picture))
    page.click("form.avatar-form button[type=submit]")
    shown = page.locator("img.avatar")
    expect(shown).to_have_attribute("src", re.compile(r"^/console/avatars/.+\?v=\d+$"))
    expect(shown).to_have_js_property("naturalWidth", 8)  # loaded (waits: the load is async)
    src = str(shown.get_attribute("src"))

    # Back in the workspace: the agent's messages carry the picture.
    page.goto(f"{server.url}/console/")
    page.locator(".conv-item").filter(has_text="Do you ship").click()
    pane.locator("button.join").click()
    expect(pane.locator(".reply")).to_be_editable()
    pane.locator(".reply").fill("We do, in three days.")
    pane.locator(".reply").press("Enter")
    img = pane.locator(".entry.agent .avatar img")
    expect(img).to_have_attribute("src", src)
    expect(img).to_have_js_property("naturalWidth", 8)


def test_chat_actions_have_icons_beside_their_labels(
    server: Server, chromium: Browser, contexts: list[BrowserContext], problems: list[str]
) -> None:
    shop = admin_with_a_chat(server)
    page = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    page.locator(".conv-item").filter(has_text="Do you ship").click()
    pane = page.locator(SHOWN)
    actions = {
        "button.join": "Take chat",
        ".transfer summary": "Transfer",
        ".invite summary": "Invite",
        "a.recordings-link": "Recordings",  # an admin's
        "button.close-chat": "Close chat",
    }
    for selector, label in actions.items():
        action = pane.locator(selector)
        expect(action).to_have_text(label)  # the label stays, as the accessible name
        svg = action.locator("svg.icon")
        expect(svg).to_have_attribute("aria-hidden", "true")
        assert svg.evaluate("(s) => s.getBoundingClientRect().width") >= 12, selector
        assert svg.locator("path").get_attribute("d"), selector
    expect(pane.get_by_role("button", name="Take chat", exact=True)).to_be_visible()
    expect(pane.get_by_role("button", name="Close chat", exact=True)).to_be_visible()
    pane.locator("button.join").click()
    send = pane.locator(".composer button[type=submit]")
    expect(send).to_have_text("Send")
    expect(send.locator("svg.icon-send")).to_have_attribute("aria-hidden", "true")
    pane.locator(".reply").press("Alt+n")  # a note: the button says so, with its icon
    expect(send).to_have_text("Add note")
    expect(send.locator("svg.icon-note")).to_be_visible()
    expect(pane.locator(".note-label svg.icon-note")).to_have_attribute("aria-hidden", "true")


def test_empty_lists_say_what_to_do(
    server: Server, chromium: Browser, contexts: list[BrowserContext], problems: list[str]
) -> None:
    """A new site: every empty list says what it is for and how to fill it."""
    shop = make_shop(server, agents=1, roles={0: Role.ADMIN})
    page = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    expect(page.locator("#list-queued .empty")).to_contain_text("New chats arrive here")
    expect(page.locator("#list-mine .empty")).to_contain_text("Take one from the queue")
    expect(page.locator("#list-online .empty")).to_contain_text("Visitors appear here")
    expect(page.locator("#no-conversation")).to_contain_text("Pick a conversation")
    wanted = {
        "/console/admin/canned": ("No canned responses yet", "Add the first one"),
        "/console/admin/canned?q=zzz": ("Nothing matches", "Try a shorter word"),
        "/console/triggers": ("No triggers yet", "Write the first one"),
        "/console/admin/webhooks": ("No webhooks yet", "Add an endpoint"),
        "/console/admin/api-keys": ("No API keys yet", "Make one below"),
        "/console/admin/audit?actor=nobody": ("match these filters", "remove one"),
        "/console/reports": ("Nothing in this period", "Choose a longer period"),
        "/console/conversations?q=zzz": ("No conversation", "Remove a filter"),
        "/console/sessions": ("No recorded sessions", "Site settings"),
    }
    for path, (what, todo) in wanted.items():
        page.goto(f"{server.url}{path}")
        empty = page.locator(".empty-state").first
        expect(empty).to_contain_text(what)
        expect(empty).to_contain_text(todo)
    # The action is a link where there is one to follow.
    page.goto(f"{server.url}/console/admin/canned")
    page.locator(".empty-state a").click()
    expect(page).to_have_url(f"{server.url}/console/admin/canned/new")


BODY_BACKGROUND = "getComputedStyle(document.body).backgroundColor"
LIGHT, DARK = "rgb(243, 244, 246)", "rgb(11, 17, 32)"


def test_dark_mode_follows_the_system_and_the_agents_choice(
    server: Server, chromium: Browser, contexts: list[BrowserContext], problems: list[str]
) -> None:
    shop = make_shop(server, agents=2)
    first, second = emails(shop)
    ctx = new(contexts, chromium, color_scheme="light")
    page = sign_in(ctx, server, first, problems)
    theme = page.locator("header.top select#theme")
    expect(theme).to_have_value("system")
    assert page.evaluate(BODY_BACKGROUND) == LIGHT
    page.emulate_media(color_scheme="dark")  # "system" follows the system, live
    expect(page.locator("body")).to_have_css("background-color", DARK)
    page.emulate_media(color_scheme="light")
    theme.select_option("dark")  # the agent's choice wins over the system's
    expect(page.locator("body")).to_have_css("background-color", DARK)
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.goto(f"{server.url}/console/admin/../reports")  # remembered on every page
    expect(page.locator("body")).to_have_css("background-color", DARK)
    expect(page.locator("select#theme")).to_have_value("dark")
    page.locator("select#theme").select_option("light")
    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator("body")).to_have_css("background-color", LIGHT)  # chosen: light
    page.locator("select#theme").select_option("system")
    expect(page.locator("body")).to_have_css("background-color", DARK)
    # Per agent: a colleague signing in in this browser has their own (the system's).
    page.locator("select#theme").select_option("dark")
    page.locator("header.top form.logout button[type=submit]").first.click()
    other = sign_in(ctx, server, second, problems)  # a new page: the system is light
    expect(other.locator("select#theme")).to_have_value("system")
    expect(other.locator("body")).to_have_css("background-color", LIGHT)


def test_destructive_actions_ask_first_with_and_without_javascript(
    server: Server, chromium: Browser, contexts: list[BrowserContext], problems: list[str]
) -> None:
    shop = make_shop(server, agents=1, roles={0: Role.ADMIN})
    for shortcut in ("hello", "ship"):
        put_canned(server, shop.site.id, shortcut, f"The {shortcut} text.")
    page = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    page.goto(f"{server.url}/console/admin/canned")
    rows = page.locator("table.canned tbody tr")
    expect(rows).to_have_count(2)
    dialog = page.locator("dialog.confirm-dialog")
    delete_hello = rows.filter(has_text="/hello").get_by_role("button", name="Delete")

    delete_hello.click()  # asks in a modal dialog, the safe answer focused
    expect(dialog).to_be_visible()
    expect(dialog.locator(".confirm-question")).to_have_text("Delete the canned response /hello?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    delete_hello.click()
    page.keyboard.press("Escape")  # Esc cancels too
    expect(dialog).to_be_hidden()
    page.reload()
    expect(rows).to_have_count(2)  # cancelled twice: nothing was deleted

    delete_hello.click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator(".flash")).to_have_text("Deleted /hello.")
    expect(rows).to_have_count(1)

    # Without JavaScript: a confirmation page, with a way back that changes nothing.
    plain = new(contexts, chromium, java_script_enabled=False).new_page()
    plain.goto(f"{server.url}/console/login?next=/console/admin/canned")
    plain.fill("input[name=email]", emails(shop)[0])
    plain.fill("input[name=password]", PASSWORD)
    plain.click("form.login button[type=submit]")
    expect(plain).to_have_url(f"{server.url}/console/admin/canned")
    plain.get_by_role("button", name="Delete").click()
    expect(plain.locator("h1")).to_have_text("Delete the canned response /ship?")
    plain.get_by_role("link", name="Cancel").click()
    expect(plain).to_have_url(f"{server.url}/console/admin/canned")
    expect(plain.locator("table.canned tbody tr")).to_have_count(1)
    plain.get_by_role("button", name="Delete").click()
    plain.locator(".confirm-page").get_by_role("button", name="Delete").click()
    expect(plain.locator(".flash")).to_have_text("Deleted /ship.")
    expect(plain.locator("table.canned")).to_have_count(0)


# Desktop notifications allowed, and the console in the background: record them.
RECORD_NOTIFICATIONS = """
window.__shown = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.__shown.push(title); }
  close() {}
};
document.hasFocus = () => false;
"""


def test_notification_preferences_follow_the_agent(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    contexts: list[BrowserContext],
    problems: list[str],
) -> None:
    shop = make_shop(server, agents=1)
    url = shops.add(f"alerts-{shop.site.id}", shop_page(server, shop.key))
    ctx = new(contexts, chromium)
    ctx.add_init_script(RECORD_NOTIFICATIONS)
    agent = sign_in(ctx, server, emails(shop)[0], problems)
    shown = lambda: agent.evaluate("window.__shown")  # noqa: E731

    def some_shown() -> None:  # polled from here: the console's CSP refuses eval()
        deadline = time.monotonic() + 7
        while not shown():
            assert time.monotonic() < deadline, "no desktop notification"
            agent.wait_for_timeout(50)

    sound = agent.locator("#sound")
    expect(sound).to_be_checked()  # the default
    with agent.expect_response("**/console/api/alerts") as saved:
        sound.uncheck()
    assert saved.value.ok
    # Another browser (no shared storage): the agent's choice came with them.
    elsewhere = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)
    expect(elsewhere.locator("#sound")).not_to_be_checked()

    visitor = visitor_writes(new(contexts, chromium), url, "Hello, anyone?", problems)
    expect(agent.locator("#list-mine .conv-item")).to_have_count(1)
    some_shown()
    first = shown()
    assert len(first) == 1 and first[0].startswith("New chat"), first  # "new chats only"
    box = visitor.locator("#chatserver-input")
    box.fill("Still there?")
    box.press("Enter")
    expect(agent.locator("#list-mine .conv-item .last")).to_have_text("Still there?")
    assert shown() == first  # no notification for a message

    agent.goto(f"{server.url}/console/profile")
    agent.get_by_label("New chats and every visitor message").check()
    agent.locator("form.alerts-form button[type=submit]").click()
    expect(agent.locator(".flash")).to_have_text("Saved your notifications.")
    agent.goto(f"{server.url}/console/")
    expect(agent.locator("#link")).to_have_attribute("data-state", "online")
    expect(agent.locator("#list-mine .conv-item")).to_have_count(1)
    agent.evaluate("window.__shown = []")  # from here on: the visitor's next message
    box.fill("Do you ship to Norway?")
    box.press("Enter")
    some_shown()
    last = shown()
    assert len(last) == 1 and last[0].endswith(" wrote"), last  # now every message

"""#21: an agent who chose Catalan sees the workspace's JS-built text in Catalan
(the connection state, an empty list, the pane's buttons, an event line of the
transcript), the page says ``lang="ca"``, and axe still finds nothing serious."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from ..conftest import Server
from .axe import serious
from .test_console_browser import contexts, emails, new, problems, sign_in  # noqa: F401
from .test_console_layout_browser import admin_with_a_chat

pytestmark = pytest.mark.browser


def test_an_agent_who_chose_catalan_sees_the_workspace_in_catalan(
    server: Server,
    chromium: Browser,
    contexts: list[BrowserContext],  # noqa: F811
    problems: list[str],  # noqa: F811
) -> None:
    shop = admin_with_a_chat(server)
    # The browser asks for English; the agent's choice wins. axe is injected as a
    # script, which the console's Content-Security-Policy would refuse.
    ctx = new(contexts, chromium, bypass_csp=True, locale="en-US")
    page = sign_in(ctx, server, emails(shop)[0], problems)
    expect(page.locator("#link-text")).to_have_text("Connected")

    page.goto(f"{server.url}/console/profile")
    page.select_option("form.language-form select[name=language]", "ca")
    page.click("form.language-form button[type=submit]")
    expect(page.locator("html")).to_have_attribute("lang", "ca")
    expect(page.locator("p.flash")).to_have_text("S'ha desat la teva llengua.")
    assert serious(page) == []

    page.goto(f"{server.url}/console/")
    expect(page.locator("html")).to_have_attribute("lang", "ca")
    expect(page.locator("#link-text")).to_have_text("Connectat")  # main.js
    expect(page.locator("#list-mine .empty")).to_contain_text("Encara no tens cap xat")  # list.js
    expect(page.locator("#h-queue")).to_contain_text("Cua")  # the template
    page.locator(".conv-item").filter(has_text="Do you ship").click()
    pane = page.locator(".pane:not([hidden])")
    take = pane.locator("button.join")
    expect(take).to_have_text("Agafa el xat")  # pane.js
    expect(pane.locator(".read-only")).to_have_text(
        "No ets en aquesta conversa: uneix-t'hi per respondre."
    )
    assert serious(page) == []  # a conversation open, not yet joined
    take.click()
    expect(pane.locator(".entry.event").last).to_contain_text(
        "Agent 0 s'ha unit al xat"
    )  # labels.js
    assert serious(page) == []  # joined: the composer shown too
    expect(pane.locator("button.close-chat")).to_have_text("Tanca el xat")
    expect(pane.locator("textarea.reply")).to_have_attribute(
        "placeholder",
        "Respon… (Retorn envia, Maj+Retorn línia nova, / per a respostes predefinides)",
    )
    presence = page.locator("#visitor-panel .v-presence")  # visitor.js
    expect(presence).to_have_text("Ara no és al lloc")

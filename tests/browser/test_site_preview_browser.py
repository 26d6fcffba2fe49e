"""#21: the admin site page's live preview of the widget, in real chromium.

The preview is drawn by the widget's own views (the preview bundle) in a shadow
root of the page; editing the form redraws it before anything is saved.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from chatserver.types import Role, SiteSettings

from ..conftest import Server
from .axe import serious
from .contrast import ratio
from .test_console_browser import contexts, emails, new, problems, sign_in  # noqa: F401
from .test_widget_browser import make_shop

pytestmark = pytest.mark.browser

PREVIEW = "[data-widget-preview]"


def styles(page: Page, selector: str) -> tuple[str, str]:
    """The text and background colours of an element inside the preview's shadow root."""
    found = page.evaluate(
        """(sel) => {
          const root = document.querySelector("[data-widget-preview] > div").shadowRoot;
          const s = getComputedStyle(root.querySelector(sel));
          return [s.color, s.backgroundColor];
        }""",
        selector,
    )
    return str(found[0]), str(found[1])


def test_the_preview_follows_the_form_before_saving(
    server: Server,
    chromium: Browser,
    contexts: list[BrowserContext],  # noqa: F811
    problems: list[str],  # noqa: F811
) -> None:
    settings = SiteSettings(greeting="Hello from the shop", color="#2563eb")
    shop = make_shop(server, agents=1, roles={0: Role.ADMIN}, settings=settings)
    page = sign_in(new(contexts, chromium), server, emails(shop)[0], problems)  # its real CSP
    page.goto(f"{server.url}/console/admin/site")
    title = page.locator(f"{PREVIEW} .head h2")
    greeting = page.locator(f"{PREVIEW} .greet .b")
    expect(title).to_have_text(shop.site.name)
    expect(greeting).to_have_text("Hello from the shop")
    expect(page.locator(f"{PREVIEW} .panel")).to_be_visible()
    assert page.evaluate("document.querySelector('[data-widget-preview] > div').inert")
    assert styles(page, ".head")[1] == "rgb(37, 99, 235)"

    # Each edit redraws it at once.
    page.fill("input[name=name]", "Botiga Marta")
    expect(title).to_have_text("Botiga Marta")
    page.fill("textarea[name=greeting]", "Bon dia! <b>Com</b> et podem ajudar?")
    expect(greeting).to_have_text("Bon dia! <b>Com</b> et podem ajudar?")  # as text
    page.fill("input[name=color]", "#facc15")
    expect(page.locator(f"{PREVIEW} .head")).to_have_css("background-color", "rgb(250, 204, 21)")
    color, background = styles(page, ".head")
    assert ratio(color, background) >= 4.5  # dark text on the yellow
    page.select_option("select[name=language]", "ca")
    expect(page.locator(f"{PREVIEW} #chatserver-input")).to_have_attribute(
        "placeholder", re.compile("missatge")
    )
    page.fill("textarea[name=greeting]", "")
    expect(greeting).to_have_count(0)
    page.fill("textarea[name=greeting]", "Bon dia!")
    expect(greeting).to_have_text("Bon dia!")

    # The theme: the tag's, shown in the preview and in the attribute to add.
    expect(page.locator(f"{PREVIEW} .panel")).to_have_css("background-color", "rgb(255, 255, 255)")
    page.select_option("[data-preview-theme]", "dark")
    expect(page.locator(f"{PREVIEW} .panel")).to_have_css("background-color", "rgb(31, 41, 55)")
    expect(page.locator("[data-theme-attr]")).to_have_text('data-theme="dark"')

    # axe, on the page with the dark preview (injected as a script: the page's
    # Content-Security-Policy would refuse it, so in a context that bypasses it).
    checker = sign_in(new(contexts, chromium, bypass_csp=True), server, emails(shop)[0], problems)
    checker.goto(f"{server.url}/console/admin/site")
    checker.select_option("[data-preview-theme]", "dark")
    expect(checker.locator(f"{PREVIEW} .panel")).to_have_css("background-color", "rgb(31, 41, 55)")
    assert serious(checker) == []

    # Nothing was saved: a reload shows the stored settings again.
    page.reload()
    expect(greeting).to_have_text("Hello from the shop")
    expect(title).to_have_text(shop.site.name)
    assert problems == []

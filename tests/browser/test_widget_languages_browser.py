"""#21: Catalan and Spanish come in a bundle of their own (langs.<hash>.js), which
the chat bundle adds only when one of them is picked; the window still appears
in its language from the first frame, never first in English."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from chatserver.types import SiteSettings

from ..conftest import Server
from .test_demo_browser import watch
from .test_widget_browser import ShopServer, make_shop, shop_page

# The launcher's label when it first appears (a mutation observer, before any later render).
FIRST_LABEL = """
new MutationObserver((_, observer) => {
  const host = document.querySelector("chatserver-chat");
  const bubble = host && host.shadowRoot && host.shadowRoot.querySelector(".bubble");
  if (!bubble) return;
  window.__firstLabel = bubble.getAttribute("aria-label");
  observer.disconnect();
}).observe(document, {childList: true, subtree: true});
"""


@pytest.mark.parametrize(
    ("page_lang", "browser_locale", "setting", "label", "loads"),
    [
        ("en", "en-US", "es", "Open chat", False),  # the page's language first
        ("ca-ES", "en-US", "en", "Obre el xat", True),
        ("", "fr-FR", "es", "Abrir el chat", True),  # neither: the site's setting
    ],
)
def test_languages_load_only_when_picked_and_show_from_the_first_frame(
    server: Server,
    shops: ShopServer,
    chromium: Browser,
    page_lang: str,
    browser_locale: str,
    setting: str,
    label: str,
    loads: bool,
) -> None:
    shop = make_shop(server, agents=1, settings=SiteSettings(language=setting))
    ctx = chromium.new_context(locale=browser_locale)
    try:
        problems: list[str] = []
        page = watch(ctx.new_page(), "langs", problems)
        page.add_init_script(FIRST_LABEL)
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url) if "/widget/langs." in r.url else None)
        html = shop_page(server, shop.key, lang=page_lang)
        page.goto(shops.add(f"langs-{page_lang}-{browser_locale}", html))
        bubble = page.locator("chatserver-chat .bubble")
        expect(bubble).to_have_attribute("aria-label", label)
        assert page.evaluate("window.__firstLabel") == label
        assert len(requested) == (1 if loads else 0), requested
        assert problems == []
    finally:
        ctx.close()

"""Page tracking, identify and attributes from the real widget in a real browser.

The demo shop (multi-page) and a single-page shop on another origin; the
agent is a protocol client (``Agent`` of ``test_widget_browser``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from chatserver.web.demo import DEMO_EMAIL

from ..conftest import Server
from .test_demo_browser import browser, demo, watch  # noqa: F401  (fixtures)
from .test_widget_browser import Agent, ShopServer, make_shop, shop_page

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_agent(demo: tuple[Server, dict[str, str]]) -> Iterator[tuple[Server, Agent]]:  # noqa: F811
    server, logins = demo
    agent = Agent(server, DEMO_EMAIL, logins[DEMO_EMAIL])
    yield server, agent
    agent.close()


def test_demo_shop_pages_reach_the_agent(
    demo_agent: tuple[Server, Agent],
    browser: Browser,  # noqa: F811
) -> None:
    server, agent = demo_agent
    expect.set_options(timeout=5000)
    problems: list[str] = []
    visitor = watch(browser.new_context().new_page(), "visitor", problems)

    visitor.goto(f"{server.url}/demo/")
    expect(visitor.locator(".card")).to_have_count(3)
    home = agent.expect("visitor", lambda f: f["visitor"]["page"]["url"].endswith("/demo/"))
    vid = home["visitor"]["id"]
    visitor.locator("h2 a").first.click()
    expect(visitor).to_have_url(f"{server.url}/demo/product/linen-shirt")
    agent.expect("visitor", lambda f: f["visitor"]["page"]["url"].endswith("/linen-shirt"))

    # the demo shop tells the chat what is in the cart (["set", ...])
    visitor.click("[data-add=linen-shirt]")
    cart = {"cart": {"items": 1, "total": 49, "currency": "EUR"}}
    agent.expect("visitor", lambda f: f["visitor"]["attributes"] == cart)

    reply = agent.request({"t": "visitor", "visitor": vid})
    assert reply["t"] == "visitor", reply
    assert [p["url"] for p in reply["pages"]] == [
        f"{server.url}/demo/product/linen-shirt",
        f"{server.url}/demo/",
    ]
    assert reply["pages"][0]["referrer"] == f"{server.url}/demo/"
    assert reply["visitor"]["visits"] == 1
    listed = agent.request({"t": "visitors"})
    (entry,) = [v for v in listed["visitors"] if v["id"] == vid]
    assert entry["url"] == f"{server.url}/demo/product/linen-shirt"
    assert not problems, problems


SPA = """<script>
  window.$chat = window.$chat || [];
  $chat.push(["identify", {name: "Ann", email: "ann@example.com"}]);
  $chat.push(["set", {plan: "pro", cart: {items: 2, total: 59.9, currency: "EUR"}}]);
  window.go = (path, title) => { document.title = title; history.pushState({p: path}, "", path); };
</script>"""


def test_single_page_app_routes_identify_and_set(
    server: Server,
    shops: ShopServer,
    context: BrowserContext,
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    problems: list[str] = []
    url = shops.add("spa", shop_page(server, shop.key, head=SPA))
    page = watch(context.new_page(), "spa", problems)
    try:
        page.goto(url)
        expect(page.locator("chatserver-chat .bubble")).to_be_visible()
        first = agent.expect("visitor", lambda f: f["visitor"]["page"]["url"] == url)
        vid = first["visitor"]["id"]
        # queued before the bundle ran: sent once connected
        agent.expect(
            "visitor",
            lambda f: (
                f["visitor"]["id"] == vid
                and f["visitor"]["name"] == "Ann"
                and f["visitor"]["attributes"].get("plan") == "pro"
            ),
        )

        # pushState still works for the page (returns, changes the URL) and is reported
        page.evaluate("go('/spa/cart', 'Cart')")
        assert page.evaluate("location.pathname") == "/spa/cart"
        assert page.evaluate("history.state") == {"p": "/spa/cart"}
        agent.expect("visitor", lambda f: f["visitor"]["page"]["url"].endswith("/spa/cart"))
        # the same URL again (replaceState) is not a new page view
        page.evaluate("history.replaceState({p: 1}, '', '/spa/cart')")
        page.evaluate("go('/spa/pay', 'Pay')")
        agent.expect("visitor", lambda f: f["visitor"]["page"]["url"].endswith("/spa/pay"))
        # back: popstate
        page.go_back()
        expect(page).to_have_url(shops.url + "spa/cart")
        agent.expect(
            "visitor",
            lambda f: (
                f["visitor"]["page"]["url"].endswith("/spa/cart")
                and f["visitor"]["page"]["referrer"].endswith("/spa/pay")
            ),
        )

        page.evaluate("$chat.push(['set', {plan: null, vip: true}])")
        agent.expect(
            "visitor",
            lambda f: (
                f["visitor"]["attributes"]
                == {"vip": True, "cart": {"items": 2, "total": 59.9, "currency": "EUR"}}
            ),
        )
        reply = agent.request({"t": "visitor", "visitor": vid})
        assert [p["url"].removeprefix(shops.url) for p in reply["pages"]] == [
            "spa/cart",
            "spa/pay",
            "spa/cart",
            "spa",
        ]
        assert reply["visitor"]["name"] == "Ann"
        assert reply["visitor"]["email"] == "ann@example.com"
        assert not problems, problems
    finally:
        agent.close()

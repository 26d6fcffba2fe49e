"""Signals from the recording, in real chromium (docs/recordings.md "Signals").

A shop page (another origin) has a broken "Pay" button: its handler posts to
the shop's own server, which answers 501, and throws.  The visitor
rage-clicks it; the recorder sends the batch at once, the server finds the
rage click, the failed request and the error, and a trigger with a
``signal`` condition opens the chat with an offer of help within a couple of
seconds.  The analyst then finds that session by filtering on rage clicks;
the error's message reached the server with its digits masked.
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from playwright.sync_api import Browser, BrowserContext, expect

from chatserver.proactive import TRIGGER_KIND
from chatserver.proactive.rules import parse_rule
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Role, SiteSettings

from ..conftest import PASSWORD, Server
from .test_console_browser import new, sign_in, visitor_writes
from .test_demo_browser import watch
from .test_widget_browser import ShopServer, make_shop

RULE = {
    "name": "Stuck paying",
    "conditions": [{"kind": "signal", "op": "is", "value": "rage"}],
    "actions": [
        {"type": "message", "body": "Having trouble paying? We are here."},
        {"type": "open"},
    ],
}


def broken_checkout(server: Server, key: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Checkout</title>
<link rel="icon" href="data:,"></head><body><h1>Checkout</h1>
<button id="pay" type="button">Pay now</button>
<script>
document.getElementById("pay").addEventListener("click", () => {{
  fetch("/api/pay", {{method: "POST"}});
  throw new Error("payment failed for order 4471093");
}});
</script>
<script src="{server.url}/widget.js" data-site="{key}" async></script>
</body></html>"""


def put_rule(server: Server, site_id: str) -> None:
    async def put() -> None:
        store = SQLiteStore(server.data / "chatserver.db")
        await store.start()
        try:
            rule = parse_rule(RULE, None, "t_pay").to_json()
            await store.put_doc(site_id, TRIGGER_KIND, "t_pay", rule)
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(put())).result()


def test_a_rage_click_on_a_broken_button_offers_help(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    settings = SiteSettings(recording=True, recording_sample=1.0)
    shop = make_shop(server, agents=2, settings=settings, roles={1: Role.ANALYST})
    put_rule(server, shop.site.id)
    problems: list[str] = []
    page = watch(context.new_page(), "visitor", problems)
    page.goto(shops.add("checkout", broken_checkout(server, shop.key)))
    page.wait_for_function("() => !!window.__chatserverRecorder", timeout=15000)
    page.wait_for_timeout(300)
    started = time.monotonic()
    for _ in range(4):
        page.locator("#pay").click(delay=20)
    window = page.locator("chatserver-chat [role=dialog]")
    expect(window).to_be_visible(timeout=5000)
    expect(page.locator("chatserver-chat")).to_contain_text("Having trouble paying?", timeout=5000)
    assert time.monotonic() - started < 3.0  # the batch went at once, not at the next tick
    # the analyst finds the session by its signal
    analyst = next(e for e in shop.agents if e.startswith("agent1-"))
    r = httpx.post(f"{server.url}/api/login", json={"email": analyst, "password": PASSWORD})
    with httpx.Client(
        base_url=f"{server.url}/console/api/recordings",
        headers={"Authorization": f"Bearer {r.json()['token']}"},
    ) as api:
        (rec,) = api.get("/", params={"signal": "rage"}).json()["recordings"]
        marks = api.get(f"/{rec['id']}").json()["marks"]
    kinds = {m["kind"] for m in marks}
    assert {"rage", "error", "request"} <= kinds
    error = next(m for m in marks if m["kind"] == "error")
    assert "payment failed for order" in error["message"] and "4471093" not in error["message"]
    request = next(m for m in marks if m["kind"] == "request")
    assert request["endpoint"].endswith("/api/pay") and request["status"] == 501
    # the page's own errors were the page's: the widget added none
    assert [p for p in problems if not ("payment failed" in p or "501" in p)] == []


def test_the_agents_visitor_panel_lists_the_trouble_live(
    server: Server, shops: ShopServer, chromium: Browser, contexts: list[BrowserContext]
) -> None:
    settings = SiteSettings(recording=True, recording_sample=1.0)
    shop = make_shop(server, agents=1, settings=settings, roles={0: Role.ADMIN})
    problems: list[str] = []
    agent = sign_in(new(contexts, chromium), server, next(iter(shop.agents)), problems)
    vctx = new(contexts, chromium)
    url = shops.add(f"pay-{shop.site.id}", broken_checkout(server, shop.key))
    visitor = visitor_writes(vctx, url, "Hello, I cannot pay", problems)
    visitor.wait_for_function("() => !!window.__chatserverRecorder", timeout=15000)
    item = agent.locator("#list-mine .conv-item")
    expect(item).to_have_count(1)
    item.click()
    panel = agent.locator("#visitor-panel")
    expect(panel.locator(".v-trouble")).to_have_count(0)  # nothing went wrong yet
    for _ in range(4):
        visitor.locator("#pay").click(delay=20)
    trouble = panel.locator(".v-trouble li")
    expect(panel.locator(".v-trouble h3")).to_have_text("Trouble on the site", timeout=5000)
    expect(trouble.filter(has_text="Rage clicks")).to_have_count(1)
    expect(trouble.filter(has_text="Failed request").first).to_contain_text("/api/pay (501)")
    expect(trouble.filter(has_text="JavaScript error").first).to_contain_text(
        "payment failed for order *******"
    )
    watch_link = trouble.filter(has_text="Rage clicks").locator("a")
    expect(watch_link).to_have_attribute("href", re.compile(r"^/console/sessions/r_"))
    assert [p for p in problems if not ("payment failed" in p or "501" in p)] == []

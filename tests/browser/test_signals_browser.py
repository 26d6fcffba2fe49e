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
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, expect

from chatserver.proactive import TRIGGER_KIND
from chatserver.proactive.rules import parse_rule
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Role, SiteSettings

from ..conftest import PASSWORD, Server
from .axe import serious
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


FINISHED = "Finished: this is where the visitor is now."
# What the rewind's status says, as it changes ([ms, text]), into window.__said:
# "Playing." lasts about a second, too short to be sure to read it by polling.
SAID = """el => {
  window.__said = [];
  new MutationObserver(() => window.__said.push([performance.now(), el.textContent]))
    .observe(el, { childList: true, characterData: true, subtree: true });
}"""


def rewind_body(page: Page) -> str:
    handle = page.query_selector(".rewind-view iframe")
    frame = handle.content_frame() if handle else None
    try:
        return (frame.text_content("body") or "") if frame else ""
    except Exception:  # being rebuilt
        return ""


def test_the_agent_rewinds_the_rage_clicks_before_answering(
    server: Server, shops: ShopServer, chromium: Browser, contexts: list[BrowserContext]
) -> None:
    """The issue's walk: a broken Pay button, rage clicks, a trigger offers help within
    a second or so, the visitor writes, and the agent (not an admin) watches the last
    minute inline, with the rage clicks marked, before answering."""
    settings = SiteSettings(recording=True, recording_sample=1.0)
    shop = make_shop(server, agents=1, settings=settings)
    put_rule(server, shop.site.id)
    problems: list[str] = []
    # bypass_csp: axe-core is injected as an inline script (the page's policy forbids it)
    agent_ctx = new(contexts, chromium, bypass_csp=True)
    agent = sign_in(agent_ctx, server, next(iter(shop.agents)), problems)
    visitor = watch(new(contexts, chromium).new_page(), "visitor", problems)
    visitor.goto(shops.add(f"rewind-{shop.site.id}", broken_checkout(server, shop.key)))
    visitor.wait_for_function("() => !!window.__chatserverRecorder", timeout=15000)
    visitor.wait_for_timeout(1000)  # the rage click is more than a second into the recording
    started = time.monotonic()
    for _ in range(4):
        visitor.locator("#pay").click(delay=20)
    expect(visitor.locator("chatserver-chat")).to_contain_text("Having trouble paying?")
    assert time.monotonic() - started < 3.0
    box = visitor.locator("#chatserver-input")
    box.fill("The pay button does nothing")
    box.press("Enter")

    item = agent.locator("#list-mine .conv-item")
    expect(item).to_have_count(1, timeout=10000)
    item.click()
    offer = agent.locator(".pane:not([hidden]) .rewind-open")
    expect(offer).to_be_visible(timeout=5000)
    expect(offer).to_contain_text("Rewind 60 s")
    expect(offer.locator(".rewind-count")).to_contain_text("signal")
    offer.click()
    panel = agent.locator(".pane:not([hidden]) .rewind")
    expect(panel).to_have_attribute("data-ready", "", timeout=10000)
    expect(panel.locator(".rewind-mark.signal.rage")).to_have_count(1)
    expect(panel.locator(".rewind-marks li.signal.rage")).to_contain_text("Rage click: button#pay")
    expect(panel.locator(".rewind-whole")).to_be_hidden()  # an agent: no analysts' page
    agent.wait_for_function(
        "() => { const f = document.querySelector('.rewind-view iframe');"
        " const text = f?.contentDocument?.body?.textContent || '';"
        " return /Pay now/.test(text); }",
        timeout=10000,
    )
    assert "Checkout" in rewind_body(agent)
    assert serious(agent, [".rewind"]) == []  # axe-core: the panel, as shown
    if os.environ.get("CHATSERVER_SCREENSHOTS") == "1":  # docs/img, as test_screenshots_browser
        agent.set_viewport_size({"width": 1440, "height": 900})
        agent.wait_for_timeout(500)
        docs = Path(__file__).parents[2] / "docs" / "img"
        agent.screenshot(path=str(docs / "console-rewind.png"))
    status = panel.locator(".rewind-state")
    status.evaluate(SAID)
    panel.locator(".rewind-marks li.signal.rage button").click()  # a second before it
    agent.locator(".pane:not([hidden]) .composer textarea").fill("Sorry! Try again now, please.")
    agent.locator(".pane:not([hidden]) .composer textarea").press("Enter")
    expect(visitor.locator("chatserver-chat")).to_contain_text("Try again now", timeout=5000)
    assert serious(agent, [".pane:not([hidden]) .composer"]) == []  # the reply box, joined
    # It played from a second before the rage click to where the visitor is now:
    # "Playing." then, a second or more later, "Finished" (a finish left over
    # from the first play-through, as the click came, once stopped it at once).
    expect(status).to_have_text(FINISHED)
    said = agent.evaluate("window.__said")
    (played_at, played), (ended_at, ended) = said[-2:]
    assert (played, ended) == ("Playing.", FINISHED), said
    assert ended_at - played_at >= 1000, said
    assert [p for p in problems if not ("payment failed" in p or "501" in p)] == []

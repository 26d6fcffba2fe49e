"""Co-browsing in real browsers: a visitor on the demo shop, an agent on the console page.

Two Chromium contexts (two people). The demo agent is online through a
protocol client (so the chat is assigned to them) and signs into the console
in the agent's browser, where ``/console/cobrowse/<conv>`` shows the
visitor's page live. Every frame the console page's socket receives is kept,
to prove what never reached the agent.

Set ``CHATSERVER_SCREENSHOTS=DIR`` to save screenshots of both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, Page, WebSocket, expect

from chatserver.cli import ensure_demo
from chatserver.store_sqlite import SQLiteStore
from chatserver.web.demo import DEMO_EMAIL

from ..conftest import Server
from ..redis_server import RedisServer
from .contrast import widget_contrast
from .test_demo_browser import browser, watch  # noqa: F401  (fixtures)
from .test_widget_browser import Agent

pytestmark = pytest.mark.browser

SECRET = "hunter2-SECRET-4242"


class Frames:
    """Every WebSocket frame a page receives, decoded."""

    def __init__(self, page: Page) -> None:
        self.got: list[dict[str, Any]] = []
        self.raw: list[str] = []
        page.on("websocket", self._socket)

    def _socket(self, ws: WebSocket) -> None:
        def received(payload: str | bytes) -> None:
            text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
            self.raw.append(text)
            with contextlib.suppress(ValueError):
                self.got.append(json.loads(text))

        ws.on("framereceived", received)

    def of(self, t: str) -> list[dict[str, Any]]:
        return [f for f in self.got if f.get("t") == t]


def real_problems(problems: list[str]) -> list[str]:
    """Console errors, less Chromium's note on every rebuild of the replayed page:
    rrweb opens the sandboxed iframe's document (``document.open``) to write the
    page's doctype, which a frame without ``allow-scripts`` reports as blocked
    script execution although nothing runs. That sandbox is the point."""
    note = "because the document's frame is sandboxed and the 'allow-scripts' permission"
    return [p for p in problems if not (p.startswith("agent: Blocked script") and note in p)]


def wait_for(
    check: Callable[[], bool],
    timeout: float = 8.0,
    what: str = "condition",
    pump: Page | None = None,
) -> None:
    """Poll ``check``. Playwright's sync API hands over page events (socket
    frames) only during its own calls, so polling goes through ``pump``'s
    ``wait_for_timeout`` when the check reads such events."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if pump is not None:
            pump.wait_for_timeout(50)
        else:
            time.sleep(0.05)


def shoot(page: Page, name: str) -> None:
    shots = os.environ.get("CHATSERVER_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / f"cobrowse-{name}.png"))


def replay_frame(agent_page: Page) -> Frame:
    """The replay iframe of the console page (the visitor's page rebuilt)."""
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        handle = agent_page.query_selector("[data-view] iframe")
        frame = handle.content_frame() if handle else None
        if frame is not None:
            return frame
        time.sleep(0.05)
    raise AssertionError("no replay iframe in the console page")


def replay_text(agent_page: Page, selector: str) -> str:
    try:
        el = replay_frame(agent_page).query_selector(selector)
        return (el.text_content() or "") if el else ""
    except Exception:  # the iframe is rebuilt for every page
        return ""


class People:
    """The visitor's and the agent's pages, and the demo agent's protocol client."""

    def __init__(self, browser: Browser, visitor_url: str, console_url: str, password: str) -> None:  # noqa: F811
        self.problems: list[str] = []
        self.visitor_ctx: BrowserContext = browser.new_context()
        self.agent_ctx: BrowserContext = browser.new_context()
        self.visitor = watch(self.visitor_ctx.new_page(), "visitor", self.problems)
        self.agent_page = watch(self.agent_ctx.new_page(), "agent", self.problems)
        self.frames = Frames(self.agent_page)
        self.visitor_requests: list[str] = []
        self.visitor.on("request", lambda r: self.visitor_requests.append(r.url))
        self.console_url = console_url
        self.password = password
        self.visitor_url = visitor_url

    def open_chat(self) -> None:
        """The visitor opens the shop and writes; the chat goes to the demo agent."""
        self.visitor.goto(self.visitor_url)
        self.visitor.locator("chatserver-chat .bubble").click()
        self.visitor.locator("#chatserver-input").fill("Can you help me find a shirt?")
        self.visitor.keyboard.press("Enter")

    def console(self, conv: str) -> None:
        page = self.agent_page
        page.goto(f"{self.console_url}/console/login?next=/console/cobrowse/{conv}")
        page.fill("input[name=email]", DEMO_EMAIL)
        page.fill("input[name=password]", self.password)
        page.click("button[type=submit]")
        expect(page.locator(".cobrowse-state")).to_contain_text("Not sharing")

    def ask(self) -> None:
        self.agent_page.click("[data-action=request]")
        expect(self.agent_page.locator(".cobrowse-state")).to_contain_text("Waiting")
        expect(self.visitor.locator("chatserver-chat .cb-prompt")).to_be_visible()
        expect(self.visitor.locator("chatserver-chat .cb-prompt")).to_contain_text("Anna")

    def allow(self) -> None:
        self.visitor.locator("chatserver-chat .cb-yes").click()
        expect(self.visitor.locator("chatserver-chat .cb-banner")).to_contain_text(
            "Anna (demo agent) is viewing this page"
        )
        expect(self.agent_page.locator(".cobrowse-state")).to_contain_text("Live")

    def close(self) -> None:
        self.visitor_ctx.close()
        self.agent_ctx.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    data = tmp_path / "data"
    _site, logins = asyncio.run(ensure_demo(data))
    server = Server(data).start()
    yield server, logins
    server.stop()


def test_consent_live_view_pointing_and_stop(
    demo: tuple[Server, dict[str, str]],
    browser: Browser,  # noqa: F811
) -> None:
    server, logins = demo
    expect.set_options(timeout=8000)
    agent = Agent(server, DEMO_EMAIL, logins[DEMO_EMAIL])
    people = People(browser, f"{server.url}/demo/", server.url, logins[DEMO_EMAIL])
    try:
        people.open_chat()
        conv = agent.assigned()
        people.console(conv)
        visitor, agent_page = people.visitor, people.agent_page

        # Co-browsing's own bundle is loaded only once an agent asks.
        visitor.wait_for_timeout(300)
        assert not any("/widget/cobrowse." in url for url in people.visitor_requests)

        # Declining streams nothing, and the recorder is not even loaded.
        people.ask()
        expect(visitor.locator("chatserver-chat .cb-prompt")).to_be_focused()
        shoot(visitor, "visitor-prompt")
        # #21: readable on the brand colour, and clear of the chat's composer
        assert widget_contrast(visitor, ".cb-yes") >= 4.5
        prompt = visitor.locator("chatserver-chat .cb-prompt").bounding_box()
        composer = visitor.locator("chatserver-chat .cf").bounding_box()
        assert prompt is not None and composer is not None
        assert prompt["y"] + prompt["height"] <= composer["y"], (prompt, composer)
        visitor.keyboard.press("Tab")
        visitor.keyboard.press("Enter")  # the focused "Decline" button
        expect(agent_page.locator(".cobrowse-state")).to_contain_text("declined")
        # #21: the workspace's transcript says what happened in words, not "cobrowse"
        workspace = agent_page.context.new_page()
        workspace.goto(f"{people.console_url}/console/")
        workspace.locator(f".conv-item[data-conv='{conv}']").click()
        lines = workspace.locator(".pane:not([hidden]) .entry.event span")
        expect(lines.filter(has_text="asked to see the visitor's page")).to_have_count(1)
        expect(lines.filter(has_text="The visitor declined to share their page")).to_have_count(1)
        expect(lines.filter(has_text="cobrowse")).to_have_count(0)
        workspace.close()
        expect(visitor.locator("chatserver-chat .cb-prompt")).to_have_count(0)
        visitor.click("[data-add=linen-shirt]")
        agent_page.wait_for_timeout(800)  # and hand over the frames meanwhile
        assert people.frames.of("cobrowse_events") == []
        assert not any("/widget/recorder." in url for url in people.visitor_requests)
        assert visitor.evaluate("typeof window.__chatserverRecorder") == "undefined"
        assert len([u for u in people.visitor_requests if "/widget/cobrowse." in u]) == 1

        # Allowed: the visitor's page appears, and their change shows in it.
        people.ask()
        people.allow()
        wait_for(lambda: replay_text(agent_page, "h1") == "New this season", what="the view")
        count = replay_text(agent_page, "#cart-count")
        visitor.click("[data-add=canvas-bag]")
        expect(visitor.locator("#cart-count")).not_to_have_text(count)
        wanted = visitor.locator("#cart-count").text_content()
        wait_for(lambda: replay_text(agent_page, "#cart-count") == wanted, what="the cart count")
        # The chat itself is never in the view.
        assert replay_frame(agent_page).query_selector("chatserver-chat .cb-banner") is None

        # Navigation: the next page resumes with a fresh snapshot.
        visitor.locator("h2 a").first.click()
        expect(visitor).to_have_url(f"{server.url}/demo/product/linen-shirt")
        expect(visitor.locator("chatserver-chat .cb-banner")).to_be_visible()
        wait_for(lambda: replay_text(agent_page, "h1") == "Linen shirt", what="the product page")
        expect(agent_page.locator("[data-url]")).to_contain_text("/demo/product/linen-shirt")

        # The agent points and highlights: the visitor sees both.
        view = agent_page.locator("[data-view]")
        box = view.bounding_box()
        assert box is not None
        agent_page.mouse.move(box["x"] + 60, box["y"] + 60)
        agent_page.mouse.move(box["x"] + 80, box["y"] + 90)
        cursor = visitor.locator("chatserver-chat .cb-cursor")
        expect(cursor).to_be_visible()
        expect(cursor).to_contain_text("Anna (demo agent)")
        button = replay_frame(agent_page).query_selector("[data-add=linen-shirt]")
        assert button is not None
        target = button.bounding_box()  # in the console page's coordinates
        assert target is not None
        agent_page.mouse.click(
            target["x"] + target["width"] / 2, target["y"] + target["height"] / 2
        )
        outline = visitor.locator("chatserver-chat .cb-hl")
        expect(outline).to_be_visible()
        shoot(visitor, "visitor-pointer-highlight")
        shoot(agent_page, "agent-view")
        shown = outline.bounding_box()
        real = visitor.locator("[data-add=linen-shirt]").bounding_box()
        assert shown and real
        assert abs(shown["x"] + 4 - real["x"]) < 3 and abs(shown["y"] + 4 - real["y"]) < 3
        assert (
            visitor.evaluate(
                "getComputedStyle(document.querySelector('chatserver-chat').shadowRoot"
                ".querySelector('.cb-hl')).pointerEvents"
            )
            == "none"
        )

        # A masked input: the secret never reaches the agent's page.
        visitor.evaluate(
            """() => {
              const form = document.createElement('form');
              form.innerHTML = '<input id="coupon" name="coupon"><input id="pw" type="password">';
              document.querySelector('main').append(form);
            }"""
        )
        wait_for(lambda: replay_frame(agent_page).query_selector("#coupon") is not None)
        visitor.fill("#coupon", SECRET)
        visitor.type("#pw", SECRET)
        wait_for(
            lambda: (
                (replay_frame(agent_page).eval_on_selector("#coupon", "e => e.value") or "")
                == "*" * len(SECRET)
            ),
            what="the masked value",
        )
        agent_page.wait_for_timeout(500)
        assert SECRET not in agent_page.content()
        assert SECRET not in replay_frame(agent_page).content()
        assert not [raw for raw in people.frames.raw if SECRET in raw]

        # The visitor stops: both sides end, and nothing more is streamed.
        visitor.locator("chatserver-chat .cb-banner button").click()
        expect(visitor.locator("chatserver-chat .cb-banner")).to_have_count(0)
        expect(agent_page.locator(".cobrowse-state")).to_contain_text("ended")
        sent = len(people.frames.of("cobrowse_events"))
        visitor.click("[data-add=linen-shirt]")
        agent_page.wait_for_timeout(800)
        assert len(people.frames.of("cobrowse_events")) == sent

        # The agent stops: both sides end as well.
        people.ask()
        people.allow()
        agent_page.click("[data-action=stop]")
        expect(agent_page.locator(".cobrowse-state")).to_contain_text("ended")
        expect(visitor.locator("chatserver-chat .cb-banner")).to_have_count(0)
        agent_page.wait_for_timeout(300)
        sent = len(people.frames.of("cobrowse_events"))
        visitor.click("[data-add=linen-shirt]")
        agent_page.wait_for_timeout(800)
        assert len(people.frames.of("cobrowse_events")) == sent
        # and the visitor's next page does not resume it
        visitor.reload()
        expect(visitor.locator("chatserver-chat .bubble")).to_be_visible()
        visitor.wait_for_timeout(500)
        expect(visitor.locator("chatserver-chat .cb-banner")).to_have_count(0)
        assert visitor.evaluate(
            "sessionStorage.length === 0 || !Object.keys(sessionStorage)"
            ".some(k => k.endsWith(':cobrowse'))"
        )
        assert real_problems(people.problems) == []
    finally:
        people.close()
        agent.close()


async def _recording_demo(data: Path) -> dict[str, str]:
    """The demo site, with session recording on."""
    site, logins = await ensure_demo(data)
    store = SQLiteStore(data / "chatserver.db")
    await store.start()
    try:
        await store.save_site(replace(site, settings=replace(site.settings, recording=True)))
    finally:
        await store.close()
    return logins


def test_a_recorded_visit_shares_its_recorder(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
) -> None:
    """On a site that records, co-browsing uses the running recorder: one rrweb,
    one recorder bundle, the recording goes on and the agent sees the page."""
    with ThreadPoolExecutor(1) as pool:
        logins = pool.submit(lambda: asyncio.run(_recording_demo(tmp_path / "d"))).result()
    server = Server(tmp_path / "d").start()
    expect.set_options(timeout=8000)
    agent = Agent(server, DEMO_EMAIL, logins[DEMO_EMAIL])
    people = People(browser, f"{server.url}/demo/", server.url, logins[DEMO_EMAIL])
    recs: list[str] = []
    people.visitor.on(
        "websocket",
        lambda ws: ws.on(
            "framesent",
            lambda p: recs.append(p) if isinstance(p, str) and p.startswith('{"t":"rec"') else None,
        ),
    )
    try:
        people.open_chat()
        conv = agent.assigned()
        wait_for(lambda: bool(recs), 20, "the recording's first batch", pump=people.visitor)
        people.console(conv)
        people.ask()
        people.allow()
        wait_for(lambda: replay_text(people.agent_page, "h1") == "New this season")
        people.visitor.click("[data-add=canvas-bag]")
        wanted = people.visitor.locator("#cart-count").text_content()
        wait_for(lambda: replay_text(people.agent_page, "#cart-count") == wanted, what="the cart")
        loaded = [u for u in people.visitor_requests if "/widget/recorder." in u]
        assert len(loaded) == 1, loaded
        before = len(recs)
        people.agent_page.click("[data-action=stop]")
        expect(people.visitor.locator("chatserver-chat .cb-banner")).to_have_count(0)
        people.visitor.click("[data-add=canvas-bag]")
        wait_for(lambda: len(recs) > before, 20, "the recording going on", pump=people.visitor)
        assert real_problems(people.problems) == []
    finally:
        people.close()
        agent.close()
        server.stop()


def test_visitor_and_agent_on_two_processes(
    tmp_path: Path,
    redis: RedisServer,
    browser: Browser,  # noqa: F811
) -> None:
    # On a thread: Playwright's sync API keeps an event loop running here.
    with ThreadPoolExecutor(1) as pool:
        _site, logins = pool.submit(
            lambda: asyncio.run(ensure_demo(tmp_path / "a", redis_url=redis.url))
        ).result()
    a = Server(tmp_path / "a", "--redis", redis.url).start()
    b = Server(tmp_path / "b", "--redis", redis.url).start()
    expect.set_options(timeout=8000)
    agent = Agent(b, DEMO_EMAIL, logins[DEMO_EMAIL])
    people = People(browser, f"{a.url}/demo/", b.url, logins[DEMO_EMAIL])
    try:
        people.open_chat()
        conv = agent.assigned()
        people.console(conv)
        # In Catalan: the prompt's and banner's strings come with the co-browse bundle.
        people.visitor.evaluate("""$chat.push(["locale", "ca"])""")
        people.agent_page.click("[data-action=request]")
        prompt = people.visitor.locator("chatserver-chat .cb-prompt")
        expect(prompt).to_contain_text("Anna (demo agent) voldria veure aquesta pàgina")
        expect(prompt.locator(".cb-yes")).to_have_text("Permet")
        prompt.locator(".cb-yes").click()
        expect(people.visitor.locator("chatserver-chat .cb-banner")).to_contain_text(
            "Anna (demo agent) està veient aquesta pàgina"
        )
        wait_for(lambda: replay_text(people.agent_page, "h1") == "New this season", what="the view")
        people.visitor.click("[data-add=linen-shirt]")
        wanted = people.visitor.locator("#cart-count").text_content()
        wait_for(lambda: replay_text(people.agent_page, "#cart-count") == wanted, what="the cart")
        box = people.agent_page.locator("[data-view]").bounding_box()
        assert box is not None
        people.agent_page.mouse.move(box["x"] + 50, box["y"] + 50)
        people.agent_page.mouse.move(box["x"] + 70, box["y"] + 80)
        expect(people.visitor.locator("chatserver-chat .cb-cursor")).to_be_visible()
        people.agent_page.click("[data-action=stop]")
        expect(people.visitor.locator("chatserver-chat .cb-banner")).to_have_count(0)
        assert real_problems(people.problems) == []
    finally:
        people.close()
        agent.close()
        a.stop()
        b.stop()

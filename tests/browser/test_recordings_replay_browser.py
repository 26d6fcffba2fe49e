"""The analysts' pages in Chromium: a visitor recorded on the demo shop, then
the session list and the replay page (recordings/pages.py, static/replay.js).

The visitor's tab records for real (the widget's recorder, its ``rec``
frames, the server's ingest); the analyst signs into the console in another
browser context.  ``test_first_frame_of_a_ten_minute_session`` measures the
figure in docs/recordings.md (run with ``-s`` to see it).  Set
``CHATSERVER_SCREENSHOTS=DIR`` to save screenshots of the list and the replay.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from chatserver.security import hash_password
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Role

from ..conftest import Server
from .test_cobrowse_browser import _recording_demo, real_problems, wait_for
from .test_demo_browser import browser, watch  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

ANALYST = "analyst@demo.test"
PASSWORD = "analyst-pass-123"


async def _demo_with_analyst(data: Path) -> str:
    """The demo site recording, with an analyst; the site's key."""
    await _recording_demo(data)
    store = SQLiteStore(data / "chatserver.db")
    await store.start()
    try:
        demo_agent = next(iter(await store.list_sites()))
        await store.create_agent(
            demo_agent.id, ANALYST, "Ada (analyst)", hash_password(PASSWORD), Role.ANALYST, 0, ()
        )
        return demo_agent.key
    finally:
        await store.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    with ThreadPoolExecutor(1) as pool:
        key = pool.submit(lambda: asyncio.run(_demo_with_analyst(tmp_path / "d"))).result()
    server = Server(tmp_path / "d").start()
    yield server, key
    server.stop()


def sign_in(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/console/login")
    page.fill("input[name=email]", ANALYST)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/console/sessions$"))


def shoot(page: Page, name: str) -> None:
    """A screenshot in ``$CHATSERVER_SCREENSHOTS``, when set."""
    shots = os.environ.get("CHATSERVER_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / f"replay-{name}.png"))


def replay_body(page: Page) -> str:
    handle = page.query_selector("[data-view] iframe")
    frame = handle.content_frame() if handle else None
    try:
        return (frame.text_content("body") or "") if frame else ""
    except Exception:  # rebuilt for a new page
        return ""


def test_list_and_replay_of_a_recorded_visit(
    demo: tuple[Server, str],
    browser: Browser,  # noqa: F811
) -> None:
    server, _key = demo
    expect.set_options(timeout=10000)
    problems: list[str] = []
    visitor_ctx = browser.new_context()
    analyst_ctx = browser.new_context()
    try:
        visitor = watch(visitor_ctx.new_page(), "visitor", problems)
        recs: list[str] = []
        visitor.on(
            "websocket",
            lambda ws: ws.on(
                "framesent",
                lambda p: recs.append(p) if isinstance(p, str) and '"t":"rec"' in p else None,
            ),
        )
        visitor.goto(f"{server.url}/demo/")
        wait_for(lambda: bool(recs), 20, "the first batch", pump=visitor)
        visitor.click("[data-add=canvas-bag]")
        visitor.click("h2 a[href='/demo/product/canvas-bag']")
        expect(visitor.locator("h1")).to_have_text("Canvas tote bag")
        visitor.click("[data-add=canvas-bag]")

        analyst = watch(analyst_ctx.new_page(), "analyst", problems)
        sign_in(analyst, server)

        def listed() -> bool:
            analyst.reload()
            row = analyst.locator("table.sessions tbody tr").first
            if not row.count():
                return False
            cells = row.locator("td").all_text_contents()
            return cells[2] == "2" and int(cells[3]) >= 2

        wait_for(listed, 40, "the session listed with 2 pages and 2 clicks", pump=visitor)
        cells = analyst.locator("table.sessions tbody tr").first.locator("td").all_text_contents()
        shoot(analyst, "list")
        assert cells[5] == "no"
        analyst.locator("table.sessions tbody tr").first.locator("a").first.click()
        expect(analyst.locator("#replay[data-ready]")).to_have_count(1)
        wait_for(lambda: "New this season" in replay_body(analyst), 10, "the demo page replayed")
        sandbox = analyst.get_attribute("[data-view] iframe", "sandbox") or ""
        assert "allow-scripts" not in sandbox and "allow-same-origin" in sandbox
        expect(analyst.locator(".replay-mark.page")).to_have_count(2)
        assert analyst.locator(".replay-mark.click").count() >= 2
        expect(analyst.locator("[data-url]")).to_have_text(f"{server.url}/demo/")
        analyst.locator(".replay-mark.page").nth(1).click()
        expect(analyst.locator("[data-url]")).to_have_text(f"{server.url}/demo/product/canvas-bag")
        wait_for(lambda: "Canvas tote bag" in replay_body(analyst), 10, "the product page")
        shoot(analyst, "replay")
        analyst.select_option("[data-speed]", "8")
        analyst.click("[data-action=play]")
        expect(analyst.locator("[data-state]")).to_have_text(re.compile("Playing|Finished"))
        assert real_problems([p.replace("analyst:", "agent:") for p in problems]) == []
    finally:
        visitor_ctx.close()
        analyst_ctx.close()


# -- the figure: first frame of a 10-minute session ------------------------------------


def stretched(events: list[dict[str, Any]], minutes: float, batch: int = 300) -> list[list[Any]]:
    """``events`` (one real recorded visit) repeated and spread over ``minutes``:
    its full snapshot first, then its incremental events again and again at a
    steady pace, in batches of ``batch`` events."""
    start = events[0]["timestamp"]
    head = [e for e in events if e["type"] in (2, 4)][:2]
    # Pointer moves, clicks and scrolls (no DOM mutations, whose node ids
    # would clash when repeated).
    light = (1, 2, 3, 6)
    body = [e for e in events if e["type"] == 3 and e["data"].get("source") in light]
    assert body, "the visit recorded no pointer events"
    total = minutes * 60_000
    every = 100.0  # ms between events: 6000 events in 10 minutes
    out: list[dict[str, Any]] = [{**e, "timestamp": start} for e in head]
    i = 0
    t = start + every
    while t < start + total:
        out.append({**body[i % len(body)], "timestamp": t})
        i += 1
        t += every
    return [out[k : k + batch] for k in range(0, len(out), batch)]


@pytest.mark.slow
def test_first_frame_of_a_ten_minute_session(
    demo: tuple[Server, str],
    browser: Browser,  # noqa: F811
) -> None:
    server, key = demo
    expect.set_options(timeout=20000)
    ctx = browser.new_context()
    try:
        visitor = ctx.new_page()
        recs: list[str] = []
        visitor.on(
            "websocket",
            lambda ws: ws.on(
                "framesent",
                lambda p: recs.append(p) if isinstance(p, str) and '"t":"rec"' in p else None,
            ),
        )
        visitor.goto(f"{server.url}/demo/")
        wait_for(lambda: bool(recs), 20, "the first batch", pump=visitor)
        visitor.click("[data-add=canvas-bag]")
        real = click_batch(visitor, recs)
        assert any(e["type"] == 2 for e in real)
        batches = stretched(real, 10)
        with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
            rec_id = pool.submit(lambda: asyncio.run(_ingest(server, key, batches))).result()

        page = ctx.new_page()
        sign_in(page, server)
        t0 = time.monotonic()
        page.goto(f"{server.url}/console/sessions/{rec_id}")
        expect(page.locator("#replay[data-ready]")).to_have_count(1)
        wait_for(lambda: "New this season" in replay_body(page), 20, "the first frame")
        first_frame = time.monotonic() - t0
        loaded = page.evaluate(
            "performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('/events')).map(e => e.transferSize)"
        )
        print(
            f"\nfirst frame of a 10-minute session: {first_frame * 1000:.0f} ms, "
            f"{len(batches)} batches, event requests {loaded}"
        )
        assert first_frame < 10
        assert len(loaded) == 1  # one slice of 60 s, not the 10 minutes
        # Playing fetches the next slices lazily (after_seq), and the clock moves.
        page.select_option("[data-speed]", "8")
        page.click("[data-action=play]")
        wait_for(
            lambda: page.evaluate(
                "performance.getEntriesByType('resource')"
                ".some(e => e.name.includes('/events?after_seq='))"
            ),
            20,
            "a lazily loaded slice",
        )
        expect(page.locator("[data-clock]")).not_to_have_text(re.compile(r"^0:00 /"))
    finally:
        ctx.close()


async def _ingest(server: Server, key: str, batches: list[list[Any]]) -> str:
    """Store ``batches`` through the real ingest (a visitor's ``rec`` frames)."""
    from ..conftest import Client

    rec = "bench_" + secrets.token_hex(6)
    visitor = await Client.visitor(server, key)
    size = int(visitor.welcome["limits"]["max_frame_bytes"]) // 2
    try:
        for seq, events in enumerate(batches):
            now = events[0]["timestamp"]
            text = json.dumps(events)
            if len(text) < size:
                frames = [{"events": events}]
            else:  # too big for one frame: in parts, like the widget
                cut = [text[i : i + size] for i in range(0, len(text), size)]
                frames = [{"part": i, "parts": len(cut), "data": c} for i, c in enumerate(cut)]
            for extra in frames:
                reply = await visitor.request(
                    {"t": "rec", "session": rec, "seq": seq, "now": now, **extra}, timeout=30
                )
                assert reply["t"] != "error", reply
    finally:
        await visitor.close()
    return rec


def click_batch(visitor: Page, recs: list[str]) -> list[dict[str, Any]]:
    """The events sent so far, once they include the click just made.

    The recorder sends its batch every 3 s (widget/src/recorder-upload.js), so
    the click's events leave the tab up to 3 s after it.  A fixed 3 s wait
    raced that timer: it started a fraction of a second after the batch before
    it left, so a tab slowed by a loaded machine sent the click's batch just
    after the wait ended, and the test found no pointer events.
    """

    def sent() -> list[dict[str, Any]]:
        return [e for f in recs for e in batch_events(json.loads(f))]

    def clicked() -> bool:  # rrweb's mouse interaction (source 2): the click's own event
        return any(e["type"] == 3 and e["data"].get("source") == 2 for e in sent())

    wait_for(clicked, 20, "the click's batch", pump=visitor)
    return sent()


def batch_events(frame: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of one whole ``rec`` frame: a list, or its own JSON text."""
    if frame.get("events"):
        return list(frame["events"])
    if frame.get("parts", 1) == 1 and isinstance(frame.get("data"), str):
        return list(json.loads(frame["data"]))
    return []


def test_skip_inactivity_skips_a_long_idle_stretch(
    demo: tuple[Server, str],
    browser: Browser,  # noqa: F811
) -> None:
    """#21: a visitor idle for 3.5 minutes; with "Skip inactivity" (on by default) the
    replay reaches their return in seconds, not in 3.5 minutes of real time."""
    server, key = demo
    ctx = browser.new_context()
    try:
        visitor = ctx.new_page()
        recs: list[str] = []
        visitor.on(
            "websocket",
            lambda ws: ws.on(
                "framesent",
                lambda p: recs.append(p) if isinstance(p, str) and '"t":"rec"' in p else None,
            ),
        )
        visitor.goto(f"{server.url}/demo/")
        wait_for(lambda: bool(recs), 20, "the first batch", pump=visitor)
        visitor.click("[data-add=canvas-bag]")
        real = click_batch(visitor, recs)
        start = real[0]["timestamp"]
        head = [{**e, "timestamp": start} for e in real if e["type"] in (2, 4)][:2]
        moves = [e for e in real if e["type"] == 3 and e["data"].get("source") in (1, 2, 6)]
        assert moves, "the visit recorded no pointer events"
        before = [{**moves[i % len(moves)], "timestamp": start + 500 * (i + 1)} for i in range(8)]
        back = start + 215_000  # 3 min 35 s later
        after = [{**moves[i % len(moves)], "timestamp": back + 500 * i} for i in range(8)]
        # Meanwhile the page changes by itself (a carousel, a clock): DOM mutations
        # every 2 s, which are not the visitor's doing, so they are still inactivity.
        empty = {"source": 0, "texts": [], "attributes": [], "removes": [], "adds": []}
        idle = [{"type": 3, "data": empty, "timestamp": t} for t in range(start + 6000, back, 2000)]
        stream = head + before + idle + after
        batches = [stream[i : i + 20] for i in range(0, len(stream), 20)]
        with ThreadPoolExecutor(1) as pool:
            rec_id = pool.submit(lambda: asyncio.run(_ingest(server, key, batches))).result()
        page = ctx.new_page()
        sign_in(page, server)
        page.goto(f"{server.url}/console/sessions/{rec_id}")
        expect(page.locator("#replay[data-ready]")).to_have_count(1)
        expect(page.locator("[data-skip]")).to_be_checked()
        page.click("[data-action=play]")
        # 3:35 of recording at speed 1 would take 215 s; skipping, a few seconds.
        expect(page.locator("[data-clock]")).to_have_text(re.compile(r"^3:[34]\d /"), timeout=15000)
    finally:
        ctx.close()

"""Session recording in a real browser, on the demo shop.

A visitor with recording on opens the shop's home page, adds a product to
the cart, follows the cart link to the checkout page and types a secret into
the delivery form (a plain text field and the card number field). The
index must show the recording with its 2 pages and the clicks within
seconds, the replay API must serve it from a full snapshot, and the secret
must appear nowhere in what the server stored: not in the segment's frames
(inflated and searched), not in the blob directory, not in the SQLite file.

``CHATSERVER_RECORDING_FIXTURE=FILE`` saves the recorded batches (as the
server stored them, gzip'd JSON) for the compression measurements in
``bench/``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

from chatserver.cli import ensure_demo
from chatserver.security import hash_password
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Role
from recordings import format as fmt

from ..conftest import PASSWORD, Server
from .test_demo_browser import browser, watch  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

SECRET = "Zebra-Quartz-4471"
CARD = "4111 1111 1111 1111"
ANALYST = "analyst@demo.shop"


@pytest.fixture
def recorded_demo(tmp_path: Path) -> Iterator[Server]:
    """The demo site with recording on for every visit, and an analyst."""
    data = tmp_path / "data"
    site, _ = asyncio.run(ensure_demo(data))

    async def setup() -> None:
        store = SQLiteStore(data / "chatserver.db")
        await store.start()
        try:
            settings = dataclasses.replace(site.settings, recording=True, recording_sample=1.0)
            await store.save_site(dataclasses.replace(site, settings=settings))
            await store.create_agent(site.id, ANALYST, "Ada", hash_password(PASSWORD), Role.ANALYST)
        finally:
            await store.close()

    asyncio.run(setup())
    server = Server(data).start()
    yield server
    server.stop()


def _api(server: Server) -> httpx.Client:
    r = httpx.post(f"{server.url}/api/login", json={"email": ANALYST, "password": PASSWORD})
    r.raise_for_status()
    return httpx.Client(
        base_url=f"{server.url}/console/api/recordings",
        headers={"Authorization": f"Bearer {r.json()['token']}"},
    )


def _wait_for(
    api: httpx.Client, ok: Any, timeout: float = 30.0, page: Page | None = None
) -> dict[str, Any]:
    """The newest recording once ``ok`` says so; waits on ``page`` when given (its
    routed sockets are served only while Playwright's calls run)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = api.get("/").json()["recordings"]
        if last and ok(last[0]):
            return dict(last[0])
        if page is not None:
            page.wait_for_timeout(500)
        else:
            time.sleep(0.5)
    root = str(api.base_url).split("/console/")[0]
    raise AssertionError(f"the index never got there: {last}; {httpx.get(f'{root}/healthz').text}")


def test_a_visit_is_recorded_indexed_and_masked(
    recorded_demo: Server,
    browser: Browser,  # noqa: F811
) -> None:
    server = recorded_demo
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = watch(context.new_page(), "visitor", problems)
    page.goto(f"{server.url}/demo/")
    expect(page.locator("chatserver-chat")).to_be_attached(timeout=15000)
    page.wait_for_function("() => !!window.__chatserverRecorder", timeout=15000)
    page.locator("button[data-add=canvas-bag]").click()
    page.get_by_role("link", name="Cart").click()
    page.wait_for_url("**/demo/checkout")
    page.wait_for_function("() => !!window.__chatserverRecorder", timeout=15000)
    page.locator("#delivery [name=name]").click()
    page.locator("#delivery [name=name]").press_sequentially(SECRET, delay=20)
    page.locator("#delivery [name=card]").fill(CARD)
    page.locator("#delivery [name=note]").fill(f"{SECRET} in the note")
    page.get_by_role("heading", name="Your cart").click()

    with _api(server) as api:
        rec = _wait_for(api, lambda r: r["pages"] == 2 and r["clicks"] >= 4 and r["inputs"] >= 2)
        assert rec["duration"] > 0 and rec["events"] > 10
        assert rec["raw_bytes"] > rec["bytes"] > 0
        one = api.get(f"/{rec['id']}").json()
        urls = [m["url"] for m in one["marks"] if m["kind"] == "page"]
        assert urls == [f"{server.url}/demo/", f"{server.url}/demo/checkout"]
        clicks = [m for m in one["marks"] if m["kind"] == "click"]
        assert clicks[0]["text"] == "Add to cart" and "button.add" in clicks[0]["selector"]
        assert any(c["text"].startswith("Cart") for c in clicks)
        snapshots = [m for m in one["marks"] if m["kind"] == "snapshot"]
        assert len(snapshots) >= 2  # one per page load
        # seeking into the checkout page starts at its full snapshot
        got = api.get(f"/{rec['id']}/events", params={"from": snapshots[-1]["ts"] + 1}).json()
        assert [e["type"] for e in got["events"][:2]] == [4, 2]
        assert got["events"][0]["data"]["href"].endswith("/demo/checkout")
        # someone who is not an analyst cannot read it
        assert httpx.get(f"{server.url}/console/api/recordings/").status_code == 401

    context.close()

    # The secret is nowhere in what the server stored.
    blobs = server.data / "blobs"
    segments = list(blobs.rglob("*.seg"))  # a directory appends in place
    assert len(segments) == 1
    data = segments[0].read_bytes()
    frames = list(fmt.scan(data))
    batches = [json.loads(fmt.payload(data, f)) for f in frames]
    text = json.dumps(batches)
    # The card as typed ("4111" alone is also in some millisecond timestamps).
    assert "Zebra" not in text and "4111 1111" not in text and "the note" not in text
    assert "*" * len(SECRET) in text  # the name field, masked keystroke by keystroke
    for path in [*blobs.rglob("*"), *server.data.glob("chatserver.db*")]:
        if path.is_file():
            raw = path.read_bytes()
            assert SECRET.encode() not in raw and b"4111 1111" not in raw, path
    assert problems == []
    fixture = os.environ.get("CHATSERVER_RECORDING_FIXTURE")
    if fixture:
        Path(fixture).write_bytes(gzip.compress(json.dumps(batches).encode(), mtime=0))


def test_a_lost_acknowledgement_and_a_drop_store_every_batch_once(
    recorded_demo: Server,
    browser: Browser,  # noqa: F811
) -> None:
    """The first ``recorded`` reply is lost and the socket drops right after it: the
    recorder sends that batch again after reconnecting (the server answers
    ``duplicate``), and what the visitor did while the socket was down arrives
    once it is back. Every batch is in the segment exactly once."""
    server = recorded_demo
    dropped = threading.Event()
    routes: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        routes.append(ws)
        upstream = ws.connect_to_server()

        def down(message: str | bytes) -> None:
            text = message if isinstance(message, str) else message.decode()
            if not dropped.is_set() and '"t":"recorded"' in text:
                dropped.set()  # lost on the way: the page never sees it
                return
            ws.send(message)

        upstream.on_message(down)

    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.route_web_socket(re.compile(r"/ws$"), route)
    page = watch(context.new_page(), "visitor", problems)
    page.goto(f"{server.url}/demo/")
    page.wait_for_function("() => !!window.__chatserverRecorder", timeout=15000)
    deadline = time.monotonic() + 20
    while not dropped.is_set() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert dropped.is_set(), "no batch was acknowledged"
    routes[-1].close(code=1001, reason="test: network down")
    for slug in ("linen-shirt", "wool-beanie", "canvas-bag"):  # while reconnecting
        page.locator(f"button[data-add={slug}]").click()
    with _api(server) as api:
        rec = _wait_for(api, lambda r: r["clicks"] >= 3 and r["pages"] == 1, page=page)
    health = httpx.get(f"{server.url}/healthz").json()["recordings"]
    assert health["duplicates"] >= 1 and health.get("refused_malformed", 0) == 0
    context.close()

    segment = next((server.data / "blobs").rglob("*.seg")).read_bytes()
    seqs = [f.seq for f in fmt.scan(segment)]
    assert seqs == sorted(set(seqs)) and seqs[0] == 0, seqs
    assert sum(f.events for f in fmt.scan(segment)) == rec["events"]
    assert len(routes) >= 2 and problems == []

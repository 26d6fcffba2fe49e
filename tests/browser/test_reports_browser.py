"""The reports page in a real browser: an analyst reads the generated week and
downloads a table as CSV (figures of tests/reports_fixture.py, worked out in
tests/contracts/test_store_reports.py)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import csv
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from chatserver.proactive.hours import HOURS_DOC
from chatserver.security import hash_password
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Role

from ..conftest import PASSWORD, Server
from ..reports_fixture import HOURS, SINCE, UNTIL, facts_rows
from .test_demo_browser import browser, watch  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

ANALYST = "analyst@reports.shop"


@pytest.fixture
def reports_server(tmp_path: Path) -> Iterator[Server]:
    data = tmp_path / "data"

    async def setup() -> None:
        store = SQLiteStore(data / "chatserver.db")
        await store.start()
        try:
            site = await store.create_site("Report shop", departments=("sales", "support"))
            a1 = await store.create_agent(site.id, "a1@reports.shop", "Ana", "x")
            a2 = await store.create_agent(site.id, "a2@reports.shop", "Bea", "x")
            await store.create_agent(site.id, ANALYST, "Ada", hash_password(PASSWORD), Role.ANALYST)
            await store.put_doc(site.id, *HOURS_DOC, HOURS.to_json())
            await store.save_facts(facts_rows(site.id, a1.id, a2.id))
        finally:
            await store.close()

    # In a thread of its own: Playwright's sync API keeps an event loop running here.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, setup()).result(timeout=60)
    server = Server(data).start()
    yield server
    server.stop()


def test_reports_page_and_csv_download(
    browser: Browser,  # noqa: F811
    reports_server: Server,
    tmp_path: Path,
) -> None:
    problems: list[str] = []
    context = browser.new_context(accept_downloads=True)
    page = watch(context.new_page(), "analyst", problems)
    page.goto(f"{reports_server.url}/console/login")
    page.fill("input[name=email]", ANALYST)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/console/sessions$"))
    page.click("nav >> text=Reports")
    page.wait_for_url(re.compile(r"/console/reports$"))
    page.fill("input[name=since]", SINCE)
    page.fill("input[name=until]", UNTIL)
    page.click("button:has-text('Show')")
    page.wait_for_url(re.compile(r"since=2026-03-02"))
    expect(page.locator('[data-metric="started"] dd').first).to_have_text("6")
    expect(page.locator('[data-metric="missed"] dd').first).to_have_text("2")
    expect(page.locator('[data-metric="first_response_median"] dd').first).to_have_text("1m 00s")
    # the charts: accessible SVG with a title, the busiest cell named in its description
    expect(page.locator("svg[role=img] title", has_text="Busiest hours")).to_have_count(1)
    assert "busiest: Mon 10:00 with 2" in (page.locator("svg desc").nth(2).text_content() or "")
    expect(page.locator("#table-comments")).to_contain_text("Too slow")
    expect(page.locator("table[data-table=agents] tbody tr")).to_have_count(2)
    shots = os.environ.get("CHATSERVER_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / "reports.png"), full_page=True)
    with page.expect_download() as info:
        page.locator("#table-agents a", has_text="CSV").click()
    download = info.value
    assert download.suggested_filename == f"agents-{SINCE}-{UNTIL}.csv"
    target = tmp_path / "agents.csv"
    download.save_as(target)
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["agent", "name", "chats"]
    assert sorted((r[1], r[2]) for r in rows[1:]) == [("Ana", "4"), ("Bea", "1")]
    assert problems == []
    context.close()

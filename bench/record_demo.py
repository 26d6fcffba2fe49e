"""Record a realistic session of the demo shop with chromium, for ``bench.ingest``.

    python -m bench.record_demo [--seconds 90] [--out bench/fixtures/demo_session.json.gz]

Starts chatserver on the demo site with recording on, drives Debian's
chromium through a visit (mouse moves, scrolling, product pages, the cart, a
form filled in) and writes the batches exactly as the server stored them
(read back from the segment) as gzip'd JSON: a list of batches, each a list
of rrweb events.  The committed fixture was made this way.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gzip
import json
import random
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from chatserver.cli import ensure_demo
from chatserver.store_sqlite import SQLiteStore
from recordings import format as fmt

from .servers import TARGETS, Cores, ServerProcess

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "demo_session.json.gz"


def _enable(data: Path) -> None:
    async def run() -> None:
        site, _ = await ensure_demo(data)
        store = SQLiteStore(data / "chatserver.db")
        await store.start()
        try:
            s = dataclasses.replace(site.settings, recording=True, recording_sample=1.0)
            await store.save_site(dataclasses.replace(site, settings=s))
        finally:
            await store.close()

    asyncio.run(run())


def _wander(page: Page, rng: random.Random, seconds: float) -> None:
    """Move the mouse about and scroll, as someone reading the page."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        page.mouse.move(rng.randint(20, 1180), rng.randint(20, 780), steps=rng.randint(5, 25))
        if rng.random() < 0.3:
            page.mouse.wheel(0, rng.choice([-300, -120, 120, 240, 400]))
        page.wait_for_timeout(rng.randint(80, 400))


def _visit(page: Page, base: str, seconds: float) -> None:
    rng = random.Random(7)
    per = seconds / 6
    page.goto(f"{base}/demo/")
    page.wait_for_function("() => !!window.__chatserverRecorder", timeout=20000)
    _wander(page, rng, per)
    page.locator("button[data-add=linen-shirt]").click()
    page.get_by_role("link", name="Merino beanie").click()
    page.wait_for_function("() => !!window.__chatserverRecorder", timeout=20000)
    _wander(page, rng, per)
    page.locator("button[data-add]").click()
    page.go_back()
    page.wait_for_function("() => !!window.__chatserverRecorder", timeout=20000)
    _wander(page, rng, per)
    page.get_by_role("link", name="Canvas tote bag").first.click()
    page.wait_for_function("() => !!window.__chatserverRecorder", timeout=20000)
    _wander(page, rng, per)
    page.get_by_role("link", name="Cart").click()
    page.wait_for_function("() => !!window.__chatserverRecorder", timeout=20000)
    _wander(page, rng, per / 2)
    page.locator("#delivery [name=name]").press_sequentially("Ada Lovelace", delay=90)
    page.locator("#delivery [name=email]").press_sequentially("ada@example.com", delay=80)
    page.locator("#delivery [name=card]").press_sequentially("4111111111111111", delay=70)
    page.locator("#delivery [name=note]").press_sequentially("Happy birthday!", delay=90)
    _wander(page, rng, per / 2)
    page.wait_for_timeout(4000)  # the last batch goes out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.record_demo", description=__doc__)
    p.add_argument("--seconds", type=float, default=90.0)
    p.add_argument("--out", type=Path, default=FIXTURE)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        _enable(data)
        server = ServerProcess(TARGETS["chatserver"], data, Cores(None, None, False)).start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
                _visit(page, server.http, args.seconds)
                browser.close()
        finally:
            server.stop()
        # The recording's chunks in seq order (<first seq>-<writer>-<n>.chk).
        raw = b"".join(p.read_bytes() for p in sorted((data / "blobs").rglob("*.chk")))
        batches = [json.loads(fmt.payload(raw, f)) for f in fmt.scan(raw)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(gzip.compress(json.dumps(batches).encode(), 9, mtime=0))
    events = sum(len(b) for b in batches)
    print(f"{args.out}: {len(batches)} batches, {events} events")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Co-browse figures: latency of a visitor's DOM change to the agent's view, and bandwidth.

    .venv/bin/python -m bench.cobrowse                 # 300 changes, then a scripted minute
    .venv/bin/python -m bench.cobrowse --changes 100 --minute 20 --redis redis://127.0.0.1:6379/0

Real parts on loopback: a chatserver process with the demo shop, two
Chromium browsers (Debian's ``/usr/bin/chromium``, Playwright): the visitor
on ``/demo/`` and the agent on ``/console/cobrowse/<conv>``, co-browsing with
consent given as a person would (the prompt's Allow button).

* **Latency**: the visitor's page changes a text every ``--every`` ms (``Date.now()``
  noted just before the change, in the visitor's page); the console page
  watches the replay iframe with a MutationObserver and notes ``Date.now()``
  when the text shows.  Both browsers read the same system clock.  Reported:
  p50, p90, p99 and max, and how many changes never showed.
* **Bandwidth**: a scripted minute of browsing (mouse moves, scrolls, adding
  to the cart, three page loads, the agent pointing now and then); the bytes
  of ``cobrowse_events`` frames the visitor's socket sent and the console's
  socket received, per minute.

With ``--redis`` the visitor and the agent use two server processes sharing
that Redis.  The demo agent is kept online (for the assignment) by a bare
protocol client.  Prints a Markdown table; ``--json`` writes the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, WebSocket, sync_playwright
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from chatserver.cli import ensure_demo
from chatserver.web.demo import DEMO_EMAIL

from .servers import ROOT, UNLIMITED, free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# In the console page: note when each tick's text shows in the replayed page.
WATCH = """() => {
  window.__seen = {};
  const iframe = document.querySelector('[data-view] iframe');
  const doc = iframe.contentDocument;
  const look = () => {
    const el = doc.getElementById('cart-count');
    const m = el && /^tick-(\\d+)$/.exec(el.textContent || '');
    if (!m) return;
    // Changes that came in one batch show together: the earlier ones count as
    // shown when the last one is.
    for (let k = Number(m[1]); k >= 0 && !(k in window.__seen); k--) window.__seen[k] = Date.now();
  };
  new MutationObserver(look).observe(doc, {subtree: true, childList: true, characterData: true});
}"""

# In the visitor's page: change the text every `every` ms, noting when.
TICK = """([n, every]) => new Promise((done) => {
  window.__ticks = {};
  let i = 0;
  const el = document.getElementById('cart-count');
  const timer = setInterval(() => {
    if (i >= n) { clearInterval(timer); done(); return; }
    window.__ticks[i] = Date.now();
    el.textContent = 'tick-' + i;
    i++;
  }, every);
})"""


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Proc:
    def __init__(self, data: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "chatserver.cli", "serve", "--port", str(self.port)]
        cmd += ["--data", str(data), "--log-level", "warning", *UNLIMITED, *extra]
        self.proc = subprocess.Popen(cmd, cwd=ROOT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class AgentOnline:
    """The demo agent, online over the protocol so the chat is assigned to them."""

    def __init__(self, url: str, password: str) -> None:
        r = httpx.post(f"{url}/api/login", json={"email": DEMO_EMAIL, "password": password})
        r.raise_for_status()
        ws_url = url.replace("http", "ws") + "/ws"
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(
            connect(ws_url, subprotocols=[Subprotocol("chatserver.json")], compression=None)
        )
        self.ws.send(
            json.dumps({"t": "hello", "v": 1, "kind": "agent", "token": r.json()["token"]})
        )
        self.conv: str | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                f = json.loads(raw)
                if f.get("t") == "conv" and f["conv"]["state"] == "active":
                    self.conv = f["conv"]["id"]
        except Exception:
            pass

    def close(self) -> None:
        self._stack.close()


def socket_bytes(page: Page, direction: str, sink: dict[str, int]) -> None:
    """Count bytes and frames of ``cobrowse_*`` frames a page's sockets send or receive."""

    def on_socket(ws: WebSocket) -> None:
        def frame(payload: str | bytes) -> None:
            text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
            if text.startswith('{"t":"cobrowse_'):
                kind = text[6 : text.index('"', 6)]
                sink[f"{kind}_bytes"] = sink.get(f"{kind}_bytes", 0) + len(text.encode())
                sink[f"{kind}_frames"] = sink.get(f"{kind}_frames", 0) + 1

        ws.on("framesent" if direction == "sent" else "framereceived", frame)

    page.on("websocket", on_socket)


def wait(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError("timed out")


def run(changes: int, every: int, minute: float, redis: str | None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-cobrowse-"))
    _site, logins = asyncio.run(ensure_demo(tmp / "a", redis_url=redis))
    password = logins[DEMO_EMAIL]
    procs = [Proc(tmp / "a", *(["--redis", redis] if redis else []))]
    if redis:
        procs.append(Proc(tmp / "b", "--redis", redis))
    shop, console = procs[0].url, procs[-1].url
    agent = AgentOnline(console, password)
    result: dict[str, Any] = {"changes": changes, "every_ms": every, "processes": len(procs)}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            visitor = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            agent_page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            sent: dict[str, int] = {}
            received: dict[str, int] = {}
            pointed: dict[str, int] = {}
            socket_bytes(visitor, "sent", sent)
            socket_bytes(agent_page, "received", received)
            socket_bytes(agent_page, "sent", pointed)

            visitor.goto(f"{shop}/demo/")
            visitor.locator("chatserver-chat .bubble").click()
            visitor.locator("chatserver-chat textarea").fill("Hello, can you show me the beanie?")
            visitor.keyboard.press("Enter")
            visitor.locator("chatserver-chat .bubble").click()  # close the panel again
            conv = wait(lambda: agent.conv)
            agent_page.goto(f"{console}/console/login?next=/console/cobrowse/{conv}")
            agent_page.fill("input[name=email]", DEMO_EMAIL)
            agent_page.fill("input[name=password]", password)
            agent_page.click("button[type=submit]")
            agent_page.click("[data-action=request]")
            visitor.locator("chatserver-chat .cb-yes").click()
            wait(lambda: agent_page.query_selector("[data-view] iframe"))
            iframe = agent_page.query_selector("[data-view] iframe")
            assert iframe is not None  # waited for just above
            frame = iframe.content_frame()
            wait(lambda: frame and frame.query_selector("#cart-count"))
            time.sleep(1.5)  # the snapshots of the start settle

            # -- latency ------------------------------------------------------
            agent_page.evaluate(WATCH)
            visitor.evaluate(TICK, [changes, every])
            time.sleep(1.0)
            ticks = visitor.evaluate("window.__ticks")
            seen = agent_page.evaluate("window.__seen")
            lat = [seen[k] - ticks[k] for k in ticks if k in seen]
            result["latency_ms"] = {
                "p50": quantile(lat, 0.5),
                "p90": quantile(lat, 0.9),
                "p99": quantile(lat, 0.99),
                "max": max(lat),
                "mean": round(statistics.mean(lat), 1),
                "missing": len(ticks) - len(lat),
            }

            # -- a scripted minute ---------------------------------------------
            sent.clear()
            received.clear()
            pointed.clear()
            start = time.monotonic()
            steps: list[Callable[[], object]] = [
                lambda: visitor.mouse.move(300, 400, steps=25),
                lambda: visitor.mouse.move(900, 300, steps=25),
                lambda: visitor.mouse.wheel(0, 400),
                lambda: visitor.click("[data-add=linen-shirt]"),
                lambda: agent_page.mouse.move(500, 500, steps=20),
                lambda: visitor.mouse.wheel(0, -400),
                lambda: visitor.locator("h2 a").nth(1).click(),
                lambda: visitor.mouse.move(600, 500, steps=30),
                lambda: visitor.click("[data-add]"),
                lambda: agent_page.mouse.move(700, 400, steps=20),
                lambda: visitor.click("#cart-count"),
                lambda: visitor.mouse.move(200, 300, steps=30),
                lambda: visitor.mouse.wheel(0, 300),
                lambda: visitor.goto(f"{shop}/demo/"),
                lambda: visitor.mouse.move(800, 600, steps=30),
            ]
            i = 0
            while time.monotonic() - start < minute:
                steps[i % len(steps)]()
                i += 1
                time.sleep(1.5)
            took = time.monotonic() - start
            per_min = 60.0 / took
            result["minute"] = {
                "seconds": round(took, 1),
                "sent_bytes_per_min": round(sent.get("cobrowse_events_bytes", 0) * per_min),
                "sent_frames_per_min": round(sent.get("cobrowse_events_frames", 0) * per_min),
                "received_bytes_per_min": round(received.get("cobrowse_events_bytes", 0) * per_min),
                "pointer_frames_per_min": round(
                    pointed.get("cobrowse_pointer_frames", 0) * per_min
                ),
                "pointer_bytes_per_min": round(pointed.get("cobrowse_pointer_bytes", 0) * per_min),
            }
            browser.close()
    finally:
        agent.close()
        for proc in procs:
            proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300, help="DOM changes timed")
    parser.add_argument("--every", type=int, default=100, help="ms between changes")
    parser.add_argument("--minute", type=float, default=60.0, help="seconds of scripted browsing")
    parser.add_argument("--redis", default=None, help="two processes on this Redis")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    opts = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing (apt-get install chromium)")
    res = run(opts.changes, opts.every, opts.minute, opts.redis)
    lat, minute = res["latency_ms"], res["minute"]
    print(f"co-browse on loopback, {res['processes']} process(es), cpus={os.cpu_count()}\n")
    print("| latency, visitor DOM change → agent's view | p50 | p90 | p99 | max | missing |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {res['changes']} changes every {res['every_ms']} ms | {lat['p50']} ms | "
        f"{lat['p90']} ms | {lat['p99']} ms | {lat['max']} ms | {lat['missing']} |"
    )
    print(
        "\n| a scripted minute | cobrowse_events sent | received by the console "
        "| frames | pointer frames |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| {minute['seconds']} s, per minute | {minute['sent_bytes_per_min'] / 1024:.0f} KB | "
        f"{minute['received_bytes_per_min'] / 1024:.0f} KB | {minute['sent_frames_per_min']} | "
        f"{minute['pointer_frames_per_min']} |"
    )
    if opts.json:
        opts.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()

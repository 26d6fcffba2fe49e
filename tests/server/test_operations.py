"""Operations end to end: /metrics, /readyz, SIGTERM, JSON logs (docs/operations.md).

Real server processes (``Server``), real WebSocket and HTTP clients, a real
redis-server that is stopped under the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import chatserver
from chatserver.logs import JsonFormatter
from chatserver.metrics import Exposition, escape_label
from chatserver.store_sqlite import SQLiteStore

from ..conftest import Client, Server, seed
from ..redis_server import RedisServer

# The async tests run on anyio and close every client they opened.
live = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

# The text exposition format 0.0.4: a sample line, a HELP line, a TYPE line.
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
_VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)"
SAMPLE = re.compile(rf"^({_NAME})(?:\{{(?:{_LABEL}(?:,{_LABEL})*)?,?\}})? {_VALUE}(?: -?\d+)?$")
HELP = re.compile(rf"^# HELP ({_NAME}) .*$")
TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")
_LABELS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples by (name, labels), checking every line against the grammar.

    Also checks that each family has its HELP and TYPE lines before its
    samples, once, and that names do not repeat a sample.
    """
    assert text.endswith("\n")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    helped: set[str] = set()
    typed: dict[str, str] = {}
    for line in text.splitlines():
        if m := HELP.match(line):
            assert m.group(1) not in helped, line
            helped.add(m.group(1))
            continue
        if m := TYPE.match(line):
            assert m.group(1) not in typed, line
            typed[m.group(1)] = m.group(2)
            continue
        m = SAMPLE.match(line)
        assert m, f"not a valid sample line: {line!r}"
        name = family = m.group(1)
        for suffix in ("_bucket", "_sum", "_count"):  # a histogram's samples
            if name.endswith(suffix) and typed.get(name[: -len(suffix)]) == "histogram":
                family = name[: -len(suffix)]
        assert family in helped and family in typed, f"{name} has no HELP/TYPE before it"
        if typed[family] == "counter":
            assert name.endswith("_total"), name
        brace = line.find("{")
        labels = (
            frozenset(_LABELS.findall(line[brace : line.rfind("}") + 1]))
            if brace > 0
            else frozenset()
        )
        key = (name, labels)
        assert key not in samples, f"repeated sample {line!r}"
        samples[key] = float(line.rsplit(" ", 1)[1])
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(server: Server, **headers: str) -> dict[Any, float]:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server.url}/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


# -- /metrics ---------------------------------------------------------------------


@live[0]
@live[1]
async def test_metrics_move_with_real_traffic(server: Server) -> None:
    shop = await seed(server.data)
    (email,) = shop.agents
    before = await scrape(server)
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    for i in range(3):
        ack = await visitor.request({"t": "send", "cid": f"m{i}", "body": f"hello {i}"})
        assert ack["t"] == "ack" and not ack["duplicate"]
    # A resent message is a duplicate, not a fourth stored one.
    dup = await visitor.request({"t": "send", "cid": "m0", "body": "hello 0"})
    assert dup["duplicate"]
    bad = await visitor.request({"t": "send", "cid": "x", "body": "y" * 5000})
    assert bad["t"] == "error"
    during = await scrape(server)

    def grew(name: str, **labels: str) -> float:
        return value(during, name, **labels) - value(before, name, **labels)

    assert grew("chatserver_messages_stored_total") == 3
    assert grew("chatserver_messages_duplicate_total") == 1
    assert grew("chatserver_frames_received_total", kind="visitor", type="send") == 4
    assert grew("chatserver_frames_received_total", kind="visitor", type="hello") == 1
    assert grew("chatserver_frames_received_total", kind="agent", type="hello") == 1
    assert grew("chatserver_errors_total", code=str(bad["code"])) == 1
    assert value(during, "chatserver_connections", kind="visitor") >= 1
    assert value(during, "chatserver_connections", kind="agent") >= 1
    assert value(during, "chatserver_agents_connected") >= 1
    assert value(during, "chatserver_channels") >= 1
    assert value(during, "chatserver_upload_budget_bytes") == 64 * 1024 * 1024

    await visitor.close()  # a normal close: 1000 from the client
    deadline = time.monotonic() + 5
    while True:
        after = await scrape(server)
        closed = value(after, "chatserver_connections_closed_total", code="1000", reason="normal")
        if (
            closed
            - value(before, "chatserver_connections_closed_total", code="1000", reason="normal")
            >= 1
        ):
            break
        assert time.monotonic() < deadline, "the close was not counted"
        await asyncio.sleep(0.05)
    assert (
        value(after, "chatserver_connections", kind="visitor")
        == value(during, "chatserver_connections", kind="visitor") - 1
    )
    await agent.close()


def test_label_values_are_escaped() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    out = Exposition()
    out.family("x_total", "counter", "help with \\ and\nnewline", [({"v": 'q"\\\n'}, 2)])
    text = out.text()
    assert text.splitlines()[0] == "# HELP x_total help with \\\\ and\\nnewline"
    samples = parse(text)
    assert samples == {("x_total", frozenset({("v", 'q\\"\\\\\\n')})): 2.0}


@live[0]
@live[1]
async def test_metrics_token(tmp_path: Path) -> None:
    server = Server(tmp_path / "s", "--metrics-token", "s3cret-token").start()
    try:
        async with httpx.AsyncClient() as http:
            plain = await http.get(f"{server.url}/metrics")
            wrong = await http.get(
                f"{server.url}/metrics", headers={"Authorization": "Bearer nope"}
            )
        assert plain.status_code == 401 and "Bearer" in plain.headers["www-authenticate"]
        assert wrong.status_code == 401
        samples = await scrape(server, Authorization="Bearer s3cret-token")
        assert (
            value(samples, "chatserver_info", version=chatserver.__version__, backend="embedded")
            == 1
        )
    finally:
        server.stop()


@live[0]
@live[1]
async def test_metrics_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATSERVER_METRICS_TOKEN", "from-env")
    server = Server(tmp_path / "s").start()  # the process inherits the environment
    try:
        assert httpx.get(f"{server.url}/metrics", timeout=5).status_code == 401
        await scrape(server, Authorization="Bearer from-env")
    finally:
        server.stop()


def _outside_address() -> str | None:
    """An address of this machine that is not loopback (None when there is none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing interface
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@live[0]
@live[1]
async def test_without_a_token_only_loopback_may_read_metrics(tmp_path: Path) -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback address")
    server = Server(tmp_path / "s", "--host", "0.0.0.0").start()
    try:
        async with httpx.AsyncClient() as http:
            far = await http.get(f"http://{outside}:{server.port}/metrics")
            health = await http.get(f"http://{outside}:{server.port}/healthz")
        assert far.status_code == 403, far.text
        assert health.status_code == 200  # only /metrics is guarded
        await scrape(server)  # 127.0.0.1
    finally:
        server.stop()


# -- /readyz ----------------------------------------------------------------------


async def _ready(server: Server) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(f"{server.url}/readyz", timeout=10)


async def _until(server: Server, status: int, seconds: float = 15) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        r = await _ready(server)
        if r.status_code == status:
            return r
        assert time.monotonic() < deadline, f"/readyz stayed {r.status_code}: {r.text}"
        await asyncio.sleep(0.1)


@live[0]
@live[1]
async def test_readyz_on_sqlite(server: Server) -> None:
    r = await _ready(server)
    assert r.status_code == 200 and r.json() == {"status": "ready"}


@live[0]
@live[1]
async def test_readyz_answers_503_while_redis_is_down(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    server = Server(tmp_path / "s", "--redis", redis.url)
    try:
        await seed(server.data, redis_url=redis.url)
        server.start()
        assert (await _ready(server)).status_code == 200
        redis.stop()
        down = await _until(server, 503)
        assert down.json()["status"] == "unavailable"
        assert re.match(r"(store|broker) ", down.json()["reason"]), down.json()
        health = httpx.get(f"{server.url}/healthz", timeout=5)
        assert health.status_code == 200  # liveness is not readiness
        redis.start()  # same port, same AOF
        await _until(server, 200)
    finally:
        server.stop()
        redis.stop()


# -- SIGTERM ----------------------------------------------------------------------


@live[0]
@live[1]
async def test_sigterm_closes_sockets_with_1001_and_keeps_acknowledged_messages(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path / "s", "--shutdown-delay", "1.5")
    try:
        await _sigterm(server)
    finally:
        server.stop()


async def _sigterm(server: Server) -> None:
    shop = await seed(server.data)
    server.start()
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    first = await visitor.request({"t": "send", "cid": "c0", "body": "m0"})
    assert first["t"] == "ack"
    conv = first["conv"]
    acked = ["m0"]

    async def writer() -> None:
        for i in range(1, 10_000):
            try:
                reply = await visitor.request(
                    {"t": "send", "cid": f"c{i}", "body": f"m{i}"}, timeout=5
                )
            except Exception:  # no reply: the socket closed
                return
            if reply.get("t") == "ack":
                acked.append(f"m{i}")

    task = asyncio.ensure_future(writer())
    await asyncio.sleep(0.3)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    # At once: not ready, while still serving (the shutdown delay).
    r = await _until(server, 503, seconds=1.0)
    assert r.json()["reason"] == "shutting down"
    for client in (visitor, agent):
        code, reason = await asyncio.wait_for(client.closed, 15)
        assert code == 1001, (code, reason)
    await task
    assert server.proc.wait(15) is not None
    assert len(acked) > 3

    # Every acknowledged message is in the file, read without the server...
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    try:
        entries = await store.entries(conv, after=0, limit=100_000, include_notes=True)
    finally:
        await store.close()
    stored = {e.body for e in entries}
    assert not set(acked) - stored, sorted(set(acked) - stored)[:5]
    # ...and the restarted server serves them.
    server.start()
    agent2 = await Client.agent(server, email)
    reply = await agent2.request({"t": "history", "conv": conv, "limit": 200})
    assert {m["body"] for m in reply["messages"] if m["kind"] == "text"} >= set(acked[-50:])


# -- logs -------------------------------------------------------------------------


@live[0]
@live[1]
async def test_json_log_lines(tmp_path: Path) -> None:
    server = Server(tmp_path / "s", "--log-format", "json", "--log-level", "info").start()
    try:
        async with httpx.AsyncClient() as http:
            await http.get(f"{server.url}/readyz")
            await http.get(f"{server.url}/no-such-page")
    finally:
        server.stop()
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    assert len(lines) >= 4
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", record["time"])
    assert any(r["logger"] == "uvicorn.access" and "/no-such-page" in r["message"] for r in records)


def test_json_formatter_carries_the_exception() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord(
            "chatserver.hub", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "ERROR" and data["logger"] == "chatserver.hub"
    assert data["message"] == "failed x"
    assert "Traceback" in data["exception"] and "boom" in data["exception"]

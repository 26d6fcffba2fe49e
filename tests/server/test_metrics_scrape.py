"""``/metrics`` read by Prometheus's own parser after real traffic (docs/operations.md).

A real server process, real WebSocket clients and a real webhook receiver;
the exposition is parsed with ``prometheus_client.parser`` (the reference
implementation of the text format), so a family that Prometheus would refuse
or read differently fails here.  The histograms' arithmetic is checked
in ``tests/unit/test_histogram.py``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..conftest import Client, Server, seed

ROOT = Path(__file__).resolve().parents[2]
live = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

HISTOGRAMS = (
    "chatserver_frame_to_ack_seconds",
    "chatserver_store_commit_seconds",
    "chatserver_broker_publish_seconds",
    "chatserver_event_loop_lag_seconds",
    "chatserver_delivery_seconds",
)


async def families(server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server.url}/metrics")
    assert r.status_code == 200, r.text
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def histogram_series(family: Any) -> dict[frozenset[tuple[str, str]], dict[str, Any]]:
    """Per label set (without ``le``): its buckets in order, ``_sum`` and ``_count``."""
    series: dict[frozenset[tuple[str, str]], dict[str, Any]] = {}
    for s in family.samples:
        labels = {k: v for k, v in s.labels.items() if k != "le"}
        one = series.setdefault(frozenset(labels.items()), {"buckets": []})
        if s.name.endswith("_bucket"):
            one["buckets"].append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_sum"):
            one["sum"] = s.value
        elif s.name.endswith("_count"):
            one["count"] = s.value
    return series


def check_histogram(family: Any) -> dict[frozenset[tuple[str, str]], dict[str, Any]]:
    assert family.type == "histogram", family.name
    assert family.name.endswith("_seconds"), family.name
    series = histogram_series(family)
    for one in series.values():
        bounds = [b for b, _ in one["buckets"]]
        counts = [c for _, c in one["buckets"]]
        assert bounds == sorted(bounds) and bounds[-1] == float("inf")
        assert counts == sorted(counts), f"{family.name}: buckets not cumulative"
        assert one["count"] == counts[-1]
        assert one["sum"] >= 0
    return series


def count_of(family: Any, **labels: str) -> float:
    one = histogram_series(family).get(frozenset(labels.items()))
    return 0.0 if one is None else float(one["count"])


@live[0]
@live[1]
async def test_histograms_and_process_metrics_after_real_traffic(server: Server) -> None:
    shop = await seed(server.data)
    (email,) = shop.agents
    started = time.time()
    before = await families(server)
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    for i in range(5):
        ack = await visitor.request({"t": "send", "cid": f"m{i}", "body": f"hello {i}"})
        assert ack["t"] == "ack"
    after = await families(server)

    for name in HISTOGRAMS:
        check_histogram(after[name])
    # Every message was committed and acknowledged: one observation each...
    for name in HISTOGRAMS[:2]:
        assert count_of(after[name]) - count_of(before[name]) == 5, name
    # ...and published, like every entry (the new conversation's system entries too).
    published = HISTOGRAMS[2]
    assert count_of(after[published]) - count_of(before[published]) >= 5
    acked = histogram_series(after["chatserver_frame_to_ack_seconds"])[frozenset()]
    assert 0 < acked["sum"] < 5 * 10  # seconds, not milliseconds
    # The loop-lag timer ticks four times a second: within a second of the
    # server's start (this test can be done sooner on a fast machine).
    deadline = time.monotonic() + 5.0
    while count_of(after["chatserver_event_loop_lag_seconds"]) < 1:
        assert time.monotonic() < deadline, "the event loop's lag was never measured"
        await asyncio.sleep(0.1)
        after = await families(server)

    # The standard process metrics, with their conventional types.
    types = {
        "process_cpu_seconds": "counter",  # the parser drops _total from a counter's name
        "process_resident_memory_bytes": "gauge",
        "process_virtual_memory_bytes": "gauge",
        "process_start_time_seconds": "gauge",
        "process_open_fds": "gauge",
        "process_max_fds": "gauge",
        "chatserver_build_info": "gauge",
    }
    for name, kind in types.items():
        assert after[name].type == kind, name

    def one(name: str) -> float:
        return float(after[name].samples[0].value)

    assert one("process_cpu_seconds") > 0
    assert one("process_resident_memory_bytes") > 10 * 1024 * 1024
    assert one("process_open_fds") >= 3  # the sockets, the database, at least
    assert 0 < started - one("process_start_time_seconds") < 600
    # The archive's index kept up with this light load: nothing waits, nothing skipped.
    assert one("chatserver_archive_batches_waiting") == 0
    assert one("chatserver_archive_skipped") == 0
    # Every family served is listed in docs/operations.md (counters under their _total name).
    doc = (ROOT / "docs" / "operations.md").read_text()
    for fam in after.values():
        name = f"{fam.name}_total" if fam.type == "counter" else fam.name
        assert f"`{name}`" in doc, f"{name} is not in docs/operations.md"
    (build,) = after["chatserver_build_info"].samples
    assert build.value == 1 and build.labels["version"] and build.labels["python"].count(".") == 2
    # The server runs on uvloop (a dependency; --loop auto) where it is installed.
    assert build.labels["loop"] == "uvloop"
    await visitor.close()
    await agent.close()


@live[0]
@live[1]
async def test_client_chosen_close_codes_fall_into_bounded_buckets(server: Server) -> None:
    shop = await seed(server.data)
    codes = (4321, 4322, 4999, 3001, 3999, 1000)
    for code in codes:
        visitor = await Client.visitor(server, shop.key)
        await visitor.ws.close(code)
    expect = {("4000-4999", "other"): 3, ("3000-3999", "other"): 2, ("1000", "normal"): 1}
    deadline = time.monotonic() + 5
    while True:
        fam = (await families(server))["chatserver_connections_closed"]
        got = {(s.labels["code"], s.labels["reason"]): s.value for s in fam.samples}
        if all(got.get(k, 0) >= v for k, v in expect.items()):
            break
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.05)
    assert not any(code in {"4321", "4322", "4999", "3001", "3999"} for code, _ in got)

"""Histograms and their exposition (``chatserver/histogram.py``, ``metrics.py``).

The text is read back with ``prometheus_client.parser``, Prometheus's
reference parser; the outbox's delivery timings come from a real outbox
running real jobs on a real SQLite store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatserver.histogram import Histogram
from chatserver.mail.message import Mail
from chatserver.mail.queue import OutboxQueue
from chatserver.mail.send import MailRejected, MailRetry
from chatserver.metrics import Exposition, Metrics, close_bucket, close_name
from chatserver.outbox import Outbox, OutboxConfig
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import SiteId


def test_a_value_on_a_bound_counts_in_that_bucket() -> None:
    h = Histogram((0.1, 0.5, 1.0))
    for v in (0.0, 0.1, 0.10001, 0.5, 0.7, 1.0, 3.0, 3.0):
        h.observe(v)
    assert h.counts == [2, 2, 2, 2]  # le 0.1, le 0.5, le 1, +Inf
    assert h.cumulative() == [(0.1, 2), (0.5, 4), (1.0, 6), (float("inf"), 8)]
    assert h.count == 8
    assert h.sum == pytest.approx(8.40001)


def test_bounds_must_increase() -> None:
    for bad in ((), (1.0, 0.5), (0.5, 0.5)):
        with pytest.raises(ValueError):
            Histogram(bad)


def test_exposition_reads_back_in_prometheus_parser() -> None:
    h = Histogram((0.005, 0.25))
    for v in (0.001, 0.2, 0.2, 9.0):
        h.observe(v)
    out = Exposition()
    out.histogram("x_seconds", "what x took", [({}, h)])
    out.histogram("y_seconds", "per kind", [({"kind": 'a"b'}, h), ({"kind": "c"}, Histogram())])
    (x, y) = text_string_to_metric_families(out.text())
    assert (x.name, x.type, x.documentation) == ("x_seconds", "histogram", "what x took")
    got = {(s.name, s.labels.get("le")): s.value for s in x.samples}
    assert got == {
        ("x_seconds_bucket", "0.005"): 1,
        ("x_seconds_bucket", "0.25"): 3,
        ("x_seconds_bucket", "+Inf"): 4,
        ("x_seconds_sum", None): pytest.approx(9.401),
        ("x_seconds_count", None): 4,
    }
    kinds = {s.labels["kind"] for s in y.samples}
    assert kinds == {'a"b', "c"}
    empty = [s for s in y.samples if s.labels["kind"] == "c"]
    assert {s.value for s in empty} == {0}


def test_close_codes_outside_ours_are_bucketed() -> None:
    assert close_bucket(4100) == "4100" and close_name(4100) == "protocol_violation"
    assert close_bucket(1001) == "1001" and close_name("1001") == "going_away"
    assert close_bucket(4567) == "4000-4999" and close_name("4000-4999") == "other"
    assert close_bucket(3000) == "3000-3999"
    assert close_bucket(1004) == "1000-2999"
    assert close_bucket(0) == close_bucket(70000) == "other"
    m = Metrics()
    for code in range(4000, 5000):
        m.closed(code)
    assert len(m.closes) < 20  # ours, one by one, and one bucket for the rest


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_outbox_attempts_are_timed_by_kind_and_outcome(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    await store.start()
    metrics = Metrics()
    outbox = Outbox(store, OutboxConfig(retry_base=0.01, retry_cap=0.02, poll=0.02))
    outbox.observe = metrics.delivered
    sent: list[str] = []

    async def handler(mail: Mail) -> None:
        if mail.subject == "retry" and "retry" not in sent:
            sent.append("retry")
            raise MailRetry("try again")
        if mail.subject == "bad":
            raise MailRejected("no such mailbox")
        await asyncio.sleep(0.02)
        sent.append(mail.subject)

    queue = OutboxQueue(store, outbox, handler)
    await outbox.start()
    try:
        for subject in ("ok", "retry", "bad"):
            await queue.put(
                Mail(SiteId("s_1"), "ann@example.com", subject, "t", "<p>h</p>", "reply"),
                key=subject,
            )
        async with asyncio.timeout(5):
            while sum(h.count for h in metrics.deliveries.values()) < 4:
                await asyncio.sleep(0.01)
    finally:
        await outbox.close()
        await store.close()
    counts = {key: h.count for key, h in metrics.deliveries.items()}
    assert counts == {("mail", "ok"): 2, ("mail", "retry"): 1, ("mail", "failed"): 1}
    assert metrics.deliveries[("mail", "ok")].sum >= 0.04  # the handler's sleeps, timed

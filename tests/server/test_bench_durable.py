"""The durable relays (``bench/baseline_durable.py``): the floor the benchmark
sets beside the bare relay.  A send's frames leave only once its row is
committed (SQLite) or synced (the plain file), and the relay still delivers
every message and preview of a short real run.  The ingest floor
(``bench/baseline_ingest.py``) answers the ``ingest`` scenario's clients and
has every batch it acknowledged in its file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zstandard

from bench.baseline_durable import DurableLog, Row
from bench.ingest import Ingest, ingest
from bench.pairing import Out
from bench.scenarios import Env, Traffic, traffic
from bench.servers import ALL_TARGETS, Cores


def stored(path: Path, file: bool) -> list[tuple[str, int]]:
    if file:
        with open(path, "rb") as fh:  # rows, then the preallocated zeros
            rows = [r for r in msgpack.Unpacker(fh, raw=False) if isinstance(r, list)]
        return [(r[0], r[1]) for r in rows]
    db = sqlite3.connect(path)
    try:
        return list(db.execute("SELECT conv_id, offset FROM entries ORDER BY offset"))
    finally:
        db.close()


@pytest.mark.anyio
@pytest.mark.parametrize("file", [False, True], ids=["sqlite", "file"])
async def test_a_sends_frames_leave_after_its_row_is_stored(tmp_path: Path, file: bool) -> None:
    path = tmp_path / ("relay.log" if file else "relay.db")
    seen: list[tuple[Any, list[tuple[str, int]]]] = []

    def deliver(out: Out) -> None:
        # what a reader finds on disk at the moment the frames leave
        seen.append((out[0][1]["offset"], stored(path, file)))

    async def delivered(n: int) -> None:
        for _ in range(500):
            if len(seen) >= n:
                return
            await asyncio.sleep(0.01)

    log = DurableLog(path, deliver, file=file, file_bytes=1 << 20)
    log.start()
    try:
        for offsets in ((1, 2, 3), (4, 5)):  # two groups: the second after the first left
            for offset in offsets:
                row: Row = ("c1", offset, "visitor", "v1", f"hello {offset}", 1.0, None)
                log.append(row, [([], {"t": "ack", "offset": offset})])
            await delivered(offsets[-1])
    finally:
        log.stop()
    assert [offset for offset, _ in seen] == [1, 2, 3, 4, 5]
    for offset, rows in seen:
        assert ("c1", offset) in rows
    assert stored(path, file) == [("c1", n) for n in range(1, 6)]
    assert log.commits >= 2


@pytest.mark.parametrize("target", ["ws-relay-durable", "ws-relay-log"])
def test_the_durable_relays_deliver_every_message(tmp_path: Path, target: str) -> None:
    env = Env(Cores.plan(), 1, tmp_path, lambda _: None, max_workers=1)
    t = Traffic(chats=4, capacity=4, warmup=0.3, measure=0.8, drain=1.0)
    r = traffic(env, ALL_TARGETS[target], "pairs", t)
    assert r["messages_sent"] > 0 and r["delivered_ratio"] == 1.0
    assert r["previews_delivered"] == r["previews_expected"] > 0


def test_the_ingest_floor_stores_every_batch_it_acknowledges(tmp_path: Path) -> None:
    env = Env(Cores.plan(), 1, tmp_path, lambda _: None, max_workers=1)
    conf = Ingest(connections=4, warmup=0.3, measure=1.0, compression=False)
    r = ingest(env, ALL_TARGETS["ingest-floor"], conf)
    assert r["errors"] == 0 and r["batches_per_s"] > 0
    counts = r["server_counts"]
    assert counts["batches"] >= r["batches_per_s"] * conf.measure  # warm-up ones too
    # compressed, and every compressed byte is in the file: stored before acknowledged
    assert 0 < counts["stored_bytes"] < counts["raw_bytes"]
    stored, batches = 0, 0
    with open(tmp_path / "ingest" / "ingest.log", "rb") as fh:  # length, zstd frame; zeros
        while size := int.from_bytes(fh.read(4), "little"):
            zstandard.ZstdDecompressor().decompress(fh.read(size))
            stored, batches = stored + size, batches + 1
    assert (stored, batches) == (counts["stored_bytes"], counts["batches"])

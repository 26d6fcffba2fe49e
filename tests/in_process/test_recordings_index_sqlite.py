"""The SQLite recordings index's grouped writes (``recordings/index/sqlite.py``).

Batches indexed in one event-loop iteration are written by one writer
operation; these tests check that on a real SQLite store, and that a batch
whose write fails (here a marks row that is already taken) fails alone: the
others of its operation are written again one by one.  The contract every
backend keeps is in ``tests/contracts/test_recordings_index.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chatserver.store_sqlite import SQLiteStore
from chatserver.types import RecordingBatch, RecordingMark
from recordings.index import SQLiteRecordingIndex, open_index

from ..contracts.helpers import site_and_visitor

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "chat.db")
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def batch(seq: int, *marks: RecordingMark) -> RecordingBatch:
    return RecordingBatch(seq, 1000.0 * seq, 1000.0 * seq + 500, 7, 300, 2000, marks=marks)


class Counted:
    """The store's writer, counting the operations handed to it."""

    def __init__(self, store: SQLiteStore) -> None:
        self.ops = 0
        self._run = store.run

    async def run(self, op: Callable[[sqlite3.Connection], Any]) -> Any:
        self.ops += 1
        return await self._run(op)


async def test_one_writer_operation_for_the_batches_of_a_moment(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = open_index(store)
    assert isinstance(index, SQLiteRecordingIndex)
    site, visitor = await site_and_visitor(store)
    ids = [f"r_group{i}" for i in range(20)]
    for rec_id in ids:
        await index.claim_recording(rec_id, site.id, visitor.id, f"rec/{rec_id}.seg", 0.0)
    counted = Counted(store)
    monkeypatch.setattr(store, "run", counted.run)
    page = RecordingMark("page", 10.0, {"url": "https://shop.example/", "title": "Shop"})
    got = await asyncio.gather(*(index.add_recording_batch(i, batch(0, page)) for i in ids))
    assert counted.ops == 1
    assert [(rec.id, rec.last_seq, rec.pages, dup) for rec, dup in got] == [
        (i, 0, 1, False) for i in ids
    ]
    # awaited one after another, each is its own operation
    for rec_id in ids[:3]:
        rec, dup = await index.add_recording_batch(rec_id, batch(1))
        assert rec.last_seq == 1 and not dup
    assert counted.ops == 4
    for rec_id in ids:
        assert await index.recording_marks(rec_id) == [page]


async def test_a_failing_batch_fails_alone(store: SQLiteStore) -> None:
    index = open_index(store)
    site, visitor = await site_and_visitor(store)
    ids = ["r_ok1", "r_bad", "r_ok2"]
    for rec_id in ids:
        await index.claim_recording(rec_id, site.id, visitor.id, f"rec/{rec_id}.seg", 0.0)
    # A marks row the index does not know of: r_bad's first mark (n 0) cannot be written.
    await store.run(
        lambda db: db.execute(
            "INSERT INTO recording_marks (rec_id, n, kind, ts, url, data)"
            " VALUES ('r_bad', 0, 'click', 1, NULL, '{}')"
        )
    )
    click = RecordingMark("click", 20.0, {"selector": "#b", "text": "B"})
    got = await asyncio.gather(
        *(index.add_recording_batch(i, batch(0, click)) for i in ids), return_exceptions=True
    )
    assert isinstance(got[1], sqlite3.IntegrityError)
    for rec_id, result in zip(ids[::2], got[::2], strict=True):
        assert not isinstance(result, BaseException)
        rec, dup = result
        assert (rec.last_seq, rec.marks, dup) == (0, 1, False)
        assert await index.get_recording(rec_id) == rec
        assert await index.recording_marks(rec_id) == [click]
    bad = await index.get_recording("r_bad")
    assert bad is not None and bad.last_seq == -1  # nothing of its batch was kept

"""The SQLite recordings index's batch writes (``recordings/index/sqlite.py``).

Batches of many recordings written at the same moment share the writer's
transaction (group commit); a batch whose write fails (here a marks row that
is already taken) must fail alone, leaving its recording's row as it was and
the others' batches written.  The contract every backend keeps is in
``tests/contracts/test_recordings_index.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatserver.store_sqlite import SQLiteStore
from chatserver.types import RecordingBatch, RecordingMark
from recordings.index import open_index

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

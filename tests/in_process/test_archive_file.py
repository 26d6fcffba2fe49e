"""The SQLite archive's own file (``archive/index/sqlite_file.py``).

The index lives in ``chatserver.archive.db`` beside ``chatserver.db``, written
by a thread of its own, with the record attached read-only: it is made from
the record when new, the store's file keeps no index tables (step 8), and an
index transaction never holds the store's writer.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from archive.index import open_archive
from archive.index.sqlite_file import archive_path
from archive.query import ArchiveQuery
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import AuthorKind, EntryKind

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def tables(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()


async def test_a_new_archive_file_is_made_from_the_record(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chatserver.db")
    await store.start()
    try:
        site = await store.create_site("Shop", "shop.example")
        visitor = await store.create_visitor(site.id)
        conv, _ = await store.open_conversation(site.id, visitor.id)
        await store.append(conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "Mi envío")
        assert not (tmp_path / "chatserver.archive.db").exists()  # no index yet (an upgrade)

        index = open_archive(store)
        await index.start()
        try:
            page = await index.search(ArchiveQuery(site.id, text="envio"))
            assert [(h.conv.id, h.matches) for h in page.hits] == [(conv.id, ((1, "Mi envío"),))]
        finally:
            await index.close()
    finally:
        await store.close()
    assert archive_path(tmp_path / "chatserver.db") == tmp_path / "chatserver.archive.db"
    assert {"archive_convs", "archive_fts"} <= tables(tmp_path / "chatserver.archive.db")
    # The store's file no longer holds the index; the archive's holds no record tables.
    assert not {"archive_convs", "archive_fts"} & tables(tmp_path / "chatserver.db")
    assert not {"conversations", "entries", "visitors"} & tables(tmp_path / "chatserver.archive.db")


async def test_an_index_transaction_does_not_hold_the_stores_writer(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chatserver.db")
    await store.start()
    index = open_archive(store)
    await index.start()
    try:
        site = await store.create_site("Shop", "shop.example")
        visitor = await store.create_visitor(site.id)
        conv, _ = await store.open_conversation(site.id, visitor.id)
        # Another connection holds the archive file's write lock (as a long
        # index batch or a reindex would).
        holder = sqlite3.connect(tmp_path / "chatserver.archive.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("DELETE FROM archive_convs")
        try:
            started = time.monotonic()
            entry, _ = await asyncio.wait_for(
                store.append(conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "hola"),
                timeout=2.0,
            )
            assert entry.offset == 1 and time.monotonic() - started < 1.0
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # The index writes what it was given once the lock is gone.
        await index.note_batch([conv.id], [entry])
        page = await index.search(ArchiveQuery(site.id, text="hola"))
        assert [h.conv.id for h in page.hits] == [conv.id]
    finally:
        await index.close()
        await store.close()


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
async def test_the_index_is_written_on_spare_cpu_and_the_record_is_not(tmp_path: Path) -> None:
    """The archive's writer thread is ``SCHED_IDLE`` (its batches never take the
    core from the event loop); the store's writer and both readers are not."""
    store = SQLiteStore(tmp_path / "chatserver.db")
    await store.start()
    index = open_archive(store)
    await index.start()
    try:
        engine = index.engine  # type: ignore[attr-defined]

        def policy(lane: Any) -> int:
            return os.sched_getscheduler(lane._thread.native_id)

        assert policy(engine._writer) == os.SCHED_IDLE
        assert policy(engine._reader) == os.SCHED_BATCH  # searches: an ordinary share
        assert policy(store._writer) == os.SCHED_BATCH
        assert policy(store._reader) == os.SCHED_BATCH
    finally:
        await index.close()
        await store.close()

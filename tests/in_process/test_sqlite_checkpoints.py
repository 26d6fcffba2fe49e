"""The SQLite engine's checkpoints (``chatserver/store/sqlite/engine.py``, ``_Checkpointer``).

The WAL is copied back into the database file by a thread of its own, so no
commit waits for it; the writer's own automatic checkpoint is only a backstop
at ``BACKSTOP`` pages.  Checked on a real file: the writer's setting, the WAL
copied back while the store writes (and started over, so it does not grow),
nothing done while nothing is written, and the thread gone after close.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from chatserver.store.sqlite.engine import _Checkpointer
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import AuthorKind, EntryKind

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def wal_state(path: Path) -> tuple[int, int]:
    """(pages in the WAL, pages of it copied back), without copying anything."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        # A passive checkpoint with nothing to do reports; ``wal_autocheckpoint``
        # of this throwaway connection does not matter.
        _, log, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(log), int(done)
    finally:
        db.close()


def checkpointer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.endswith("-ckpt")]


async def test_the_wal_is_copied_back_by_its_own_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Checkpointer, "EVERY", 0.05)
    store = SQLiteStore(tmp_path / "chatserver.db")
    await store.start()
    try:
        assert "chatserver-sqlite-ckpt" in checkpointer_threads()
        backstop = await store._run(lambda db: db.execute("PRAGMA wal_autocheckpoint").fetchone())
        assert backstop == (_Checkpointer.BACKSTOP,)
        site = await store.create_site("Shop")
        visitor = await store.create_visitor(site.id)
        conv, _ = await store.open_conversation(site.id, visitor.id)
        sizes = []
        for round_ in range(6):
            for i in range(40):
                await store.append(
                    conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", f"m{round_}.{i}"
                )
            await asyncio.sleep(0.2)  # several of the thread's turns
            sizes.append((tmp_path / "chatserver.db-wal").stat().st_size)
        # 240 commits of several pages each: well past SQLite's default 1000 pages
        # had nothing copied them back, and the WAL starts over instead of growing.
        assert max(sizes) < 1000 * 4096, sizes
        entries = await store.entries(conv.id, after=0, limit=1000)
        assert len(entries) == 240
    finally:
        await store.close()
    assert "chatserver-sqlite-ckpt" not in checkpointer_threads()


async def test_no_checkpoint_while_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Checkpointer, "EVERY", 0.05)
    runs: list[str] = []
    real = _Checkpointer._main

    def counted(self: _Checkpointer) -> None:
        runs.append(self.name)
        real(self)

    monkeypatch.setattr(_Checkpointer, "_main", counted)
    store = SQLiteStore(tmp_path / "chatserver.db")
    await store.start()
    try:
        await store.create_site("Shop")
        await asyncio.sleep(0.3)
        log, done = wal_state(tmp_path / "chatserver.db")
        assert log == done  # the site's commit was copied back
        checkpointer = store._checkpointer
        assert checkpointer is not None
        commits = checkpointer.commits
        await asyncio.sleep(0.3)  # idle: the thread wakes, finds no commit, does nothing
        assert checkpointer.commits == commits
        assert wal_state(tmp_path / "chatserver.db") == (log, done)
    finally:
        await store.close()
    assert runs == ["chatserver-sqlite-ckpt"]

"""The SQLite writer's batches (``chatserver/store/sqlite/engine.py``): operations
submitted together share one transaction, and one that fails undoes only its own
writes, with a savepoint of its own or, for a ``OneWrite``, without one.

Checked on a real file with operations submitted in one event-loop iteration
(one batch), then read back on a connection of their own.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from chatserver.errors import NotMember
from chatserver.store.sqlite.engine import OneWrite
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import AuthorKind, EntryKind

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def batch(store: SQLiteStore, ops: list[Any]) -> list[Any]:
    """Run ``ops`` as one batch; each one's result or exception."""
    futures = [asyncio.ensure_future(store._run(op)) for op in ops]
    return list(await asyncio.gather(*futures, return_exceptions=True))


def rows(path: Path) -> list[tuple[int, str]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT k, v FROM t ORDER BY k").fetchall()
    finally:
        db.close()


def insert(k: int, v: str) -> Any:
    def op(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, v))
        return k

    return op


def two_inserts(k: int, v: str) -> Any:
    """Writes ``k`` then ``k`` again: the second fails after the first wrote."""

    def op(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, v))
        db.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, v))
        return k

    return op


def refuse_first(db: sqlite3.Connection) -> None:
    db.execute("SELECT 1").fetchone()
    raise LookupError("refused before any write")


async def test_a_failing_operation_undoes_only_its_own_writes(tmp_path: Path) -> None:
    path = tmp_path / "chatserver.db"
    store = SQLiteStore(path)
    await store.start()
    try:
        await store._run(lambda db: db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
        await store._run(insert(1, "before"))
        got = await batch(
            store,
            [
                insert(2, "a"),
                OneWrite(insert(1, "taken")),  # its one statement fails: nothing of it stays
                OneWrite(insert(3, "b")),
                two_inserts(4, "c"),  # a savepoint undoes its first insert
                OneWrite(refuse_first),  # raises before writing
                insert(5, "d"),
                OneWrite(insert(6, "e")),
            ],
        )
        assert got[0] == 2 and got[2] == 3 and got[5] == 5 and got[6] == 6
        assert isinstance(got[1], sqlite3.IntegrityError)
        assert isinstance(got[3], sqlite3.IntegrityError)
        assert isinstance(got[4], LookupError)
        assert rows(path) == [(1, "before"), (2, "a"), (3, "b"), (5, "d"), (6, "e")]
        # and the writer goes on
        assert await store._run(OneWrite(insert(7, "f"))) == 7
    finally:
        await store.close()


async def test_appends_in_one_batch_keep_their_offsets_after_a_refused_one(
    tmp_path: Path,
) -> None:
    """The append is a ``OneWrite``: a refused one in the middle of a batch
    leaves the others' entries and offsets as if it had not come."""
    path = tmp_path / "chatserver.db"
    store = SQLiteStore(path)
    await store.start()
    try:
        site = await store.create_site("Shop")
        conv, _ = await store.open_conversation(site.id, "v_1")

        def say(body: str, member: str | None = None) -> Any:
            return store.append(
                conv.id, EntryKind.TEXT, AuthorKind.VISITOR, "v_1", "V", body, member=member
            )

        got = await asyncio.gather(
            say("one"), say("refused", member="a_not_in_it"), say("two"), return_exceptions=True
        )
        assert isinstance(got[1], NotMember)
        assert [e.offset for e, _ in (got[0], got[2])] == [1, 2]  # type: ignore[union-attr]
        assert [(e.offset, e.body) for e in await store.entries(conv.id)] == [
            (1, "one"),
            (2, "two"),
        ]
    finally:
        await store.close()

"""The bare relay plus a durable append: the floor of a durable chat server in Python.

``bench.baseline_ws`` relays and stores nothing.  chatserver must also make
every message durable before its ``ack`` (issue #22: "every message still
durable before its ack").  This module gives the relay exactly that and
nothing more, so that the benchmark can say how much of chatserver's cost
per message any durable design pays:

* one SQLite file in WAL mode, ``synchronous=FULL`` (chatserver's default),
  one table keyed by (conversation, offset) like chatserver's ``entries``,
  no other index, no conversation row, no change feed, no archive;
* a writer thread with group commit, handed each event-loop iteration's
  appends at once (one queue put) and handing each commit's frames back at
  once (one ``call_soon_threadsafe``), at ``SCHED_BATCH`` like chatserver's;
* a ``send``'s frames (``ack`` and ``msg``) leave only after the commit that
  holds its row; every other frame is relayed at once, as in the bare relay.

Offsets, cids and recovery stay in memory (``bench.pairing``): what is
measured is the append, its hand-off and its fsync.

``file=True`` (the ``ws-relay-log`` target) writes the rows to a plain file
instead (msgpack, one ``pwrite`` and one ``fdatasync`` per group, in place
over a preallocated file): the floor of durability itself, with no B-tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgpack

from .pairing import Out

Row = tuple[str, int, str, str, str, float, Any]
Deliver = Callable[[Out], None]
T = TypeVar("T")
U = TypeVar("U")
Opener = Callable[[], tuple[Callable[[list[T]], None], Callable[[], None]]]

SCHEMA = """CREATE TABLE IF NOT EXISTS entries (
    conv_id TEXT NOT NULL, offset INTEGER NOT NULL, author_kind TEXT NOT NULL,
    author_id TEXT NOT NULL, body TEXT NOT NULL, ts REAL NOT NULL, cid TEXT,
    PRIMARY KEY (conv_id, offset)) WITHOUT ROWID"""


def row_of(out: Out) -> Row | None:
    """The entry a ``send``'s frames describe (its ``msg``), or None."""
    for _, frame in out:
        if frame.get("t") == "msg":
            author = frame["from"]
            body = frame.get("body")
            return (
                frame["conv"],
                frame["offset"],
                author["kind"],
                author["id"],
                body if isinstance(body, str) else "",
                frame["ts"],
                frame.get("cid"),
            )
    return None


class GroupCommit(Generic[T, U]):
    """A writer thread in group commits: ``append(item, after)`` from the event loop;
    the thread commits every item waiting with one ``commit(items)``, then hands
    the group's ``after`` values back to ``done`` with one ``call_soon_threadsafe``.

    ``open`` runs on the thread and returns its ``commit`` and ``close``.  Each
    event-loop iteration's items reach the thread with one queue put; the thread
    runs at ``SCHED_BATCH`` like chatserver's SQLite writer.
    """

    def __init__(
        self,
        name: str,
        open_: Callable[[], tuple[Callable[[list[T]], None], Callable[[], None]]],
        done: Callable[[list[U]], None],
    ) -> None:
        self.name = name
        self._open = open_
        self._done = done
        self._pending: list[tuple[T, U]] = []
        self._queue: queue.SimpleQueue[list[tuple[T, U]] | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.commits = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._kick()
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def append(self, item: T, after: U) -> None:
        assert self._loop is not None
        self._pending.append((item, after))
        if len(self._pending) == 1:
            self._loop.call_soon(self._kick)

    def _kick(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._queue.put(batch)

    def _main(self) -> None:
        assert self._loop is not None
        if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH"):
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        commit, close = self._open()
        try:
            stop = False
            while not stop:
                jobs = self._queue.get()
                if jobs is None:
                    break
                while True:  # everything that arrived meanwhile goes in the same commit
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    jobs.extend(more)
                commit([item for item, _ in jobs])
                self.commits += 1
                self._loop.call_soon_threadsafe(self._done, [after for _, after in jobs])
        finally:
            close()


def open_file(path: Path, size: int, pack: Callable[[T], bytes]) -> Opener[T]:
    """A plain file made ``size`` bytes first, written in place and wrapped around at
    its end, like SQLite's WAL: an ``fdatasync`` that had to record a larger file
    size would also commit the file system's journal, which a log does not need."""

    def opened() -> tuple[Callable[[list[T]], None], Callable[[], None]]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        zeros = bytes(1 << 20)
        for _ in range(max(1, size >> 20)):
            os.write(fd, zeros)
        os.fsync(fd)
        at = 0

        def commit(items: list[T]) -> None:
            nonlocal at
            data = b"".join(pack(item) for item in items)
            if at + len(data) > size:
                at = 0
            os.pwrite(fd, data, at)
            at += len(data)
            os.fdatasync(fd)

        return commit, lambda: os.close(fd)

    return opened


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(SCHEMA)
    return db


def open_sqlite(path: Path) -> Opener[Row]:
    """The rows into SQLite: one ``executemany`` and one commit per group."""

    def opened() -> tuple[Callable[[list[Row]], None], Callable[[], None]]:
        db = _connect(path)
        insert = "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)"

        def commit(rows: list[Row]) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(insert, rows)
            db.execute("COMMIT")

        return commit, db.close

    return opened


class DurableLog(GroupCommit[Row, Out]):
    """The relay's appends: rows into SQLite (or a plain file), frames out after them."""

    FILE_BYTES = 16 << 20  # the plain file's size (``file=True``)

    def __init__(
        self, path: Path, deliver: Deliver, *, file: bool = False, file_bytes: int = FILE_BYTES
    ) -> None:
        self.path = path
        self.file = file
        self._deliver = deliver
        if file:
            opener = open_file(path, file_bytes, msgpack.Packer(use_bin_type=True).pack)
        else:
            opener = open_sqlite(path)
        super().__init__("relay-writer", opener, self._sent)

    def start(self) -> None:
        if not self.file:  # the schema, before any frame
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _connect(self.path).close()
        super().start()

    def _sent(self, outs: list[Out]) -> None:
        for out in outs:
            self._deliver(out)


def fresh(path: Path) -> Path:
    """``path`` with no file left from an earlier run (and its WAL)."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")
    return path

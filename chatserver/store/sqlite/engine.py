"""The embedded Store: one SQLite file in WAL mode, written by one thread.

Every operation is a function of a ``sqlite3.Connection`` run on a dedicated
thread.  The writer thread takes whatever operations are waiting, runs them in
one transaction (each in its own savepoint, so one failure does not undo the
others; an operation whose only write is one statement needs none, ``OneWrite``),
commits once and only then resolves the callers' futures: group
commit, one fsync for many messages.  With ``synchronous=FULL`` (default) a
resolved write survives a power cut; ``normal`` survives a kill -9 only.

Plain reads (``_read_one``, ``_read_all``, ``_read``) run on a second thread
with a read-only connection, so they never wait behind a commit's fsync.  WAL
readers see every transaction committed before the read starts, and a write's
future resolves only after its commit, so a read issued after an awaited write
sees it.  Operations submitted during one event-loop iteration reach their
thread with one wake-up and come back with one (``_Lane``).

The schema is ``migrations_sqlite``: the writer's connection brings the file
to its last numbered step before it takes any operation, and a file written
by a newer chatserver is refused (``StoreError``) before any operation runs.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from ... import migrations_sqlite, threads
from ...errors import StoreError

T = TypeVar("T")

Op = Callable[[sqlite3.Connection], Any]

Job = tuple[Op, "asyncio.Future[Any]"]

Results = list[tuple["asyncio.Future[Any]", Any, BaseException | None]]

MAX_BATCH = 256  # operations per transaction


class OneWrite(Generic[T]):
    """An operation whose only write is a single statement, its last: it needs no
    savepoint of its own.  A statement that fails changes nothing (SQLite undoes
    it alone), and what raises before it has written nothing.  The append is one
    (``conversations.py``): two statements fewer per message on the writer's
    thread, each a release and a taking back of the GIL.
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[sqlite3.Connection], T]) -> None:
        self.fn = fn

    def __call__(self, db: sqlite3.Connection) -> T:
        return self.fn(db)


def _run_reads(db: sqlite3.Connection, batch: list[Job]) -> Results:
    results: Results = []
    for op, fut in batch:
        try:
            results.append((fut, op(db), None))
        except Exception as exc:
            results.append((fut, None, exc))
    return results


class _Lane:
    """A thread with its own SQLite connection, running operations in batches.

    ``submit`` collects the operations of one event-loop iteration and hands
    them to the thread together (one queue put, one wake-up); the thread runs
    them with ``run`` in chunks of ``MAX_BATCH`` and resolves each chunk's
    futures with one ``call_soon_threadsafe``.
    """

    def __init__(
        self,
        name: str,
        connect: Callable[[], sqlite3.Connection],
        run: Callable[[sqlite3.Connection, list[Job]], Results],
        *,
        spare: bool = False,
    ) -> None:
        self.name = name
        self.spare = spare  # run on spare CPU only (SCHED_IDLE): see SQLiteEngine.SPARE
        self._connect = connect
        self._run = run
        self._queue: queue.SimpleQueue[list[Job] | None] = queue.SimpleQueue()
        self._pending: list[Job] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._main, args=(ready,), name=self.name, daemon=True
        )
        self._thread.start()
        await ready

    async def close(self) -> None:
        if self._thread is None:
            return
        self._kick()
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def submit(self, op: Op) -> asyncio.Future[Any]:
        assert self._loop is not None
        fut = self._loop.create_future()
        self._pending.append((op, fut))
        if len(self._pending) == 1:
            self._loop.call_soon(self._kick)
        return fut

    def _kick(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._queue.put(batch)

    def _main(self, ready: asyncio.Future[None]) -> None:
        assert self._loop is not None
        loop = self._loop
        # SCHED_BATCH: woken by a submission, it does not preempt the event
        # loop's thread only to wait for the GIL (threads.py).  A ``spare`` lane
        # (SCHED_IDLE) gets the CPU only when the others leave it.
        threads.settle(threads.IDLE if self.spare else threads.BATCH)
        try:
            db = self._connect()
        except Exception as exc:  # report the failure to start()
            loop.call_soon_threadsafe(ready.set_exception, exc)
            return
        loop.call_soon_threadsafe(ready.set_result, None)
        stop = False
        while not stop:
            jobs = self._queue.get()
            if jobs is None:
                break
            while len(jobs) < MAX_BATCH:  # more may have arrived meanwhile
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.extend(more)
            for i in range(0, len(jobs), MAX_BATCH):
                loop.call_soon_threadsafe(_resolve, self._run(db, jobs[i : i + MAX_BATCH]))
        db.close()


class _Checkpointer:
    """Copies the WAL back into the database file from a thread and connection of
    its own, so that no commit waits for it.

    SQLite's automatic checkpoint runs inside the commit that crosses 1000 WAL
    pages, on the writer: that commit, and every operation queued behind it,
    waits while the pages are copied and both files synced.  In process (1000
    conversations, 200 appends/s, one core) the append's p99 was 3.4-4.5 ms with
    it and 1.1-2.2 ms with this thread's ``PASSIVE`` checkpoints every
    ``EVERY`` seconds (``synchronous=NORMAL``; 3.6-5.7 against 2.4-4.7 ms with
    ``FULL``): docs/performance.md.  A passive checkpoint takes no lock the
    writer needs; it copies what no reader still needs and the writer starts
    the WAL over once all of it is copied.  The writer keeps an automatic
    checkpoint at ``BACKSTOP`` pages, for when this thread falls behind.
    """

    # Seconds between checkpoints while there are commits: a page written by
    # several commits meanwhile is copied once (1 s against 0.25: a third of
    # this thread's CPU and 4 % fewer bytes per message, docs/performance.md).
    EVERY = 1.0
    BACKSTOP = 10_000  # WAL pages at which the writer checkpoints itself

    def __init__(self, name: str, connect: Callable[[], sqlite3.Connection]) -> None:
        self.name = name
        self._connect = connect
        self.commits = 0  # raised by the writer; a checkpoint runs only after new ones
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    async def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    def _main(self) -> None:
        threads.settle(threads.BATCH)
        db = self._connect()
        try:
            seen = self.commits
            while not self._stop.wait(self.EVERY):
                if self.commits == seen:
                    continue  # nothing written since the last one
                seen = self.commits
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # busy or failing: the writer's backstop remains
                    continue
        finally:
            db.close()


def _resolve(results: Results) -> None:
    for fut, value, exc in results:
        if fut.done():  # the caller was cancelled; the write still happened
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)


class SQLiteEngine:
    """The two lanes of one SQLite file (see the module docstring for the threading).

    Every domain module (``sites``, ``agents``, ...) subclasses it and runs its
    operations through ``_run`` (the writer: a transaction, group commit) or
    ``_read`` / ``_read_one`` / ``_read_all`` (the read-only lane).  A domain kept
    outside the core Store on the same file uses ``run`` (the writer) instead.
    """

    LANE = "chatserver-sqlite"  # the threads' names (the reader's gets "-read")
    CHECKPOINTER = True  # checkpoints on a thread of their own (else the writer's own)
    MIGRATIONS = migrations_sqlite.MIGRATIONS  # the file's numbered schema steps
    # The writer's thread runs on spare CPU only (Linux ``SCHED_IDLE``): for a
    # file nobody waits on (the archive's index), so that its bursts never take
    # the core from the event loop and the store's writer (docs/performance.md).
    SPARE = False

    def __init__(self, path: Path | str, *, synchronous: str = "full") -> None:
        if synchronous.lower() not in ("full", "normal"):
            raise ValueError("synchronous must be 'full' or 'normal'")
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._writer: _Lane | None = None
        self._reader: _Lane | None = None
        self._checkpointer: _Checkpointer | None = None

    async def start(self) -> None:
        writer = _Lane(self.LANE, self._connect, self._run_batch, spare=self.SPARE)
        await writer.start()  # migrates the schema first (migrations_sqlite)
        reader = _Lane(f"{self.LANE}-read", self._connect_reader, _run_reads)
        try:
            await reader.start()
        except BaseException:
            await writer.close()
            raise
        self._writer, self._reader = writer, reader
        if self.CHECKPOINTER:
            self._checkpointer = _Checkpointer(f"{self.LANE}-ckpt", self._connect_checkpointer)
            self._checkpointer.start()

    async def close(self) -> None:
        lanes = [lane for lane in (self._reader, self._writer) if lane is not None]
        checkpointer, self._checkpointer = self._checkpointer, None
        self._writer = self._reader = None
        if checkpointer is not None:
            await checkpointer.close()
        for lane in lanes:
            await lane.close()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A URI connection, so that ``_attach`` may attach another file by URI.
        db = sqlite3.connect(
            self.path.resolve().as_uri(), uri=True, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA busy_timeout=5000")
            _wal(db)
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten with zeros, not just unlinked: an erased
            # visitor's text is not left in free pages (store/sqlite/erasure.py).
            db.execute("PRAGMA secure_delete=ON")
            if self.CHECKPOINTER:
                # Checkpoints run on their own thread (_Checkpointer); this one
                # only when that thread has fallen far behind.
                db.execute(f"PRAGMA wal_autocheckpoint={_Checkpointer.BACKSTOP}")
            self._attach(db)
            # the schema of ``MIGRATIONS``, or StoreError for a newer file
            migrations_sqlite.migrate(db, self.MIGRATIONS, name=str(self.path))
        except BaseException:
            db.close()
            raise
        return db

    def _connect_reader(self) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri() + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA query_only=ON")
        self._attach(db)
        return db

    def _attach(self, db: sqlite3.Connection) -> None:
        """Attach other files to a new connection (writer and reader); none here."""

    def _connect_checkpointer(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=100")
        return db

    def _run_batch(self, db: sqlite3.Connection, batch: list[Job]) -> Results:
        results = self._run_ops(db, batch)
        if self._checkpointer is not None:
            self._checkpointer.commits += 1
        return results

    @staticmethod
    def _run_ops(db: sqlite3.Connection, batch: list[Job]) -> Results:
        results: Results = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for op, fut in batch:
                if type(op) is OneWrite:
                    try:
                        results.append((fut, op.fn(db), None))
                    except Exception as exc:
                        if not db.in_transaction:  # SQLite undid the whole transaction
                            raise  # (a full disk, an I/O error): nothing is durable
                        results.append((fut, None, exc))
                    continue
                db.execute("SAVEPOINT op")
                try:
                    results.append((fut, op(db), None))
                    db.execute("RELEASE op")
                except Exception as exc:
                    db.execute("ROLLBACK TO op")
                    db.execute("RELEASE op")
                    results.append((fut, None, exc))
            db.execute("COMMIT")
        except sqlite3.Error as exc:  # the commit itself failed: nothing is durable
            if db.in_transaction:
                db.execute("ROLLBACK")
            err = StoreError(f"sqlite: {exc}")
            return [(fut, None, err) for _, fut in batch]
        return results

    async def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` on the writer, in a transaction; resolves after the commit."""
        if self._writer is None:
            raise StoreError("store is not started")
        return await self._writer.submit(op)  # type: ignore[no-any-return]

    async def run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` on the writer, in a transaction of its own savepoint; resolves after
        the commit (group commit, as ``_run``).

        The accessor for store domains kept outside ``chatserver/store/`` on the same
        file: their tables come from ``migrations_sqlite``.  ``op`` runs on the
        writer's thread and must not block on anything but the connection.
        """
        return await self._run(op)

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` on the read-only connection (it must not write)."""
        if self._reader is None:
            raise StoreError("store is not started")
        return await self._reader.submit(op)  # type: ignore[no-any-return]

    async def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        return await self._run(lambda db: db.execute(sql, args).fetchone())

    async def _all(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return await self._run(lambda db: db.execute(sql, args).fetchall())

    async def _read_one(self, sql: str, args: tuple[Any, ...]) -> Any:
        return await self._read(lambda db: db.execute(sql, args).fetchone())

    async def _read_all(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return await self._read(lambda db: db.execute(sql, args).fetchall())

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def checkpoint(self, attempts: int = 50) -> bool:
        """Copy the WAL into the database file and truncate the WAL to nothing.

        Run on a connection of its own (a checkpoint cannot run inside the
        writer's transactions); it waits for readers of older snapshots, up to
        ``attempts`` tries 0.1 s apart.  Whether the WAL was truncated.
        """

        def op() -> bool:
            db = sqlite3.connect(self.path, isolation_level=None)
            try:
                db.execute("PRAGMA busy_timeout=5000")
                for _ in range(attempts):
                    busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    if not busy:
                        return True
                    time.sleep(0.1)
                return False
            finally:
                db.close()

        return await asyncio.to_thread(op)


def _wal(db: sqlite3.Connection) -> None:
    """Switch to WAL.  On a new file two processes starting at the same moment can
    both try; SQLite answers the loser "database is locked" at once, whatever the
    busy timeout, so it tries again for up to two seconds."""
    for attempt in range(100):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.02)

"""The archive's own SQLite file, beside the store's, with its own writer thread.

The index (``archive_convs``, the FTS5 table ``archive_fts``) used to live in
the store's file and be written by the store's writer: each batch of the
archive's listener (up to 64 texts, a transaction of its own) then held the
writer that every message's durable append waits for, and a message's `ack`
waited behind FTS5's segment writes (``docs/performance.md``).  Here the index
has its own file, ``<store>.archive.db`` (``chatserver.archive.db`` beside
``chatserver.db``), its own WAL and its own two threads (``chatserver-archive``
and ``-read``), so a message's commit never waits for the index:

* **The record is attached read-only** as ``rec`` on both connections
  (``ATTACH ... ?mode=ro``): the index's statements name ``conversations``,
  ``entries`` and ``visitors`` unqualified and SQLite finds them there, since
  the archive's file has no tables of those names.  A read-only attachment
  takes no write lock on the store's file, so an index transaction never
  blocks the store's writer, and reads the record as last committed.
* **Derived data, so ``synchronous=NORMAL``**: an index commit does not wait
  for the disk; what a power cut loses is a catch-up away (``Archive``
  indexes at start what is missing from the last two days' conversations;
  ``chatserver archive reindex`` rebuilds all).
* **On spare CPU** (its writer's thread is ``SCHED_IDLE``, ``SPARE``): a
  batch of 1,024 texts is a burst of tens of milliseconds of CPU, which at
  the same priority took a share of the core from the event loop and the
  store's writer, and every message acknowledged meanwhile waited longer (at
  4,000 messages/s on one core a quarter to a third of the commits took over
  5 ms; 6-7 % with this: docs/performance.md, "Round two, part nine").  A
  thread that holds the GIL when it is preempted holds up whoever wants the
  GIL; that one then sleeps, which is what lets this thread run and let go,
  at its next statement.  If the CPU stays busy so long that batches pile
  up, ``Archive`` stops gathering and catches up from the record afterwards.
  It checkpoints its WAL itself (no checkpoint thread, unlike the store's:
  nobody waits for its commits).  Its reader (searches) keeps the ordinary
  priority.
* **Made from the record** when the file is new (``ARCHIVE_FILE_MIGRATIONS``
  step 1, what step 4 of the store's file did before step 8 moved it here).
  Erasure forgets in this file too, with ``secure_delete`` as the store's.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from chatserver import migrations_sqlite
from chatserver.store.sqlite.engine import SQLiteEngine


def archive_path(store_path: Path) -> Path:
    """The archive's file for a store file: ``chatserver.db`` → ``chatserver.archive.db``."""
    return store_path.with_name(f"{store_path.stem}.archive{store_path.suffix or '.db'}")


class ArchiveFile(SQLiteEngine):
    """The archive index's engine: ``SQLiteEngine``'s two lanes on its own file, with
    the store's file attached read-only as ``rec`` (module docstring)."""

    LANE = "chatserver-archive"
    # Nothing waits for this writer's commits: SQLite's own checkpoint (every
    # 1000 pages, in the commit) costs less than a thread copying every 0.25 s.
    CHECKPOINTER = False
    SPARE = True  # its writer runs on spare CPU (module docstring)
    MIGRATIONS = migrations_sqlite.ARCHIVE_FILE_MIGRATIONS

    def __init__(self, store_path: Path) -> None:
        super().__init__(archive_path(store_path), synchronous="normal")
        self.store_path = store_path

    def _attach(self, db: sqlite3.Connection) -> None:
        db.execute("ATTACH DATABASE ? AS rec", (self.store_path.resolve().as_uri() + "?mode=ro",))

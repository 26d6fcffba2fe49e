"""The recordings index: one row per recording, its batches and marks.

Its own store domain, kept here rather than in the core Store
(``chatserver/store/``): ``RecordingIndex`` is the contract, ``sqlite.py``,
``redis.py`` and ``postgres.py`` implement it over the engine of the core
store they are given, so the index lives in the same SQLite file, under the
same Redis key prefix or in the same PostgreSQL database, with the same
durability (a write is durable when it returns) and the same errors
(``StoreError``).  ``open_index`` picks the backend.

* SQLite: the tables ``recordings`` and ``recording_marks`` (step 1 of
  ``chatserver/migrations_sqlite.py``) and ``recording_chunks`` (step 2),
  written through the engine's writer lane (``SQLiteEngine.run``).
* Redis: the keys listed in ``redis.py``, through the engine's ``client``
  and ``key``.
* PostgreSQL: the same two tables (step 1 of ``chatserver/migrations_postgres.py``),
  through the engine's ``run`` (one transaction) and ``fetch``.

The index has no lifecycle of its own: it works while its store is started.
The contract tests are ``tests/contracts/test_recordings_index.py`` (every backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chatserver.store import Store
from chatserver.store.postgres.engine import PostgresEngine
from chatserver.store.redis.engine import RedisEngine
from chatserver.store.sqlite.engine import SQLiteEngine
from chatserver.types import (
    Recording,
    RecordingBatch,
    RecordingId,
    RecordingMark,
    SiteId,
    VisitorId,
)

from ..chunks import Chunk
from .batch import apply_batch
from .postgres import PostgresRecordingIndex
from .redis import RedisRecordingIndex
from .sqlite import SQLiteRecordingIndex

__all__ = [
    "PostgresRecordingIndex",
    "RecordingIndex",
    "RedisRecordingIndex",
    "SQLiteRecordingIndex",
    "apply_batch",
    "open_index",
]


class RecordingIndex(Protocol):
    """The recordings index: one row per recording, its batches and marks.

    * A recording belongs to the site and visitor that claimed it first
      (``claim_recording``).
    * ``add_recording_batch`` applies a batch once (a ``seq`` at or below
      ``last_seq`` changes nothing and reports a duplicate), atomically with
      its marks.
    * A write is durable when it returns; every failure of the backend is
      raised as ``StoreError``, also when its store is not started.
    """

    async def claim_recording(
        self,
        rec_id: RecordingId,
        site_id: SiteId,
        visitor_id: VisitorId,
        blob: str,
        skew_ms: float,
    ) -> Recording:
        """The recording ``rec_id``, created empty (``last_seq`` -1) if new.

        Atomic: of concurrent claims one creates the row and all return it.
        An existing row is returned as it is, whoever owns it: the caller
        compares ``site_id`` and ``visitor_id`` before writing anything.
        """

    async def get_recording(self, rec_id: RecordingId) -> Recording | None: ...

    async def add_recording_batch(
        self, rec_id: RecordingId, batch: RecordingBatch, chunk: Chunk | None = None
    ) -> tuple[Recording, bool]:
        """Apply a stored batch (``apply_batch``) and append its marks; ``(row, duplicate)``.

        ``chunk``: the chunk the batch is in, indexed in the same write
        (``add_recording_chunk``), also when the batch is a duplicate.

        A ``batch.seq`` at or below ``last_seq`` changes nothing and returns
        the row with ``True``.  Raises ``NotFound`` when the row is gone.
        """

    async def recording_marks(
        self, rec_id: RecordingId, kinds: Sequence[str] | None = None
    ) -> list[RecordingMark]:
        """The recording's marks (of ``kinds``, default all) in the order they were added."""

    async def list_recordings(
        self,
        site_id: SiteId,
        *,
        since: float | None = None,
        until: float | None = None,
        url: str | None = None,
        min_duration: float | None = None,
        had_chat: bool | None = None,
        visitor_id: VisitorId | None = None,
        before: tuple[float, RecordingId] | None = None,
        limit: int = 50,
        signal: str | None = None,
    ) -> list[Recording]:
        """A site's recordings with at least one event, newest ``started`` first.

        Filters: ``since <= started < until``; ``url`` is a substring of a
        page the recording visited (with ``signal``: of the page where that
        signal was, ``signals.KINDS``); ``duration >= min_duration``;
        ``had_chat`` whether a conversation is linked; one visitor.  Paging:
        ``before`` is the ``(started, id)`` of the last row of the previous
        page; rows come in ``(started, id)`` descending order.
        """

    async def expired_recordings(
        self, site_id: SiteId, ended_before: float, limit: int = 500
    ) -> list[Recording]:
        """Recordings of a site (empty ones too) that ended before ``ended_before``."""

    async def visitor_recordings(self, visitor_id: VisitorId) -> list[Recording]:
        """Every recording of a visitor, empty ones too, newest first."""

    async def add_recording_chunk(self, rec_id: RecordingId, chunk: Chunk) -> None:
        """Index a sealed chunk of the recording (again: no change)."""

    async def recording_chunks(self, rec_id: RecordingId) -> list[Chunk]:
        """The recording's chunks, by first seq (empty for an old, appended segment)."""

    async def delete_recordings(self, rec_ids: Sequence[RecordingId]) -> int:
        """Delete the index rows, marks and chunk rows; how many rows existed."""


def open_index(store: Store) -> RecordingIndex:
    """The recordings index kept beside ``store`` (a SQLite, Redis or PostgreSQL store).

    Raises ``TypeError`` for a store of another backend: it has no index.
    """
    if isinstance(store, SQLiteEngine):
        return SQLiteRecordingIndex(store)
    if isinstance(store, RedisEngine):
        return RedisRecordingIndex(store)
    if isinstance(store, PostgresEngine):
        return PostgresRecordingIndex(store)
    raise TypeError(f"no recordings index for a {type(store).__name__}")

"""The recordings index on SQLite: rows, batches and marks in the core store's file.

The tables ``recordings`` (one row per recording, ``Recording``'s fields)
and ``recording_marks`` (its marks, numbered from 0 per recording) are
created by step 1 of ``chatserver/migrations_sqlite.py``, and
``recording_chunks`` (its sealed chunk objects, ``recordings/chunks.py``)
by step 2.  Every operation
runs on the engine's writer lane (``SQLiteEngine.run``), in its transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from chatserver.errors import NotFound
from chatserver.store.sqlite.engine import SQLiteEngine
from chatserver.types import (
    Recording,
    RecordingBatch,
    RecordingId,
    RecordingMark,
    SiteId,
    VisitorId,
    now,
)

from ..chunks import Chunk
from ..signals import KINDS as SIGNALS
from .batch import apply_batch

# marks whose ``url`` the index keeps in a column: pages, and the signals' pages
URL_MARKS = frozenset({"page", *SIGNALS})

_REC_COLS = (
    "id, site_id, visitor_id, blob, created_at, skew_ms, started, ended, first_ts, last_ts, "
    "last_seq, events, bytes, raw_bytes, clicks, inputs, pages, marks, conv_id"
)

_CHUNK_INSERT = (
    "INSERT OR IGNORE INTO recording_chunks"
    " (rec_id, key, first_seq, last_seq, bytes, first_ts, last_ts) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _chunk_values(c: Chunk) -> tuple[Any, ...]:
    return (c.key, c.first_seq, c.last_seq, c.bytes, c.first_ts, c.last_ts)


def _recording(row: sqlite3.Row) -> Recording:
    return Recording(*row)


def _rec_values(rec: Recording) -> tuple[Any, ...]:
    return (
        rec.id,
        rec.site_id,
        rec.visitor_id,
        rec.blob,
        rec.created_at,
        rec.skew_ms,
        rec.started,
        rec.ended,
        rec.first_ts,
        rec.last_ts,
        rec.last_seq,
        rec.events,
        rec.bytes,
        rec.raw_bytes,
        rec.clicks,
        rec.inputs,
        rec.pages,
        rec.marks,
        rec.conv_id,
    )


def _recording_of(db: sqlite3.Connection, rec_id: RecordingId) -> Recording | None:
    row = db.execute(f"SELECT {_REC_COLS} FROM recordings WHERE id = ?", (rec_id,)).fetchone()
    return None if row is None else _recording(row)


# The row's fields that a batch changes (``apply_batch``); the others (and their
# indexes: site, visitor) are left alone.  ``started`` changes only with ``first_ts``.
_BATCH_UPDATE = (
    "UPDATE recordings SET ended = ?, last_ts = ?, last_seq = ?, events = ?, bytes = ?,"
    " raw_bytes = ?, clicks = ?, inputs = ?, pages = ?, marks = ?, conv_id = ?,"
    " started = ?, first_ts = ? WHERE id = ?"
)
_BATCH_UPDATE_TAIL = (
    "UPDATE recordings SET ended = ?, last_ts = ?, last_seq = ?, events = ?, bytes = ?,"
    " raw_bytes = ?, clicks = ?, inputs = ?, pages = ?, marks = ?, conv_id = ? WHERE id = ?"
)
_MARK_INSERT = (
    "INSERT INTO recording_marks (rec_id, n, kind, ts, url, data) VALUES (?, ?, ?, ?, ?, ?)"
)


def _add_batch(
    db: sqlite3.Connection, rec_id: RecordingId, batch: RecordingBatch, chunk: Chunk | None
) -> tuple[Recording, bool]:
    """Apply one batch to its row (and its chunk's row, and marks); ``(row, duplicate)``."""
    rec = _recording_of(db, rec_id)
    if rec is None:
        raise NotFound(f"recording {rec_id}")
    if chunk is not None:
        db.execute(_CHUNK_INSERT, (rec_id, *_chunk_values(chunk)))
    if batch.seq <= rec.last_seq:
        return rec, True
    new = apply_batch(rec, batch)
    changed = (
        new.ended,
        new.last_ts,
        new.last_seq,
        new.events,
        new.bytes,
        new.raw_bytes,
        new.clicks,
        new.inputs,
        new.pages,
        new.marks,
        new.conv_id,
    )
    if new.first_ts == rec.first_ts and new.started == rec.started:
        db.execute(_BATCH_UPDATE_TAIL, (*changed, rec_id))
    else:
        db.execute(_BATCH_UPDATE, (*changed, new.started, new.first_ts, rec_id))
    if batch.marks:
        n = rec.marks
        db.executemany(
            _MARK_INSERT,
            [
                (
                    rec_id,
                    n + i,
                    m.kind,
                    m.ts,
                    m.data.get("url") if m.kind in URL_MARKS else None,
                    json.dumps(m.data),
                )
                for i, m in enumerate(batch.marks)
            ],
        )
    return new, False


class SQLiteRecordingIndex:
    """``RecordingIndex`` on SQLite, over the engine of a ``SQLiteStore`` (``engine``)."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def _all(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return await self._engine.run(lambda db: db.execute(sql, args).fetchall())

    async def claim_recording(
        self,
        rec_id: RecordingId,
        site_id: SiteId,
        visitor_id: VisitorId,
        blob: str,
        skew_ms: float,
    ) -> Recording:
        t = now()
        fresh = Recording(rec_id, site_id, visitor_id, blob, t, skew_ms, started=t, ended=t)

        def op(db: sqlite3.Connection) -> Recording:
            marks = ", ".join("?" for _ in range(19))
            db.execute(
                f"INSERT OR IGNORE INTO recordings ({_REC_COLS}) VALUES ({marks})",
                _rec_values(fresh),
            )
            rec = _recording_of(db, rec_id)
            assert rec is not None
            return rec

        return await self._engine.run(op)

    async def get_recording(self, rec_id: RecordingId) -> Recording | None:
        return await self._engine.run(lambda db: _recording_of(db, rec_id))

    async def add_recording_batch(
        self, rec_id: RecordingId, batch: RecordingBatch, chunk: Chunk | None = None
    ) -> tuple[Recording, bool]:
        return await self._engine.run(lambda db: _add_batch(db, rec_id, batch, chunk))

    async def recording_marks(
        self, rec_id: RecordingId, kinds: Sequence[str] | None = None
    ) -> list[RecordingMark]:
        sql = "SELECT kind, ts, data FROM recording_marks WHERE rec_id = ?"
        args: list[Any] = [rec_id]
        if kinds is not None:
            if not kinds:
                return []
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            args.extend(kinds)
        rows = await self._all(sql + " ORDER BY n", tuple(args))
        return [RecordingMark(r[0], r[1], json.loads(r[2])) for r in rows]

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
        where = ["site_id = ?", "events > 0"]
        args: list[Any] = [site_id]
        if since is not None:
            where.append("started >= ?")
            args.append(since)
        if until is not None:
            where.append("started < ?")
            args.append(until)
        if url or signal:
            where.append(
                "EXISTS (SELECT 1 FROM recording_marks m WHERE m.rec_id = recordings.id"
                " AND m.kind = ? AND instr(m.url, ?) > 0)"
            )
            args.extend((signal or "page", url or ""))
        if min_duration is not None:
            where.append("last_ts - first_ts >= ?")
            args.append(min_duration * 1000.0)
        if had_chat is not None:
            where.append("conv_id IS NOT NULL" if had_chat else "conv_id IS NULL")
        if visitor_id is not None:
            where.append("visitor_id = ?")
            args.append(visitor_id)
        if before is not None:
            where.append("(started < ? OR (started = ? AND id < ?))")
            args.extend((before[0], before[0], before[1]))
        rows = await self._all(
            f"SELECT {_REC_COLS} FROM recordings WHERE {' AND '.join(where)}"
            " ORDER BY started DESC, id DESC LIMIT ?",
            (*args, max(0, limit)),
        )
        return [_recording(r) for r in rows]

    async def expired_recordings(
        self, site_id: SiteId, ended_before: float, limit: int = 500
    ) -> list[Recording]:
        rows = await self._all(
            f"SELECT {_REC_COLS} FROM recordings WHERE site_id = ? AND ended < ?"
            " ORDER BY ended LIMIT ?",
            (site_id, ended_before, max(0, limit)),
        )
        return [_recording(r) for r in rows]

    async def visitor_recordings(self, visitor_id: VisitorId) -> list[Recording]:
        rows = await self._all(
            f"SELECT {_REC_COLS} FROM recordings WHERE visitor_id = ?"
            " ORDER BY started DESC, id DESC",
            (visitor_id,),
        )
        return [_recording(r) for r in rows]

    async def add_recording_chunk(self, rec_id: RecordingId, chunk: Chunk) -> None:
        await self._engine.run(
            lambda db: db.execute(_CHUNK_INSERT, (rec_id, *_chunk_values(chunk)))
        )

    async def recording_chunks(self, rec_id: RecordingId) -> list[Chunk]:
        rows = await self._all(
            "SELECT key, first_seq, last_seq, bytes, first_ts, last_ts FROM recording_chunks"
            " WHERE rec_id = ? ORDER BY first_seq, key",
            (rec_id,),
        )
        return [Chunk(*r) for r in rows]

    async def delete_recordings(self, rec_ids: Sequence[RecordingId]) -> int:
        ids = list(rec_ids)

        def op(db: sqlite3.Connection) -> int:
            count = 0
            for rec_id in ids:
                db.execute("DELETE FROM recording_marks WHERE rec_id = ?", (rec_id,))
                db.execute("DELETE FROM recording_chunks WHERE rec_id = ?", (rec_id,))
                count += db.execute("DELETE FROM recordings WHERE id = ?", (rec_id,)).rowcount
            return count

        return await self._engine.run(op)

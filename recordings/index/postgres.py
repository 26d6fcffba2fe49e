"""The recordings index on PostgreSQL: rows, batches and marks in the core store's database.

The tables ``recordings`` (one row per recording, ``Recording``'s fields) and
``recording_marks`` (its marks, numbered from 0 per recording) are created by
step 1 of ``chatserver/migrations_postgres.py``.  Writes run in one
transaction of the engine (``PostgresEngine.run``); ``add_recording_batch``
locks the recording's row first, so batches of one recording apply one after
the other and each ``seq`` once.  Reads are single statements
(``PostgresEngine.fetch``).  Failures are ``StoreError`` (the engine's).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chatserver.errors import NotFound
from chatserver.store.postgres.engine import PostgresEngine
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
from .batch import apply_batch
from .sqlite import _REC_COLS, URL_MARKS, _rec_values

_CHUNK_INSERT = (
    "INSERT INTO recording_chunks (rec_id, key, first_seq, last_seq, bytes, first_ts, last_ts)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
)


def _chunk_values(c: Chunk) -> tuple[Any, ...]:
    return (c.key, c.first_seq, c.last_seq, c.bytes, c.first_ts, c.last_ts)


_REC_UPDATE = "UPDATE recordings SET {} WHERE id = $1".format(
    ", ".join(f"{c.strip()} = ${i}" for i, c in enumerate(_REC_COLS.split(",")[1:], start=2))
)
_REC_INSERT = "INSERT INTO recordings ({}) VALUES ({}) ON CONFLICT (id) DO NOTHING".format(
    _REC_COLS, ", ".join(f"${i}" for i in range(1, 20))
)


async def _recording_of(db: Any, rec_id: RecordingId, *, lock: bool = False) -> Recording | None:
    row = await db.fetchrow(
        f"SELECT {_REC_COLS} FROM recordings WHERE id = $1{' FOR UPDATE' if lock else ''}", rec_id
    )
    return None if row is None else Recording(*row)


class PostgresRecordingIndex:
    """``RecordingIndex`` on PostgreSQL, over the engine of a ``PostgresStore``."""

    def __init__(self, engine: PostgresEngine) -> None:
        self._engine = engine

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

        async def op(db: Any) -> Recording:
            await db.execute(_REC_INSERT, *_rec_values(fresh))
            rec = await _recording_of(db, rec_id)
            assert rec is not None
            return rec

        return await self._engine.run(op)

    async def get_recording(self, rec_id: RecordingId) -> Recording | None:
        rows = await self._engine.fetch(f"SELECT {_REC_COLS} FROM recordings WHERE id = $1", rec_id)
        return Recording(*rows[0]) if rows else None

    async def add_recording_batch(
        self, rec_id: RecordingId, batch: RecordingBatch, chunk: Chunk | None = None
    ) -> tuple[Recording, bool]:
        marks = [
            (m.kind, m.ts, m.data.get("url") if m.kind in URL_MARKS else None, json.dumps(m.data))
            for m in batch.marks
        ]

        async def op(db: Any) -> tuple[Recording, bool]:
            rec = await _recording_of(db, rec_id, lock=True)
            if rec is None:
                raise NotFound(f"recording {rec_id}")
            if chunk is not None:
                await db.execute(_CHUNK_INSERT, rec_id, *_chunk_values(chunk))
            if batch.seq <= rec.last_seq:
                return rec, True
            new = apply_batch(rec, batch)
            await db.execute(_REC_UPDATE, rec_id, *_rec_values(new)[1:])
            if marks:
                await db.executemany(
                    "INSERT INTO recording_marks (rec_id, n, kind, ts, url, data)"
                    " VALUES ($1, $2, $3, $4, $5, $6)",
                    [(rec_id, rec.marks + i, *m) for i, m in enumerate(marks)],
                )
            return new, False

        return await self._engine.run(op)

    async def recording_marks(
        self, rec_id: RecordingId, kinds: Sequence[str] | None = None
    ) -> list[RecordingMark]:
        if kinds is not None and not kinds:
            return []
        sql = "SELECT kind, ts, data FROM recording_marks WHERE rec_id = $1"
        args: list[Any] = [rec_id]
        if kinds is not None:
            sql += " AND kind = ANY($2)"
            args.append(list(kinds))
        rows = await self._engine.fetch(sql + " ORDER BY n", *args)
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
        where = ["site_id = $1", "events > 0"]
        args: list[Any] = [site_id]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if since is not None:
            where.append(f"started >= {arg(since)}")
        if until is not None:
            where.append(f"started < {arg(until)}")
        if url or signal:
            kind = arg(signal or "page")
            where.append(
                "EXISTS (SELECT 1 FROM recording_marks m WHERE m.rec_id = recordings.id"
                f" AND m.kind = {kind} AND strpos(m.url, {arg(url or '')}) > 0)"
            )
        if min_duration is not None:
            where.append(f"last_ts - first_ts >= {arg(min_duration * 1000.0)}")
        if had_chat is not None:
            where.append("conv_id IS NOT NULL" if had_chat else "conv_id IS NULL")
        if visitor_id is not None:
            where.append(f"visitor_id = {arg(visitor_id)}")
        if before is not None:
            started, last_id = arg(before[0]), arg(before[1])
            where.append(f"(started < {started} OR (started = {started} AND id < {last_id}))")
        rows = await self._engine.fetch(
            f"SELECT {_REC_COLS} FROM recordings WHERE {' AND '.join(where)}"
            f" ORDER BY started DESC, id DESC LIMIT {arg(max(0, limit))}",
            *args,
        )
        return [Recording(*r) for r in rows]

    async def expired_recordings(
        self, site_id: SiteId, ended_before: float, limit: int = 500
    ) -> list[Recording]:
        rows = await self._engine.fetch(
            f"SELECT {_REC_COLS} FROM recordings WHERE site_id = $1 AND ended < $2"
            " ORDER BY ended, id LIMIT $3",
            site_id,
            ended_before,
            max(0, limit),
        )
        return [Recording(*r) for r in rows]

    async def visitor_recordings(self, visitor_id: VisitorId) -> list[Recording]:
        rows = await self._engine.fetch(
            f"SELECT {_REC_COLS} FROM recordings WHERE visitor_id = $1"
            " ORDER BY started DESC, id DESC",
            visitor_id,
        )
        return [Recording(*r) for r in rows]

    async def add_recording_chunk(self, rec_id: RecordingId, chunk: Chunk) -> None:
        await self._engine.run(lambda db: db.execute(_CHUNK_INSERT, rec_id, *_chunk_values(chunk)))

    async def recording_chunks(self, rec_id: RecordingId) -> list[Chunk]:
        rows = await self._engine.fetch(
            "SELECT key, first_seq, last_seq, bytes, first_ts, last_ts FROM recording_chunks"
            " WHERE rec_id = $1 ORDER BY first_seq, key",
            rec_id,
        )
        return [Chunk(*r) for r in rows]

    async def delete_recordings(self, rec_ids: Sequence[RecordingId]) -> int:
        ids = list(rec_ids)

        async def op(db: Any) -> int:
            await db.execute("DELETE FROM recording_marks WHERE rec_id = ANY($1)", ids)
            await db.execute("DELETE FROM recording_chunks WHERE rec_id = ANY($1)", ids)
            done = await db.execute("DELETE FROM recordings WHERE id = ANY($1)", ids)
            return int(done.split()[-1])

        return await self._engine.run(op)

"""The outbox on PostgreSQL (``OutboxStore``): the feed is ``conversations.feed_seq``
(``nextval('conv_feed_seq')`` in ``chat_append``), cursors and jobs are two tables.

A sequence value is taken before its transaction commits, so feed order is
not commit order here: consumers re-read ``FEED_MARGIN`` behind their
position (``store/outbox.py``).  ``claim`` locks the rows it takes with
``SKIP LOCKED``, so processes claiming at once take different jobs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ...types import SiteId, now
from ..outbox import Change, Job, JobState, NewJob
from .engine import PostgresEngine

_JOB_COLS = (
    "id, site_id, kind, key, seq, payload, state, attempts, due_at, created_at, updated_at,"
    " last_error"
)


def _job(row: Any) -> Job:
    return Job(
        id=row[0],
        site_id=row[1],
        kind=row[2],
        key=row[3],
        seq=int(row[4]),
        payload=json.loads(row[5]),
        state=JobState(row[6]),
        attempts=int(row[7]),
        due_at=float(row[8]),
        created_at=float(row[9]),
        updated_at=float(row[10]),
        last_error=row[11],
    )


class PostgresOutbox(PostgresEngine):
    """``OutboxStore`` on PostgreSQL."""

    async def changes(self, after: int, limit: int = 200) -> list[Change]:
        rows = await self._fetch(
            "SELECT feed_seq, id, site_id, last_offset FROM conversations"
            " WHERE feed_seq > $1 ORDER BY feed_seq LIMIT $2",
            after,
            limit,
        )
        return [Change(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    async def feed_head(self) -> int:
        value = await self._fetchval(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM conv_feed_seq"
        )
        return int(value or 0)

    async def cursors(self, names: Sequence[str]) -> dict[str, int]:
        if not names:
            return {}
        rows = await self._fetch(
            "SELECT name, value FROM outbox_cursors WHERE name = ANY($1::text[])", list(names)
        )
        return {str(r[0]): int(r[1]) for r in rows}

    async def enqueue(self, jobs: Sequence[NewJob], cursors: Mapping[str, int]) -> int:
        t = now()

        async def op(db: Any) -> int:
            names = sorted({j.cursor for j in jobs if j.cursor is not None} | set(cursors))
            stored: dict[str, int] = {}
            if names:  # locked in name order: concurrent dispatchers never deadlock
                rows = await db.fetch(
                    "SELECT name, value FROM outbox_cursors WHERE name = ANY($1::text[])"
                    " ORDER BY name FOR UPDATE",
                    names,
                )
                stored = {str(r[0]): int(r[1]) for r in rows}
            added = 0
            for job in jobs:
                if job.cursor is not None and stored.get(job.cursor, -1) >= job.seq:
                    continue
                made = await db.fetchval(
                    f"INSERT INTO outbox_jobs ({_JOB_COLS})"
                    " VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $7, '')"
                    " ON CONFLICT (id) DO NOTHING RETURNING 1",
                    job.id,
                    job.site_id,
                    job.kind,
                    job.key,
                    job.seq,
                    json.dumps(job.payload),
                    t,
                )
                added += 1 if made else 0
            for name in sorted(cursors):
                await db.execute(
                    "INSERT INTO outbox_cursors (name, value) VALUES ($1, $2)"
                    " ON CONFLICT (name) DO UPDATE"
                    " SET value = GREATEST(outbox_cursors.value, excluded.value)",
                    name,
                    cursors[name],
                )
            return added

        return await self._tx(op)

    async def claim(self, now: float, lease: float, limit: int) -> list[Job]:
        rows = await self._fetch(
            f"UPDATE outbox_jobs SET due_at = $2 WHERE id IN ("
            " SELECT id FROM outbox_jobs j WHERE state = 'pending' AND due_at <= $1"
            " AND NOT EXISTS (SELECT 1 FROM outbox_jobs p WHERE p.key = j.key"
            " AND p.state = 'pending' AND p.seq < j.seq)"
            " ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
            f" AND due_at <= $1 RETURNING {_JOB_COLS}",
            now,
            now + lease,
            limit,
        )
        return [_job(r) for r in rows]

    async def _finish(self, job_id: str, sql: str, *args: Any) -> Job | None:
        row = await self._fetchrow(
            f"UPDATE outbox_jobs SET {sql} WHERE id = $1 RETURNING {_JOB_COLS}", job_id, *args
        )
        return _job(row) if row else None

    async def complete(self, job_id: str, now: float) -> Job | None:
        return await self._finish(job_id, "state = 'done', updated_at = $2", now)

    async def retry(self, job_id: str, now: float, due_at: float, error: str) -> Job | None:
        return await self._finish(
            job_id,
            "attempts = attempts + 1, due_at = $2, updated_at = $3, last_error = $4",
            due_at,
            now,
            error,
        )

    async def fail(self, job_id: str, now: float, error: str) -> Job | None:
        return await self._finish(
            job_id,
            "state = 'failed', attempts = attempts + 1, updated_at = $2, last_error = $3",
            now,
            error,
        )

    async def resend(self, job_id: str, now: float) -> Job | None:
        return await self._finish(
            job_id, "state = 'pending', attempts = 0, due_at = $2, updated_at = $2", now
        )

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._fetchrow(f"SELECT {_JOB_COLS} FROM outbox_jobs WHERE id = $1", job_id)
        return _job(row) if row else None

    async def jobs(self, site_id: SiteId, key_prefix: str = "", limit: int = 50) -> list[Job]:
        rows = await self._fetch(
            f"SELECT {_JOB_COLS} FROM outbox_jobs WHERE site_id = $1"
            " AND starts_with(key, $2) ORDER BY created_at DESC, seq DESC LIMIT $3",
            site_id,
            key_prefix,
            limit,
        )
        return [_job(r) for r in rows]

    async def prune(self, before: float) -> int:
        rows = await self._fetch(
            "DELETE FROM outbox_jobs WHERE state <> 'pending' AND updated_at < $1 RETURNING 1",
            before,
        )
        return len(rows)

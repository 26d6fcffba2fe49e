"""The outbox on SQLite (``OutboxStore``): the feed is ``entries.seq`` (each
entry takes the next place as ``append`` writes it; schema step 9), cursors
and jobs are two tables (migration step 6).

A conversation's place in the feed is its newest entry's ``seq``: ``changes``
walks the entries above a position (the partial index ``entries_feed``) and
keeps those that are their conversation's newest.  Before step 9 the place
was a column of the conversation's row, raised by every append: one page
more written per message (``docs/performance.md``, round two, part seven).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ...types import SiteId, now
from ..outbox import Change, Job, JobState, NewJob
from .engine import SQLiteEngine

_JOB_COLS = (
    "id, site_id, kind, key, seq, payload, state, attempts, due_at, created_at, updated_at,"
    " last_error"
)


# The feed's head: its largest place (the index's last key, one seek), or
# the highest place erasure deleted (``FEED_FLOOR``), so places are never
# handed out twice.  The next entry takes one more, inside the writer's
# transaction.
FEED_HEAD = (
    "SELECT max(coalesce((SELECT max(seq) FROM entries WHERE seq IS NOT NULL), 0),"
    " coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'feed_floor'), 0))"
)
FEED_NEXT = f"SELECT ({FEED_HEAD}) + 1"

# Before entries are deleted (erasure, retention): the feed's head is kept in
# ``meta``, or the next entries would take the places of those deleted, and a
# consumer whose position is past them would not see them.
FEED_FLOOR = (
    f"INSERT INTO meta (key, value) SELECT 'feed_floor', ({FEED_HEAD}) WHERE true"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)

# The conversations whose newest entry is above ``after``: an entry that is
# not its conversation's newest (a later one exists) is passed over.
_CHANGES = (
    "SELECT f.seq, f.conv_id, c.site_id, f.offset FROM entries f"
    " JOIN conversations c ON c.id = f.conv_id"
    " WHERE f.seq > ? AND NOT EXISTS"
    " (SELECT 1 FROM entries n WHERE n.conv_id = f.conv_id AND n.offset > f.offset)"
    " ORDER BY f.seq LIMIT ?"
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


def _get(db: sqlite3.Connection, job_id: str) -> Job | None:
    row = db.execute(f"SELECT {_JOB_COLS} FROM outbox_jobs WHERE id = ?", (job_id,)).fetchone()
    return _job(row) if row else None


class SQLiteOutbox(SQLiteEngine):
    """``OutboxStore`` on SQLite: one writer, so feed order is commit order."""

    async def changes(self, after: int, limit: int = 200) -> list[Change]:
        rows = await self._read_all(_CHANGES, (after, limit))
        return [Change(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    async def feed_head(self) -> int:
        row = await self._read_one(FEED_HEAD, ())
        return int(row[0] or 0)

    async def cursors(self, names: Sequence[str]) -> dict[str, int]:
        if not names:
            return {}
        marks = ", ".join("?" for _ in names)
        rows = await self._read_all(
            f"SELECT name, value FROM outbox_cursors WHERE name IN ({marks})", tuple(names)
        )
        return {str(name): int(value) for name, value in rows}

    async def enqueue(self, jobs: Sequence[NewJob], cursors: Mapping[str, int]) -> int:
        t = now()

        def op(db: sqlite3.Connection) -> int:
            added = 0
            for job in jobs:
                if job.cursor is not None:
                    row = db.execute(
                        "SELECT value FROM outbox_cursors WHERE name = ?", (job.cursor,)
                    ).fetchone()
                    if row is not None and int(row[0]) >= job.seq:
                        continue
                cur = db.execute(
                    f"INSERT OR IGNORE INTO outbox_jobs ({_JOB_COLS})"
                    " VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, '')",
                    (
                        job.id,
                        job.site_id,
                        job.kind,
                        job.key,
                        job.seq,
                        json.dumps(job.payload),
                        t,
                        t,
                        t,
                    ),
                )
                added += cur.rowcount
            for name, value in cursors.items():
                db.execute(
                    "INSERT INTO outbox_cursors (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                    (name, value),
                )
            return added

        return await self._run(op)

    async def claim(self, now: float, lease: float, limit: int) -> list[Job]:
        # Most polls find nothing due: ask the read lane first, so an idle outbox
        # never takes the writer (which the chat's messages share).
        due = await self._read_one(
            "SELECT 1 FROM outbox_jobs WHERE state = 'pending' AND due_at <= ? LIMIT 1", (now,)
        )
        if due is None:
            return []

        def op(db: sqlite3.Connection) -> list[Job]:
            rows = db.execute(
                f"SELECT {_JOB_COLS} FROM outbox_jobs j WHERE state = 'pending' AND due_at <= ?"
                " AND NOT EXISTS (SELECT 1 FROM outbox_jobs p WHERE p.key = j.key"
                " AND p.state = 'pending' AND p.seq < j.seq)"
                " ORDER BY due_at LIMIT ?",
                (now, limit),
            ).fetchall()
            jobs = [replace(_job(r), due_at=now + lease) for r in rows]
            db.executemany(
                "UPDATE outbox_jobs SET due_at = ? WHERE id = ?",
                [(j.due_at, j.id) for j in jobs],
            )
            return jobs

        return await self._run(op)

    async def _finish(self, job_id: str, sql: str, args: tuple[Any, ...]) -> Job | None:
        def op(db: sqlite3.Connection) -> Job | None:
            db.execute(f"UPDATE outbox_jobs SET {sql} WHERE id = ?", (*args, job_id))
            return _get(db, job_id)

        return await self._run(op)

    async def complete(self, job_id: str, now: float) -> Job | None:
        return await self._finish(job_id, "state = 'done', updated_at = ?", (now,))

    async def retry(self, job_id: str, now: float, due_at: float, error: str) -> Job | None:
        return await self._finish(
            job_id,
            "attempts = attempts + 1, due_at = ?, updated_at = ?, last_error = ?",
            (due_at, now, error),
        )

    async def fail(self, job_id: str, now: float, error: str) -> Job | None:
        return await self._finish(
            job_id,
            "state = 'failed', attempts = attempts + 1, updated_at = ?, last_error = ?",
            (now, error),
        )

    async def resend(self, job_id: str, now: float) -> Job | None:
        return await self._finish(
            job_id,
            "state = 'pending', attempts = 0, due_at = ?, updated_at = ?",
            (now, now),
        )

    async def get_job(self, job_id: str) -> Job | None:
        return await self._read(lambda db: _get(db, job_id))

    async def jobs(self, site_id: SiteId, key_prefix: str = "", limit: int = 50) -> list[Job]:
        rows = await self._read_all(
            f"SELECT {_JOB_COLS} FROM outbox_jobs WHERE site_id = ? AND key >= ? AND key < ?"
            " ORDER BY created_at DESC, seq DESC LIMIT ?",
            (site_id, key_prefix, key_prefix + "\U0010ffff", limit),
        )
        return [_job(r) for r in rows]

    async def prune(self, before: float) -> int:
        def op(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "DELETE FROM outbox_jobs WHERE state != 'pending' AND updated_at < ?", (before,)
            )
            return cur.rowcount

        return await self._run(op)

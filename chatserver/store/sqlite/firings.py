"""Proactive trigger firings and per-site counters, on SQLite."""

from __future__ import annotations

import sqlite3

from ...types import (
    Firing,
    SiteId,
    VisitorId,
)
from .engine import SQLiteEngine


def _may_fire(
    frequency: str, visit: int, at: float, now_visit: int, gap: float, now: float
) -> bool:
    """Whether a trigger last fired in ``visit`` at ``at`` may fire again (``claim_firing``)."""
    if frequency == "visit":
        return visit < now_visit
    if frequency == "always":
        return at + gap <= now
    return False


class SQLiteFirings(SQLiteEngine):
    """``FiringStore`` on SQLite: the methods of its domain over the shared engine."""

    async def claim_firing(
        self,
        visitor_id: VisitorId,
        trigger_id: str,
        *,
        visit: int,
        frequency: str,
        gap: float,
        now: float,
    ) -> bool:
        def op(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "SELECT visit, at FROM trigger_firings WHERE visitor_id = ? AND trigger_id = ?",
                (visitor_id, trigger_id),
            ).fetchone()
            if row is not None and not _may_fire(frequency, row[0], row[1], visit, gap, now):
                return False
            db.execute(
                "INSERT OR REPLACE INTO trigger_firings (visitor_id, trigger_id, visit, at,"
                " followed) VALUES (?, ?, ?, ?, 0)",
                (visitor_id, trigger_id, visit, now),
            )
            return True

        return await self._run(op)

    async def trigger_firings(self, visitor_id: VisitorId) -> dict[str, Firing]:
        rows = await self._all(
            "SELECT trigger_id, visit, at, followed FROM trigger_firings WHERE visitor_id = ?",
            (visitor_id,),
        )
        return {r[0]: Firing(int(r[1]), float(r[2]), bool(r[3])) for r in rows}

    async def claim_follow(self, visitor_id: VisitorId, trigger_id: str, fired_at: float) -> bool:
        def op(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE trigger_firings SET followed = 1 WHERE visitor_id = ? AND trigger_id = ?"
                " AND at = ? AND followed = 0",
                (visitor_id, trigger_id, fired_at),
            )
            return cur.rowcount > 0

        return await self._run(op)

    async def add_counter(self, site_id: SiteId, group: str, name: str, by: int = 1) -> int:
        def op(db: sqlite3.Connection) -> int:
            row = db.execute(
                "INSERT INTO counters (site_id, grp, name, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (site_id, grp, name) DO UPDATE SET value = value + excluded.value"
                " RETURNING value",
                (site_id, group, name, by),
            ).fetchone()
            return int(row[0])

        return await self._run(op)

    async def counters(self, site_id: SiteId, group: str) -> dict[str, int]:
        rows = await self._all(
            "SELECT name, value FROM counters WHERE site_id = ? AND grp = ?", (site_id, group)
        )
        return {r[0]: int(r[1]) for r in rows}

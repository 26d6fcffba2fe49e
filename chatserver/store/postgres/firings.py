"""Proactive trigger firings and per-site counters, on PostgreSQL.

``claim_firing`` takes an advisory lock on the (visitor, trigger) pair, since
the first firing has no row to lock yet; counters are one upsert each.
"""

from __future__ import annotations

from typing import Any

from ...types import (
    Firing,
    SiteId,
    VisitorId,
)
from ..sqlite.firings import _may_fire
from .engine import PostgresEngine


class PostgresFirings(PostgresEngine):
    """``FiringStore`` on PostgreSQL: the methods of its domain over the shared engine."""

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
        async def op(db: Any) -> bool:
            await self._lock(db, f"firing:{len(visitor_id)}:{visitor_id}:{trigger_id}")
            row = await db.fetchrow(
                "SELECT visit, at FROM trigger_firings WHERE visitor_id = $1 AND trigger_id = $2",
                visitor_id,
                trigger_id,
            )
            if row is not None and not _may_fire(frequency, row[0], row[1], visit, gap, now):
                return False
            await db.execute(
                "INSERT INTO trigger_firings (visitor_id, trigger_id, visit, at, followed)"
                " VALUES ($1, $2, $3, $4, false) ON CONFLICT (visitor_id, trigger_id) DO UPDATE"
                " SET visit = excluded.visit, at = excluded.at, followed = false",
                visitor_id,
                trigger_id,
                visit,
                now,
            )
            return True

        return await self._tx(op)

    async def trigger_firings(self, visitor_id: VisitorId) -> dict[str, Firing]:
        rows = await self._fetch(
            "SELECT trigger_id, visit, at, followed FROM trigger_firings WHERE visitor_id = $1",
            visitor_id,
        )
        return {r[0]: Firing(int(r[1]), float(r[2]), bool(r[3])) for r in rows}

    async def claim_follow(self, visitor_id: VisitorId, trigger_id: str, fired_at: float) -> bool:
        async def op(db: Any) -> bool:
            done = await db.execute(
                "UPDATE trigger_firings SET followed = true WHERE visitor_id = $1"
                " AND trigger_id = $2 AND at = $3 AND NOT followed",
                visitor_id,
                trigger_id,
                fired_at,
            )
            return bool(done != "UPDATE 0")

        return await self._tx(op)

    async def add_counter(self, site_id: SiteId, group: str, name: str, by: int = 1) -> int:
        async def op(db: Any) -> int:
            value = await db.fetchval(
                "INSERT INTO counters (site_id, grp, name, value) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (site_id, grp, name) DO UPDATE SET value = counters.value + $4"
                " RETURNING value",
                site_id,
                group,
                name,
                by,
            )
            return int(value)

        return await self._tx(op)

    async def counters(self, site_id: SiteId, group: str) -> dict[str, int]:
        rows = await self._fetch(
            "SELECT name, value FROM counters WHERE site_id = $1 AND grp = $2", site_id, group
        )
        return {r[0]: int(r[1]) for r in rows}

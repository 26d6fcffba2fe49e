"""Visitors: rows, page views, tracked events and verified identities, on PostgreSQL.

Writes that read the visitor's row first lock it (``FOR UPDATE``), so
concurrent merges, visit counts and identity claims of one visitor queue up.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from ...types import (
    JSON,
    AgentId,
    PageView,
    SiteId,
    Visitor,
    VisitorEvent,
    VisitorId,
    now,
    sorted_id,
)
from ..common import (
    MAX_PAGE_VIEWS,
    MAX_VISITOR_EVENTS,
    VISIT_GAP,
    merge_attributes,
)
from .engine import PostgresEngine
from .rows import _VISITOR_COLS, _visitor, visitor_of


class PostgresVisitors(PostgresEngine):
    """``VisitorStore`` on PostgreSQL: the methods of its domain over the shared engine."""

    async def create_visitor(self, site_id: SiteId, visitor_id: VisitorId | None = None) -> Visitor:
        visitor = Visitor(id=visitor_id or sorted_id("v"), site_id=site_id, created_at=now())

        async def op(db: Any) -> Visitor:
            await db.execute(
                "INSERT INTO visitors (id, site_id, created_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (id) DO NOTHING",
                visitor.id,
                visitor.site_id,
                visitor.created_at,
            )
            return await visitor_of(db, visitor.id)

        return await self._tx(op)

    async def get_visitor(self, visitor_id: VisitorId) -> Visitor | None:
        row = await self._fetchrow(
            f"SELECT {_VISITOR_COLS} FROM visitors WHERE id = $1", visitor_id
        )
        return None if row is None else _visitor(row)

    async def set_last_agent(self, visitor_id: VisitorId, agent_id: AgentId) -> None:
        async def op(db: Any) -> None:
            await db.execute(
                "UPDATE visitors SET last_agent_id = $1 WHERE id = $2", agent_id, visitor_id
            )

        await self._tx(op)

    async def update_visitor(
        self,
        visitor_id: VisitorId,
        *,
        name: str | None = None,
        email: str | None = None,
        attributes: JSON | None = None,
    ) -> Visitor:
        async def op(db: Any) -> Visitor:
            visitor = await visitor_of(db, visitor_id, lock=True)
            changed = replace(
                visitor,
                name=visitor.name if name is None else name,
                email=visitor.email if email is None else email,
                attributes=merge_attributes(visitor.attributes, attributes or {}),
            )
            await db.execute(
                "UPDATE visitors SET name = $1, email = $2, attributes = $3 WHERE id = $4",
                changed.name,
                changed.email,
                json.dumps(changed.attributes),
                visitor_id,
            )
            return changed

        return await self._tx(op)

    async def add_page_view(
        self,
        visitor_id: VisitorId,
        url: str,
        title: str = "",
        referrer: str = "",
        *,
        ts: float | None = None,
    ) -> PageView:
        at = now() if ts is None else ts

        async def op(db: Any) -> PageView:
            visitor = await visitor_of(db, visitor_id, lock=True)
            last = await db.fetchval(
                "SELECT ts FROM page_views WHERE visitor_id = $1 ORDER BY id DESC LIMIT 1",
                visitor_id,
            )
            visits = visitor.visits
            if visits == 0 or last is None or at - last > VISIT_GAP:
                visits += 1
                await db.execute(
                    "UPDATE visitors SET visits = $1 WHERE id = $2", visits, visitor_id
                )
            await db.execute(
                "INSERT INTO page_views (visitor_id, url, title, referrer, ts, visit)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                visitor_id,
                url,
                title,
                referrer,
                at,
                visits,
            )
            await db.execute(
                "DELETE FROM page_views WHERE visitor_id = $1 AND id <= ("
                "SELECT id FROM page_views WHERE visitor_id = $1 ORDER BY id DESC"
                " LIMIT 1 OFFSET $2)",
                visitor_id,
                MAX_PAGE_VIEWS,
            )
            return PageView(visitor_id, url, title, referrer, at, visits)

        return await self._tx(op)

    async def page_views(self, visitor_id: VisitorId, limit: int = 50) -> list[PageView]:
        rows = await self._fetch(
            "SELECT visitor_id, url, title, referrer, ts, visit FROM page_views"
            " WHERE visitor_id = $1 ORDER BY id DESC LIMIT $2",
            visitor_id,
            max(0, limit),
        )
        return [PageView(*r) for r in rows]

    async def add_visitor_event(
        self, visitor_id: VisitorId, name: str, props: JSON, *, ts: float | None = None
    ) -> VisitorEvent:
        event = VisitorEvent(visitor_id, name, props, now() if ts is None else ts)

        async def op(db: Any) -> VisitorEvent:
            await visitor_of(db, visitor_id, lock=True)
            await db.execute(
                "INSERT INTO visitor_events (visitor_id, name, props, ts) VALUES ($1, $2, $3, $4)",
                visitor_id,
                name,
                json.dumps(props),
                event.ts,
            )
            await db.execute(
                "DELETE FROM visitor_events WHERE visitor_id = $1 AND id <= ("
                "SELECT id FROM visitor_events WHERE visitor_id = $1 ORDER BY id DESC"
                " LIMIT 1 OFFSET $2)",
                visitor_id,
                MAX_VISITOR_EVENTS,
            )
            return event

        return await self._tx(op)

    async def visitor_events(self, visitor_id: VisitorId, limit: int = 50) -> list[VisitorEvent]:
        rows = await self._fetch(
            "SELECT visitor_id, name, props, ts FROM visitor_events"
            " WHERE visitor_id = $1 ORDER BY id DESC LIMIT $2",
            visitor_id,
            max(0, limit),
        )
        return [VisitorEvent(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    async def set_identity(self, visitor_id: VisitorId, user_id: str, verified: bool) -> Visitor:
        async def op(db: Any) -> Visitor:
            visitor = await visitor_of(db, visitor_id, lock=True)
            await db.execute(
                "UPDATE visitors SET user_id = $1, verified = $2 WHERE id = $3",
                user_id,
                verified,
                visitor_id,
            )
            if verified:  # the first verified visitor wins (the primary key decides)
                await db.execute(
                    "INSERT INTO identities (site_id, user_id, visitor_id) VALUES ($1, $2, $3)"
                    " ON CONFLICT (site_id, user_id) DO NOTHING",
                    visitor.site_id,
                    user_id,
                    visitor_id,
                )
            return replace(visitor, user_id=user_id, verified=verified)

        return await self._tx(op)

    async def find_visitors(
        self, site_id: SiteId, *, email: str = "", user_id: str = ""
    ) -> list[Visitor]:
        if not email and not user_id:
            return []
        rows = await self._fetch(
            f"SELECT {_VISITOR_COLS} FROM visitors WHERE site_id = $1"
            " AND (($2 <> '' AND lower(email) = lower($2)) OR ($3 <> '' AND user_id = $3))"
            " ORDER BY created_at, id",
            site_id,
            email,
            user_id,
        )
        return [_visitor(r) for r in rows]

    async def visitor_by_identity(self, site_id: SiteId, user_id: str) -> Visitor | None:
        row = await self._fetchrow(
            f"SELECT {_VISITOR_COLS} FROM visitors WHERE id = ("
            "SELECT visitor_id FROM identities WHERE site_id = $1 AND user_id = $2)",
            site_id,
            user_id,
        )
        return None if row is None else _visitor(row)

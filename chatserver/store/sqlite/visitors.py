"""Visitors: rows, page views, tracked events and verified identities, on SQLite."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

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
from .engine import SQLiteEngine
from .rows import (
    _VISITOR_COLS,
    _visitor,
    _visitor_of,
)


class SQLiteVisitors(SQLiteEngine):
    """``VisitorStore`` on SQLite: the methods of its domain over the shared engine."""

    async def create_visitor(self, site_id: SiteId, visitor_id: VisitorId | None = None) -> Visitor:
        visitor = Visitor(id=visitor_id or sorted_id("v"), site_id=site_id, created_at=now())

        def op(db: sqlite3.Connection) -> Visitor:
            db.execute(
                "INSERT OR IGNORE INTO visitors (id, site_id, created_at) VALUES (?, ?, ?)",
                (visitor.id, visitor.site_id, visitor.created_at),
            )
            return _visitor_of(db, visitor.id)

        return await self._run(op)

    async def get_visitor(self, visitor_id: VisitorId) -> Visitor | None:
        row = await self._read_one(
            f"SELECT {_VISITOR_COLS} FROM visitors WHERE id = ?",
            (visitor_id,),
        )
        return None if row is None else _visitor(row)

    async def set_last_agent(self, visitor_id: VisitorId, agent_id: AgentId) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE visitors SET last_agent_id = ? WHERE id = ?", (agent_id, visitor_id)
            )
        )

    async def update_visitor(
        self,
        visitor_id: VisitorId,
        *,
        name: str | None = None,
        email: str | None = None,
        attributes: JSON | None = None,
    ) -> Visitor:
        def op(db: sqlite3.Connection) -> Visitor:
            visitor = _visitor_of(db, visitor_id)
            changed = replace(
                visitor,
                name=visitor.name if name is None else name,
                email=visitor.email if email is None else email,
                attributes=merge_attributes(visitor.attributes, attributes or {}),
            )
            db.execute(
                "UPDATE visitors SET name = ?, email = ?, attributes = ? WHERE id = ?",
                (changed.name, changed.email, json.dumps(changed.attributes), visitor_id),
            )
            return changed

        return await self._run(op)

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

        def op(db: sqlite3.Connection) -> PageView:
            visitor = _visitor_of(db, visitor_id)
            last = db.execute(
                "SELECT ts FROM page_views WHERE visitor_id = ? ORDER BY id DESC LIMIT 1",
                (visitor_id,),
            ).fetchone()
            visits = visitor.visits
            if visits == 0 or last is None or at - last[0] > VISIT_GAP:
                visits += 1
                db.execute("UPDATE visitors SET visits = ? WHERE id = ?", (visits, visitor_id))
            view = PageView(visitor_id, url, title, referrer, at, visits)
            db.execute(
                "INSERT INTO page_views (visitor_id, url, title, referrer, ts, visit)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (visitor_id, url, title, referrer, at, visits),
            )
            db.execute(
                "DELETE FROM page_views WHERE visitor_id = ? AND id <= ("
                "SELECT id FROM page_views WHERE visitor_id = ? ORDER BY id DESC"
                " LIMIT 1 OFFSET ?)",
                (visitor_id, visitor_id, MAX_PAGE_VIEWS),
            )
            return view

        return await self._run(op)

    async def page_views(self, visitor_id: VisitorId, limit: int = 50) -> list[PageView]:
        rows = await self._read_all(
            "SELECT visitor_id, url, title, referrer, ts, visit FROM page_views"
            " WHERE visitor_id = ? ORDER BY id DESC LIMIT ?",
            (visitor_id, max(0, limit)),
        )
        return [PageView(*r) for r in rows]

    async def add_visitor_event(
        self, visitor_id: VisitorId, name: str, props: JSON, *, ts: float | None = None
    ) -> VisitorEvent:
        event = VisitorEvent(visitor_id, name, props, now() if ts is None else ts)

        def op(db: sqlite3.Connection) -> VisitorEvent:
            _visitor_of(db, visitor_id)
            db.execute(
                "INSERT INTO visitor_events (visitor_id, name, props, ts) VALUES (?, ?, ?, ?)",
                (visitor_id, name, json.dumps(props), event.ts),
            )
            db.execute(
                "DELETE FROM visitor_events WHERE visitor_id = ? AND id <= ("
                "SELECT id FROM visitor_events WHERE visitor_id = ? ORDER BY id DESC"
                " LIMIT 1 OFFSET ?)",
                (visitor_id, visitor_id, MAX_VISITOR_EVENTS),
            )
            return event

        return await self._run(op)

    async def visitor_events(self, visitor_id: VisitorId, limit: int = 50) -> list[VisitorEvent]:
        rows = await self._all(
            "SELECT visitor_id, name, props, ts FROM visitor_events"
            " WHERE visitor_id = ? ORDER BY id DESC LIMIT ?",
            (visitor_id, max(0, limit)),
        )
        return [VisitorEvent(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    async def set_identity(self, visitor_id: VisitorId, user_id: str, verified: bool) -> Visitor:
        def op(db: sqlite3.Connection) -> Visitor:
            visitor = _visitor_of(db, visitor_id)
            db.execute(
                "UPDATE visitors SET user_id = ?, verified = ? WHERE id = ?",
                (user_id, int(verified), visitor_id),
            )
            if verified:
                db.execute(
                    "INSERT OR IGNORE INTO identities (site_id, user_id, visitor_id)"
                    " VALUES (?, ?, ?)",
                    (visitor.site_id, user_id, visitor_id),
                )
            return replace(visitor, user_id=user_id, verified=verified)

        return await self._run(op)

    async def find_visitors(
        self, site_id: SiteId, *, email: str = "", user_id: str = ""
    ) -> list[Visitor]:
        if not email and not user_id:
            return []
        rows = await self._read_all(
            f"SELECT {_VISITOR_COLS} FROM visitors WHERE site_id = ?"
            " AND ((? != '' AND lower(email) = lower(?)) OR (? != '' AND user_id = ?))"
            " ORDER BY created_at, id",
            (site_id, email, email, user_id, user_id),
        )
        return [_visitor(r) for r in rows]

    async def visitor_by_identity(self, site_id: SiteId, user_id: str) -> Visitor | None:
        row = await self._one(
            f"SELECT {_VISITOR_COLS} FROM visitors WHERE id = ("
            "SELECT visitor_id FROM identities WHERE site_id = ? AND user_id = ?)",
            (site_id, user_id),
        )
        return None if row is None else _visitor(row)

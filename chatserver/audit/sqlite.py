"""The audit log on SQLite: the table ``audit_log`` (step 5 of
``chatserver/migrations_sqlite.py``), written on the engine's writer lane."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..store.sqlite.engine import SQLiteEngine
from ..types import JSON, SiteId
from .log import COLUMNS, AuditEntry, AuditQuery, entry_of, new_row


class SQLiteAuditLog:
    def __init__(self, engine: SQLiteEngine) -> None:
        self.engine = engine

    async def add(
        self,
        site_id: SiteId,
        actor: str,
        actor_name: str,
        action: str,
        target: str = "",
        address: str = "",
        detail: JSON | None = None,
        at: float | None = None,
    ) -> AuditEntry:
        values = new_row(site_id, actor, actor_name, action, target, address, detail, at)

        def op(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO audit_log (site_id, at, actor, actor_name, action, target, address,"
                " detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            return int(cur.lastrowid or 0)

        row_id = await self.engine.run(op)
        return entry_of((row_id, *values))

    async def entries(
        self, query: AuditQuery, before: str = "", limit: int = 100
    ) -> list[AuditEntry]:
        sql = [f"SELECT {COLUMNS} FROM audit_log WHERE site_id = ?"]
        args: list[Any] = [query.site_id]
        if before:
            sql.append("AND id < ?")
            args.append(int(before) if before.isdigit() else 0)
        if query.action.endswith("."):
            sql.append("AND action >= ? AND action < ?")
            args += [query.action, query.action[:-1] + "/"]  # "/" sorts right after "."
        elif query.action:
            sql.append("AND action = ?")
            args.append(query.action)
        if query.target:
            sql.append("AND target = ?")
            args.append(query.target)
        if query.actor:
            sql.append("AND (actor = ? OR instr(lower(actor_name), lower(?)) > 0)")
            args += [query.actor, query.actor]
        if query.since is not None:
            sql.append("AND at >= ?")
            args.append(query.since)
        if query.until is not None:
            sql.append("AND at < ?")
            args.append(query.until)
        sql.append("ORDER BY id DESC LIMIT ?")
        args.append(limit)
        rows = await self.engine._read_all(" ".join(sql), tuple(args))
        return [entry_of(r) for r in rows]

    async def purge(self, site_id: SiteId, before: float) -> int:
        def op(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "DELETE FROM audit_log WHERE site_id = ? AND at < ?", (site_id, before)
            )
            return cur.rowcount

        return await self.engine.run(op)

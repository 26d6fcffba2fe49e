"""The audit log on PostgreSQL: the table ``audit_log`` (step 5 of
``chatserver/migrations_postgres.py``)."""

from __future__ import annotations

from typing import Any

from ..store.postgres.engine import PostgresEngine
from ..types import JSON, SiteId
from .log import COLUMNS, AuditEntry, AuditQuery, entry_of, new_row


class PostgresAuditLog:
    def __init__(self, engine: PostgresEngine) -> None:
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

        async def op(db: Any) -> int:
            return int(
                await db.fetchval(
                    "INSERT INTO audit_log (site_id, at, actor, actor_name, action, target,"
                    " address, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    *values,
                )
            )

        row_id = await self.engine.run(op)
        return entry_of((row_id, *values))

    async def entries(
        self, query: AuditQuery, before: str = "", limit: int = 100
    ) -> list[AuditEntry]:
        args: list[Any] = [query.site_id]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        sql = [f"SELECT {COLUMNS} FROM audit_log WHERE site_id = $1"]
        if before:
            sql.append(f"AND id < {arg(int(before) if before.isdigit() else 0)}")
        if query.action.endswith("."):
            sql.append(f"AND starts_with(action, {arg(query.action)})")
        elif query.action:
            sql.append(f"AND action = {arg(query.action)}")
        if query.target:
            sql.append(f"AND target = {arg(query.target)}")
        if query.actor:
            a = arg(query.actor)
            sql.append(f"AND (actor = {a} OR strpos(lower(actor_name), lower({a})) > 0)")
        if query.since is not None:
            sql.append(f"AND at >= {arg(query.since)}")
        if query.until is not None:
            sql.append(f"AND at < {arg(query.until)}")
        sql.append(f"ORDER BY id DESC LIMIT {arg(limit)}")
        return [entry_of(r) for r in await self.engine.fetch(" ".join(sql), *args)]

    async def purge(self, site_id: SiteId, before: float) -> int:
        async def op(db: Any) -> int:
            status = await db.execute(
                "DELETE FROM audit_log WHERE site_id = $1 AND at < $2", site_id, before
            )
            return int(status.split()[-1])

        return await self.engine.run(op)

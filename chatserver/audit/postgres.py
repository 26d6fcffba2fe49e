"""The audit log on PostgreSQL: the table ``audit_log`` (step 5 of
``chatserver/migrations_postgres.py``)."""

from __future__ import annotations

import json
from typing import Any

from ..store.postgres.engine import PostgresEngine
from ..types import JSON, SiteId, now
from .log import MAX_TEXT, AuditEntry, AuditQuery

_COLS = "id, site_id, at, actor, actor_name, action, target, address, detail"


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        str(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7], json.loads(row[8])
    )


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
        values = (
            site_id,
            now() if at is None else at,
            actor[:MAX_TEXT],
            actor_name[:MAX_TEXT],
            action[:MAX_TEXT],
            target[:MAX_TEXT],
            address[:MAX_TEXT],
            json.dumps(detail or {}),
        )

        async def op(db: Any) -> int:
            return int(
                await db.fetchval(
                    "INSERT INTO audit_log (site_id, at, actor, actor_name, action, target,"
                    " address, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    *values,
                )
            )

        row_id = await self.engine.run(op)
        return _entry((row_id, *values))

    async def entries(
        self, query: AuditQuery, before: str = "", limit: int = 100
    ) -> list[AuditEntry]:
        args: list[Any] = [query.site_id]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        sql = [f"SELECT {_COLS} FROM audit_log WHERE site_id = $1"]
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
        return [_entry(r) for r in await self.engine.fetch(" ".join(sql), *args)]

    async def purge(self, site_id: SiteId, before: float) -> int:
        async def op(db: Any) -> int:
            status = await db.execute(
                "DELETE FROM audit_log WHERE site_id = $1 AND at < $2", site_id, before
            )
            return int(status.split()[-1])

        return await self.engine.run(op)

"""The audit trail: who signed in, read a conversation or a replay, exported a
visitor, changed settings (docs/privacy.md, "Audit trail").

* ``log``       the records (``AuditEntry``), the query and the contract
                (``AuditLog``: append only, newest first, per site)
* ``sqlite``, ``postgres``, ``redis``: the contract on each backend, beside
                the core Store (the same file, database or key prefix)
* ``Audit``     the service a node holds: ``record`` what a signed-in person
                did, and the retention sweep

Writing an entry never stops the action it records: a failure is logged
(the action has happened; refusing it afterwards would not undo it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..store import Store
from ..store.postgres.engine import PostgresEngine
from ..store.redis.engine import RedisEngine
from ..store.sqlite.engine import SQLiteEngine
from ..types import JSON, Agent, SiteId, now
from .log import AuditEntry, AuditLog, AuditQuery
from .postgres import PostgresAuditLog
from .redis import RedisAuditLog
from .sqlite import SQLiteAuditLog

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from ..node import Node

__all__ = ["Audit", "AuditEntry", "AuditLog", "AuditQuery", "open_audit"]

log = logging.getLogger("chatserver.audit")

RETENTION_DAYS = 365  # the default; a site's own is its ``audit_retention_days``
SWEEP_EVERY = 3600.0


def open_audit(store: Store) -> AuditLog:
    """The audit log kept beside ``store``; ``TypeError`` for another backend."""
    if isinstance(store, SQLiteEngine):
        return SQLiteAuditLog(store)
    if isinstance(store, RedisEngine):
        return RedisAuditLog(store)
    if isinstance(store, PostgresEngine):
        return PostgresAuditLog(store)
    raise TypeError(f"no audit log for a {type(store).__name__}")


class Audit:
    """A node's audit trail: ``record`` and the retention sweep."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.log: AuditLog = open_audit(store)
        self.failed = 0
        self._sweeper: asyncio.Task[None] | None = None

    def install(self, node: Node) -> None:
        node.hub.add_service(self.start, self.close)

    async def record(
        self,
        site_id: SiteId,
        who: Agent | str,
        action: str,
        target: str = "",
        address: str = "",
        detail: JSON | None = None,
    ) -> AuditEntry | None:
        """Append one entry (``who``: the agent, or ``"cli"``/``"system"``); ``None``
        if it could not be written (logged, counted in ``failed``)."""
        actor, name = (f"agent:{who.id}", who.name) if isinstance(who, Agent) else (who, who)
        try:
            return await self.log.add(site_id, actor, name, action, target, address, detail)
        except Exception:
            self.failed += 1
            log.exception("audit entry %s by %s not written", action, actor)
            return None

    async def from_request(
        self,
        request: HTTPConnection,
        who: Agent,
        action: str,
        target: str = "",
        detail: JSON | None = None,
    ) -> AuditEntry | None:
        """``record`` for an agent's HTTP request: their site, the client's address."""
        address = request.client.host if request.client else ""
        return await self.record(who.site_id, who, action, target, address, detail)

    async def start(self) -> None:
        self._sweeper = asyncio.ensure_future(self._sweep_forever())

    async def close(self) -> None:
        from ..tasks import stop

        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            await stop(sweeper)

    async def sweep(self, at: float | None = None) -> int:
        """Delete every site's entries older than its retention; how many."""
        at = now() if at is None else at
        removed = 0
        for site in await self.store.list_sites():
            days = site.settings.audit_retention_days
            if days > 0:
                removed += await self.log.purge(site.id, at - days * 86400)
        if removed:
            log.info("audit: %d entries past retention deleted", removed)
        return removed

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("audit retention sweep failed; trying again later")
            await asyncio.sleep(SWEEP_EVERY)

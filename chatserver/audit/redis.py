"""The audit log on Redis: a stream per site, ``audit:<site id>``.

Entries are appended with ``XADD`` (stream ids, ordered by the server's
clock, are the entries' ids); queries read newest first with ``XREVRANGE``
pages and filter here, examining at most ``SCAN_BUDGET`` entries a call (a
page can come back short: ask again from its last id).  ``purge`` deletes
from the oldest end while entries are older than the time given.
"""

from __future__ import annotations

import json
from typing import Any

from ..store.redis.engine import RedisEngine
from ..store.redis.rows import _text
from ..types import JSON, SiteId, now
from .log import MAX_TEXT, AuditEntry, AuditQuery

PAGE = 500
SCAN_BUDGET = 20_000


def _entry(site_id: SiteId, stream_id: Any, fields: dict[Any, Any]) -> AuditEntry:
    f = {_text(k): _text(v) for k, v in fields.items()}
    return AuditEntry(
        _text(stream_id),
        site_id,
        float(f.get("at", 0)),
        f.get("actor", ""),
        f.get("actor_name", ""),
        f.get("action", ""),
        f.get("target", ""),
        f.get("address", ""),
        json.loads(f.get("detail") or "{}"),
    )


class RedisAuditLog:
    def __init__(self, engine: RedisEngine) -> None:
        self.engine = engine

    def _key(self, site_id: SiteId) -> str:
        return self.engine.key("audit", site_id)

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
        fields = {
            "at": repr(now() if at is None else at),
            "actor": actor[:MAX_TEXT],
            "actor_name": actor_name[:MAX_TEXT],
            "action": action[:MAX_TEXT],
            "target": target[:MAX_TEXT],
            "address": address[:MAX_TEXT],
            "detail": json.dumps(detail or {}),
        }
        stream_id = await self.engine.client.xadd(self._key(site_id), fields)  # type: ignore[arg-type]
        return _entry(site_id, stream_id, fields)

    async def entries(
        self, query: AuditQuery, before: str = "", limit: int = 100
    ) -> list[AuditEntry]:
        out: list[AuditEntry] = []
        top = f"({before}" if before else "+"
        seen = 0
        while len(out) < limit and seen < SCAN_BUDGET:
            rows: list[Any] = (
                await self.engine.client.xrevrange(self._key(query.site_id), top, "-", PAGE) or []
            )
            if not rows:
                break
            for stream_id, fields in rows:
                e = _entry(query.site_id, stream_id, fields)
                if query.matches(e):
                    out.append(e)
                    if len(out) == limit:
                        break
            seen += len(rows)
            top = f"({_text(rows[-1][0])}"
            if len(rows) < PAGE:
                break
        return out

    async def purge(self, site_id: SiteId, before: float) -> int:
        key, removed, start = self._key(site_id), 0, "-"
        while True:
            rows: list[Any] = await self.engine.client.xrange(key, start, "+", PAGE) or []
            old = [_text(i) for i, f in rows if _entry(site_id, i, f).at < before]
            if old:
                removed += int(await self.engine.client.xdel(key, *old))
            if len(old) < len(rows) or len(rows) < PAGE:
                return removed
            start = f"({old[-1]}"

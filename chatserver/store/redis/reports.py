"""Conversation facts for the reports (``ReportStore``), on Redis.

Keys (new ones; the layout version is unchanged, docs/storage.md)::

    report:<conv>            string  the facts row, a JSON list in ``facts.COLUMNS`` order
    report-started:<site>    zset    the site's conversations with a row, scored by started
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ...reports.facts import ConvFacts, Row, from_row, to_row
from ...types import ConversationId, SiteId
from ..sqlite.reports import _cursor
from .engine import RedisEngine, _redis_errors
from .rows import _text

_CHUNK = 1000  # rows per MGET


class RedisReports(RedisEngine):
    """``ReportStore`` on Redis: the methods of its domain over the shared engine."""

    @_redis_errors
    async def save_facts(self, facts: Sequence[ConvFacts]) -> None:
        if not facts:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            for f in facts:
                pipe.set(self._k("report", f.conv_id), json.dumps(to_row(f)))
                pipe.zadd(self._k("report-started", f.site_id), {f.conv_id: f.started})
            await pipe.execute()

    @_redis_errors
    async def get_facts(self, conv_id: ConversationId) -> ConvFacts | None:
        raw = await self._redis.get(self._k("report", conv_id))
        return None if raw is None else from_row(json.loads(raw))

    async def report_facts(self, site_id: SiteId, since: float, until: float) -> list[ConvFacts]:
        return [from_row(r) for r in await self.report_rows(site_id, since, until)]

    @_redis_errors
    async def report_rows(self, site_id: SiteId, since: float, until: float) -> list[Row]:
        ids = await self._redis.zrangebyscore(
            self._k("report-started", site_id), since, f"({until!r}"
        )
        out: list[Row] = []
        for i in range(0, len(ids), _CHUNK):
            keys = [self._k("report", _text(c)) for c in ids[i : i + _CHUNK]]
            out.extend(json.loads(raw) for raw in await self._redis.mget(keys) if raw is not None)
        out.sort(key=lambda r: (r[3], r[0]))
        return [r for r in out if since <= r[3] < until]

    async def rebuild_cells(self, site_id: SiteId) -> int:
        """No rollups on Redis: reports read the facts rows (docs/reports.md)."""
        return 0

    async def report_cells(
        self, site_id: SiteId, since: float, until: float, first_day: str, last_day: str
    ) -> list[tuple[str, str, bytes]] | None:
        return None

    async def report_commented(self, site_id: SiteId, since: float, until: float) -> list[Row]:
        return [r for r in await self.report_rows(site_id, since, until) if r[21]]

    @_redis_errors
    async def closed_conversations(
        self, site_id: SiteId, *, after: str = "", limit: int = 500, stale_only: bool = False
    ) -> tuple[list[ConversationId], str]:
        at, last = _cursor(after)
        key = self._k("convs", "closed", site_id)
        low = "-inf" if at == float("-inf") else repr(at)
        # Members of one score come in id order, as the cursor wants; skip those
        # at the cursor's score up to its id (at most a few share a score).
        found: list[tuple[str, float]] = []
        offset = 0
        while len(found) < limit:
            page = await self._redis.zrangebyscore(
                key, low, "+inf", start=offset, num=limit, withscores=True
            )
            if not page:
                break
            offset += len(page)
            for item in page:
                member, score = item[0], item[1]
                conv_id = _text(member)
                if (float(score), conv_id) > (at, last):
                    found.append((conv_id, float(score)))
            if len(page) < limit:
                break
        found = found[:limit]
        nxt = f"{found[-1][1]!r} {found[-1][0]}" if len(found) == limit else ""
        ids = [c for c, _ in found]
        if not stale_only or not ids:
            return ids, nxt
        async with self._redis.pipeline(transaction=False) as pipe:
            for c in ids:
                pipe.hmget(self._k("conv", c), "rating", "rating_comment")
                pipe.get(self._k("report", c))
            replies = await pipe.execute()
        stale: list[ConversationId] = []
        for n, c in enumerate(ids):
            rating, comment = (None if v is None else _text(v) for v in replies[2 * n])
            raw = replies[2 * n + 1]
            row = None if raw is None else json.loads(raw)
            if row is None or row[20] != rating or row[21] != (comment or ""):
                stale.append(c)
        return stale, nxt

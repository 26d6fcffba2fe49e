"""Proactive trigger firings and per-site counters, on Redis."""

from __future__ import annotations

from ...types import (
    Firing,
    SiteId,
    VisitorId,
)
from .engine import RedisEngine, _redis_errors
from .rows import (
    _fields,
)


class RedisFirings(RedisEngine):
    """``FiringStore`` on Redis: the methods of its domain over the shared engine."""

    @_redis_errors
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
        reply = await self._script(
            "claim_firing",
            [self._k("firings", visitor_id)],
            [trigger_id, str(visit), frequency, repr(float(gap)), repr(float(now))],
        )
        return bool(reply)

    @_redis_errors
    async def trigger_firings(self, visitor_id: VisitorId) -> dict[str, Firing]:
        found: dict[str, Firing] = {}
        for trigger_id, raw in _fields(
            await self._redis.hgetall(self._k("firings", visitor_id))
        ).items():
            visit, at, followed = raw.split(" ")
            found[trigger_id] = Firing(int(visit), float(at), followed == "1")
        return found

    @_redis_errors
    async def claim_follow(self, visitor_id: VisitorId, trigger_id: str, fired_at: float) -> bool:
        reply = await self._script(
            "claim_follow", [self._k("firings", visitor_id)], [trigger_id, repr(float(fired_at))]
        )
        return bool(reply)

    @_redis_errors
    async def add_counter(self, site_id: SiteId, group: str, name: str, by: int = 1) -> int:
        return int(await self._redis.hincrby(self._k("counters", site_id, group), name, by))

    @_redis_errors
    async def counters(self, site_id: SiteId, group: str) -> dict[str, int]:
        raw = _fields(await self._redis.hgetall(self._k("counters", site_id, group)))
        return {name: int(value) for name, value in raw.items()}

"""Agent sessions (generations, revoked ids) and the login throttle, on Redis."""

from __future__ import annotations

from collections.abc import Sequence

from ...types import (
    AgentId,
    now,
)
from ..common import (
    throttle_delay,
)
from .engine import RedisEngine, _redis_errors
from .rows import (
    _text,
)


class RedisLogins(RedisEngine):
    """``LoginStore`` on Redis: the methods of its domain over the shared engine."""

    @_redis_errors
    async def session_generation(self, agent_id: AgentId) -> int:
        raw = await self._redis.get(self._k("session-gen", agent_id))
        return 0 if raw is None else int(_text(raw))

    @_redis_errors
    async def end_sessions(self, agent_id: AgentId) -> int:
        return int(await self._redis.incr(self._k("session-gen", agent_id)))

    @_redis_errors
    async def revoke_session(self, session_id: str, until: float) -> None:
        at_ms = int(until * 1000)
        if at_ms <= int(now() * 1000):
            return  # expired already: nothing left to revoke
        key = self._k("session-revoked", session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, "1", nx=True, pxat=at_ms)
            pipe.pexpireat(key, at_ms, gt=True)  # revoked before: keep the later time
            await pipe.execute()

    @_redis_errors
    async def session_revoked(self, session_id: str) -> bool:
        return bool(await self._redis.exists(self._k("session-revoked", session_id)))

    @_redis_errors
    async def throttle_wait(
        self, keys: Sequence[str], limit: int, window: float, now: float
    ) -> float:
        if not keys:
            return 0.0
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrangebyscore(self._k("throttle", key), now - window, "+inf", withscores=True)
            replies = await pipe.execute()
        return max(
            throttle_delay((score for _, score in reply), limit, window, now) for reply in replies
        )

    @_redis_errors
    async def throttle_reserve(
        self, keys: Sequence[str], limit: int, window: float, now: float, slot: str
    ) -> float:
        if not keys:
            return 0.0
        blocking = await self._script(
            "throttle_reserve",
            [self._k("throttle", key) for key in dict.fromkeys(keys)],
            [str(limit), str(max(1, int(window * 1000))), repr(now), repr(now - window), slot],
        )
        assert isinstance(blocking, list)
        return max((window - (now - float(_text(oldest))) for oldest in blocking), default=0.0)

    @_redis_errors
    async def throttle_release(self, keys: Sequence[str], slot: str) -> None:
        if not keys:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in dict.fromkeys(keys):
                pipe.zrem(self._k("throttle", key), slot)
            await pipe.execute()

    @_redis_errors
    async def throttle_clear(self, keys: Sequence[str]) -> None:
        if keys:
            await self._redis.delete(*(self._k("throttle", key) for key in keys))

    @_redis_errors
    async def session_states(
        self, agent_ids: Sequence[AgentId], session_ids: Sequence[str]
    ) -> tuple[dict[AgentId, int], set[str]]:
        agents, sessions = list(dict.fromkeys(agent_ids)), list(dict.fromkeys(session_ids))
        async with self._redis.pipeline(transaction=False) as pipe:
            if agents:
                pipe.mget([self._k("session-gen", a) for a in agents])
            if sessions:
                pipe.mget([self._k("session-revoked", s) for s in sessions])
            replies = await pipe.execute() if agents or sessions else []
        generations = {
            agent_id: 0 if raw is None else int(_text(raw))
            for agent_id, raw in zip(agents, replies.pop(0) if agents else [], strict=True)
        }
        revoked = {
            sid
            for sid, raw in zip(sessions, replies.pop(0) if sessions else [], strict=True)
            if raw is not None
        }
        return generations, revoked

"""Presence shared by every process, in Redis.

Per presence key two Redis keys, both under the presence key's hash tag
(``{<key>}``: a site's ``site:<id>:visitors`` and the like), so every
command on one presence key, MGET of its members' infos included, stays in
one Redis Cluster slot:

* ``presence:{<key>}`` a sorted set of ``"<member> <node>"`` scored by the
  entry's expiry (this process's clock + ``ttl``): one entry per process
  holding the member, so a member with tabs on two processes stays present
  until both let go;
* ``presence:{<key>}:info:<member>`` the member's JSON info (last writer
  wins), expiring with the member so nothing outlives its presence.

Both are coordination, not record: this process keeps its own members'
infos, and each heartbeat writes its entries again, and their infos where
they are gone, so after Redis lost them (flushed, restarted empty) they are back within
``ttl / 3`` seconds (``beat`` at once, when the router saw the loss).

One heartbeat task per process re-scores all of its entries every
``ttl / 3`` seconds and drops expired entries of the keys it touches, so a
killed process's members vanish at most ``ttl`` seconds later.  Clocks of
machines must agree to well within ``ttl`` (15 s by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .errors import StoreError
from .redis_client import RedisTarget, as_target, open_client
from .tasks import stop
from .types import JSON, new_id

log = logging.getLogger("chatserver.presence_redis")


class RedisPresence:
    def __init__(self, url: str | RedisTarget, prefix: str = "chat:", ttl: float = 15.0) -> None:
        self.target = as_target(url)
        self.url = self.target.url
        self.prefix = prefix
        self.ttl = ttl
        self.node = new_id("n")
        self._redis: aioredis.Redis | None = None
        self._local: dict[str, dict[str, int]] = {}
        self._infos: dict[tuple[str, str], str] = {}  # this process's members' infos (JSON)
        self._task: asyncio.Task[None] | None = None
        # A heartbeat's pipeline is built from ``_local`` and sent a moment later:
        # a ``remove`` or ``drop`` sent meanwhile on another connection could land
        # first, and the heartbeat then wrote the member back (and its info as
        # ``{}``) for up to ``ttl``.  They take turns in this process.
        self._turn = asyncio.Lock()

    async def start(self) -> None:
        self._redis = open_client(self.target, max_connections=8)
        self._task = asyncio.create_task(self._heartbeat(), name="chatserver-redis-presence")

    async def close(self) -> None:
        if self._task is not None:
            await stop(self._task)
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                for key, members in self._local.items():
                    if members:
                        await self._redis.zrem(self._zset(key), *(self._entry(m) for m in members))
            await self._redis.aclose()
            self._redis = None
        self._local.clear()
        self._infos.clear()

    def _zset(self, key: str) -> str:
        return f"{self.prefix}presence:{{{key}}}"

    def _info(self, key: str, member: str) -> str:
        return f"{self.prefix}presence:{{{key}}}:info:{member}"

    def _entry(self, member: str) -> str:
        return f"{member} {self.node}"

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise StoreError("presence is not started")
        return self._redis

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.beat()
            except (RedisError, OSError) as exc:
                log.warning("presence heartbeat failed: %s", exc)

    async def beat(self) -> None:
        """Refresh this process's entries; drop expired ones of its keys."""
        now = time.time()
        async with self._turn, self._client().pipeline(transaction=False) as pipe:
            for key, members in self._local.items():
                if members:
                    pipe.zadd(self._zset(key), {self._entry(m): now + self.ttl for m in members})
                    for m in members:
                        # Written again only if gone (Redis lost it): an
                        # unconditional SET could land after a newer ``update``.
                        info = self._infos.get((key, m), "{}")
                        pipe.set(self._info(key, m), info, ex=int(self.ttl) + 1, nx=True)
                        pipe.expire(self._info(key, m), int(self.ttl) + 1)
                pipe.zremrangebyscore(self._zset(key), "-inf", now)
            await pipe.execute()

    async def add(self, key: str, member: str, info: JSON) -> None:
        members = self._local.setdefault(key, {})
        members[member] = members.get(member, 0) + 1
        self._infos[(key, member)] = json.dumps(info)
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                pipe.zadd(self._zset(key), {self._entry(member): time.time() + self.ttl})
                pipe.set(self._info(key, member), json.dumps(info), ex=int(self.ttl) + 1)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis presence failed: {exc}") from exc

    async def remove(self, key: str, member: str) -> None:
        members = self._local.get(key)
        if members is None or member not in members:
            return
        members[member] -= 1
        if members[member] > 0:
            return
        del members[member]
        self._infos.pop((key, member), None)
        if not members:
            # Forget the key so the heartbeat does not touch it forever (keys
            # such as a conversation's viewers come and go); sweep it once now.
            del self._local[key]
        try:
            async with self._turn, self._client().pipeline(transaction=False) as pipe:
                pipe.zrem(self._zset(key), self._entry(member))
                pipe.zremrangebyscore(self._zset(key), "-inf", time.time())
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis presence failed: {exc}") from exc

    async def drop(self, key: str, member: str) -> None:
        # Every process's entry has gone with the member's sockets (an erasure
        # closes them everywhere first); the info, which a member's last
        # ``remove`` leaves to expire, goes now.
        redis, zset = self._client(), self._zset(key)
        try:
            async with self._turn:
                pattern = _glob_escape(member) + " *"
                entries = [e async for e, _ in redis.zscan_iter(zset, match=pattern)]
                async with redis.pipeline(transaction=False) as pipe:
                    if entries:  # every process's, another's heartbeat racing its last remove
                        pipe.zrem(zset, *entries)
                    pipe.delete(self._info(key, member))
                    await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis presence failed: {exc}") from exc

    async def update(self, key: str, member: str, info: JSON) -> None:
        if member not in self._local.get(key, {}):
            return
        self._infos[(key, member)] = json.dumps(info)
        try:
            await self._client().set(
                self._info(key, member), json.dumps(info), ex=int(self.ttl) + 1
            )
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis presence failed: {exc}") from exc

    async def _present(self, key: str) -> list[str]:
        try:
            entries = await self._client().zrangebyscore(self._zset(key), time.time(), "+inf")
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis presence failed: {exc}") from exc
        return sorted({str(e).rsplit(" ", 1)[0] for e in entries})

    async def members(self, key: str) -> dict[str, JSON]:
        present = await self._present(key)
        if not present:
            return {}
        try:
            infos = await self._client().mget([self._info(key, m) for m in present])
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis presence failed: {exc}") from exc
        return {m: json.loads(i) if i else {} for m, i in zip(present, infos, strict=True)}

    async def count(self, key: str) -> int:
        return len(await self._present(key))


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)

"""One way to open a Redis client for every Redis-backed seam.

* A blocking pool: a burst of commands waits for a free connection (up to
  ``timeout``) instead of failing with "too many connections".
* Connections idle for a second are health-checked before use, so one left
  over from before a Redis restart is replaced instead of failing a command.
* No automatic retry unless the caller says a command is safe to repeat
  (``retry_connection_errors``): a retried write whose reply was lost could
  run twice.
* The client owns its pool: ``aclose()`` closes every connection.

Where the client connects is a ``RedisTarget``: one server (a URL), a Redis
Cluster (``cluster``: the URL names any node; redis-py's cluster client finds
the rest and routes each command to the node owning its keys' slot), or the
primary a group of Sentinels names (``sentinels`` and ``master``: the URL
then gives only the user, password and database; its host is not used).
The coordination seams (broker, router, presence) take either; the Redis
record store takes one server only (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from .redact import redact_url


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where a coordination seam's Redis is: one server, a Cluster, or Sentinel's primary."""

    url: str
    cluster: bool = False
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str | None = None

    def __post_init__(self) -> None:
        if self.cluster and self.sentinels:
            raise ValueError("a Redis target is a Cluster or behind Sentinel, not both")
        if self.sentinels and not self.master:
            raise ValueError("Redis Sentinel needs the primary's name (--redis-master)")
        if self.cluster and _credentials(self.url).get("db", 0):
            raise ValueError("a Redis Cluster has database 0 only: drop the /<db> from the URL")

    def describe(self) -> str:
        """Where this points, for messages: never a password."""
        if self.sentinels:
            hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"Sentinel {hosts} primary {self.master!r}"
        shown = redact_url(self.url)
        return f"Redis Cluster via {shown}" if self.cluster else shown


def as_target(where: str | RedisTarget) -> RedisTarget:
    return where if isinstance(where, RedisTarget) else RedisTarget(where)


def parse_hosts(text: str) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port`` (``--redis-sentinel``); ValueError names the bad part."""
    out: list[tuple[str, int]] = []
    for part in text.split(","):
        host, colon, port = part.strip().rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"not host:port: {part.strip()!r}")
        out.append((host.strip("[]"), int(port)))
    return tuple(out)


def _credentials(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    kw: dict[str, Any] = {}
    if parts.username:
        kw["username"] = unquote(parts.username)
    if parts.password:
        kw["password"] = unquote(parts.password)
    db = parts.path.strip("/")
    if db.isdigit():
        kw["db"] = int(db)
    if parts.scheme == "rediss":
        kw["ssl"] = True
    return kw


def _retry(retry_connection_errors: bool) -> tuple[Retry, list[type[Exception]]]:
    if retry_connection_errors:
        return Retry(ExponentialBackoff(cap=0.5, base=0.05), 2), [RedisConnectionError]
    return Retry(NoBackoff(), 0), []


def open_client(
    where: str | RedisTarget,
    *,
    max_connections: int,
    timeout: float = 5.0,
    decode_responses: bool = True,
    retry_connection_errors: bool = False,
) -> aioredis.Redis:
    """A client for ``where``.  A Cluster's client is redis-py's ``RedisCluster``
    (typed as ``Redis`` here: the commands the seams use are the same)."""
    target = as_target(where)
    retry, retry_on = _retry(retry_connection_errors)
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 1,
        "decode_responses": decode_responses,
        "retry": retry,
        "retry_on_error": retry_on,
    }
    if target.cluster:
        return cast(aioredis.Redis, _cluster(target, max_connections, common))
    if target.sentinels:
        sentinel = Sentinel(
            list(target.sentinels),
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
        )
        kw = _credentials(target.url) | common
        primary = _BlockingSentinelPool(  # type: ignore[no-untyped-call]
            cast(str, target.master),
            sentinel,
            max_connections=max_connections,
            timeout=timeout,
            **kw,
        )
        return _SentinelPrimary(primary, sentinel)
    pool = aioredis.BlockingConnectionPool.from_url(
        target.url, max_connections=max_connections, timeout=timeout, **common
    )
    return aioredis.Redis.from_pool(pool)


class _BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's pool (connections go to the primary Sentinel names) that waits
    for a free connection, as the one-server pool does, instead of failing."""


class _SentinelPrimary(aioredis.Redis):
    """Sentinel's primary: a client owning its pool and its Sentinel connections."""

    def __init__(self, pool: SentinelConnectionPool, sentinel: Sentinel) -> None:
        super().__init__(connection_pool=pool)
        self.auto_close_connection_pool = True
        self._sentinel = sentinel

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for client in self._sentinel.sentinels:
            await client.aclose()


class _WaitingCluster(RedisCluster):
    """redis-py's cluster client fails a command when a node's pool is full
    (``MaxConnectionsError``); this one makes a burst wait, like the
    one-server pool: at most ``limit`` commands in flight."""

    def __init__(self, limit: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._limit = asyncio.Semaphore(limit)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._limit:
            return await super().execute_command(*args, **kwargs)


def _cluster(target: RedisTarget, max_connections: int, common: dict[str, Any]) -> RedisCluster:
    parts = urlsplit(target.url)
    seeds = [(parts.hostname or "127.0.0.1", parts.port or 6379)]
    kw = _credentials(target.url)
    kw.pop("db", None)  # 0: RedisTarget refuses another
    kw.pop("ssl", None)
    return _WaitingCluster(
        max_connections,
        startup_nodes=[ClusterNode(h, p) for h, p in seeds],
        # Per node; the semaphore keeps commands under it, pipelines get the rest.
        max_connections=max_connections * 2,
        ssl=parts.scheme == "rediss",
        **kw,
        **{k: v for k, v in common.items() if k != "retry_on_error"},
    )


def pubsub_client(client: aioredis.Redis, where: str | RedisTarget) -> aioredis.Redis:
    """The client whose ``pubsub()`` the broker listens on (and, on a Cluster,
    publishes through).

    One server or Sentinel's primary: ``client`` itself.  A Cluster: plain
    (not sharded) pub/sub, since PUBLISH on any node reaches subscribers on
    every node; the listener holds one connection to one node, picked at
    random among those the cluster client knows (another one after a
    reconnect, so a failed node is left behind).  The caller closes it.
    """
    target = as_target(where)
    if not target.cluster:
        return client
    cluster = cast(RedisCluster, client)
    nodes = cluster.get_nodes() or [cluster.get_default_node()]
    node = random.choice(nodes)
    kw = _credentials(target.url)
    kw.pop("db", None)
    retry, retry_on = _retry(True)  # publishing twice is harmless (offsets dedupe)
    return aioredis.Redis(
        host=node.host,
        port=int(node.port),
        socket_timeout=5.0,
        socket_connect_timeout=5.0,
        health_check_interval=1,
        decode_responses=False,
        retry=retry,
        retry_on_error=retry_on,
        **kw,
    )

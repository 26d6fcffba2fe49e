"""The Redis Broker: fan-out between server processes over Redis pub/sub.

Each process holds one pub/sub connection subscribed to exactly the channels
its local sessions need (never one global channel every process decodes),
and publishes through a shared connection pool.  Events are msgpack maps.

* ``subscribe`` waits for Redis to confirm the subscription, so an event
  published after it returns is delivered.
* If the pub/sub connection breaks, redis-py reconnects it and subscribes
  again to every channel it held (or, when that fails, the listener opens a
  new one with backoff).  Events published meanwhile are lost (at most once,
  as the Broker contract says).  Either way Redis confirms each channel's
  subscription with a ``subscribe`` message: one that no ``subscribe`` call
  waits for is a re-subscription, and the broker calls ``resubscribed``
  with the channel, so the hub catches up from the Store at once instead of
  waiting for a later event to reveal the gap (issue #15).
* Redis Cluster (``RedisTarget.cluster``): plain pub/sub, not sharded.  A
  PUBLISH on any node reaches the subscribers on every node, so channel
  names need no hash tag; the listener holds one connection to one node
  (``redis_client.pubsub_client``) and picks a node again when it
  reconnects; this process publishes through that same node, so its
  events reach every subscriber in the order it sent them.
* Order: one process's sequential publishes to a channel reach every
  subscriber in that order (Redis delivers a channel's messages in the order
  it executed the PUBLISH commands).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from .broker import Handler, Resubscribed
from .errors import StoreError
from .redact import scrub
from .redis_client import RedisTarget, as_target, open_client, pubsub_client
from .tasks import stop
from .types import JSON, new_id

log = logging.getLogger("chatserver.broker_redis")
MAX_SOON = 10_000  # publish_soon events waiting for Redis
SUBSCRIBE_TIMEOUT = 5.0  # seconds ``subscribe`` waits for Redis's confirmation


class RedisBroker:
    def __init__(self, url: str | RedisTarget, prefix: str = "chat:") -> None:
        self.target = as_target(url)
        self.url = self.target.url
        self.prefix = prefix
        self.node = new_id("n")
        self._redis: aioredis.Redis | None = None
        self._pubsub: PubSub | None = None
        self._sub_client: aioredis.Redis | None = None  # the listener's own (a Cluster's node)
        self._handler: Handler | None = None
        self._resubscribed: Resubscribed | None = None
        self._channels: set[str] = set()
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._soon: list[tuple[str, JSON]] = []  # publish_soon's events not yet sent
        self._soon_task: asyncio.Task[None] | None = None
        self._soon_dropped = 0

    # -- lifecycle -------------------------------------------------------

    async def start(self, handler: Handler, resubscribed: Resubscribed | None = None) -> None:
        self._handler = handler
        self._resubscribed = resubscribed
        # Publishing twice is harmless (receivers drop duplicate offsets), so a
        # publish on a connection that died with a Redis restart is retried.
        self._redis = open_client(
            self.target, max_connections=32, decode_responses=False, retry_connection_errors=True
        )
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise StoreError(
                f"cannot reach Redis at {self.target.describe()}: {scrub(str(exc), self.url)}"
            ) from exc
        # The node channel gives the pub/sub connection something to hold
        # from the start (and is where node-addressed events will go).
        self._channels.add(f"node:{self.node}")
        await self._connect()
        self._listener = asyncio.create_task(self._listen(), name="chatserver-redis-broker")

    async def close(self) -> None:
        if self._soon_task is not None:
            await stop(self._soon_task)
        if self._listener is not None:
            await stop(self._listener)
            self._listener = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        await self._close_sub_client()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _close_sub_client(self) -> None:
        sub, self._sub_client = self._sub_client, None
        if sub is not None and sub is not self._redis:
            with contextlib.suppress(Exception):
                await sub.aclose()

    async def _connect(self) -> None:
        """A fresh pub/sub connection subscribed to every channel we hold."""
        assert self._redis is not None
        old_client = self._sub_client
        self._sub_client = pubsub_client(self._redis, self.target)
        old, self._pubsub = self._pubsub, self._sub_client.pubsub()
        if old is not None:
            with contextlib.suppress(Exception):
                await old.aclose()
        if old_client is not None and old_client is not self._redis:
            with contextlib.suppress(Exception):
                await old_client.aclose()
        await self._pubsub.subscribe(*(self.prefix + c for c in self._channels))
        self._connected.set()

    async def _listen(self) -> None:
        backoff = 0.05
        while True:
            try:
                assert self._pubsub is not None
                message = await self._pubsub.get_message(timeout=1.0)
                backoff = 0.05
                if message is not None:
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # RedisError or OSError mostly; redis-py raises RuntimeError (and
                # worse) when a subscribe reconnects the socket under this read.
                # Whatever it is, the listener must not die: reconnect.
                self._connected.clear()
                log.warning("redis pub/sub lost (%s); reconnecting", exc)
                await asyncio.sleep(backoff * (1 + random.random()))
                backoff = min(backoff * 2, 2.0)
                try:
                    await self._connect()
                except Exception as again:  # the next round tries again
                    log.warning("redis pub/sub reconnect failed (%s)", again)
                else:
                    log.info("redis pub/sub reconnected to %d channels", len(self._channels))

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if not isinstance(message.get("channel"), bytes):
            return  # a pong: no channel
        channel = message["channel"].decode()[len(self.prefix) :]
        if kind == "subscribe":
            fut = self._pending.pop(channel, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
            elif channel in self._channels and not channel.startswith("node:"):
                self._resubscribe(channel)
            return
        if kind != "message" or self._handler is None:
            return
        try:
            event = msgpack.unpackb(message["data"], raw=False)
        except (ValueError, msgpack.UnpackException):
            log.error("undecodable event on %s", channel)
            return
        try:
            self._handler(channel, event)
        except Exception:
            log.exception("event handler failed on %s", channel)

    def _resubscribe(self, channel: str) -> None:
        """Redis confirmed a subscription nobody asked for: it was lost and is back."""
        log.debug("redis pub/sub re-subscribed %s", channel)
        if self._resubscribed is None:
            return
        try:
            self._resubscribed(channel)
        except Exception:
            log.exception("re-subscription handler failed on %s", channel)

    # -- Broker ----------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        if channel in self._channels:
            return
        self._channels.add(channel)
        loop = asyncio.get_running_loop()
        fut = self._pending[channel] = loop.create_future()
        deadline = loop.time() + SUBSCRIBE_TIMEOUT
        while True:
            try:
                await asyncio.wait_for(self._connected.wait(), deadline - loop.time())
                pubsub = self._pubsub
                assert pubsub is not None
                await pubsub.subscribe(self.prefix + channel)
                await asyncio.wait_for(asyncio.shield(fut), deadline - loop.time())
                return
            except TimeoutError as exc:
                self._pending.pop(channel, None)
                raise StoreError("redis subscribe failed: no confirmation") from exc
            except Exception as exc:
                # The pub/sub connection broke, or was reconnected or replaced
                # under this call (redis-py then raises RuntimeError or worse):
                # try again until the deadline.  The confirmation may also come
                # from the reconnect, which subscribes every channel we hold.
                if fut.done():
                    return
                if loop.time() + 0.05 >= deadline:
                    self._pending.pop(channel, None)
                    raise StoreError(f"redis subscribe failed: {type(exc).__name__}") from exc
                log.debug("redis subscribe to %s failed (%r); retrying", channel, exc)
                await asyncio.sleep(0.05)

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        self._pending.pop(channel, None)
        with contextlib.suppress(RedisError, OSError):
            if self._pubsub is not None:
                await self._pubsub.unsubscribe(self.prefix + channel)

    async def publish(self, channel: str, event: JSON) -> None:
        data = msgpack.packb(event, use_bin_type=True)
        try:
            await self._publisher().publish(self.prefix + channel, data)
        except RedisError as exc:
            raise StoreError(f"redis publish failed: {exc}") from exc

    def _publisher(self) -> aioredis.Redis:
        """One server or Sentinel's primary: the pooled client.  A Cluster: the
        node the listener is on (``pubsub_client``).  Every PUBLISH of this
        process goes through that one node, so they reach the subscribers on
        any node over one cluster-bus link each, in the order they were sent,
        across channels too; through different nodes one could overtake
        another (and redis-py's cluster client refuses PUBLISH in a pipeline)."""
        client = self._sub_client if self.target.cluster else self._redis
        if client is None:
            raise StoreError("broker is not started")
        return client

    async def publish_many(self, items: Sequence[tuple[str, JSON]]) -> None:
        """One pipelined round trip (and one pooled connection) for all of them."""
        if not items:
            return
        try:
            async with self._publisher().pipeline(transaction=False) as pipe:
                for channel, event in items:
                    pipe.publish(self.prefix + channel, msgpack.packb(event, use_bin_type=True))
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"redis publish failed: {exc}") from exc

    # -- publish without waiting (typing previews) -------------------------

    def publish_soon(self, channel: str, event: JSON) -> None:
        """Queue the event; one task publishes the queue, in order, pipelined.

        The queue holds at most ``MAX_SOON`` events: while Redis is slower
        than the events come, newer ones are dropped (they are typing
        previews, superseded by the next one anyway) instead of memory growing.
        """
        if len(self._soon) >= MAX_SOON:
            self._soon_dropped += 1
            if self._soon_dropped in (1, 1000) or self._soon_dropped % 100_000 == 0:
                log.warning("redis too slow: %d queued events dropped", self._soon_dropped)
            return
        self._soon.append((channel, event))
        if self._soon_task is None:
            self._soon_task = asyncio.create_task(self._publish_queued())

    async def _publish_queued(self) -> None:
        try:
            while self._soon:
                items, self._soon = self._soon, []
                try:
                    await self.publish_many(items)
                except Exception as exc:  # a StoreError, or closed meanwhile
                    log.warning("%d queued events lost: %s", len(items), exc)
        finally:
            self._soon_task = None

    # -- operations: readiness --------------------------------------------

    async def ping(self) -> None:
        if self._redis is None:
            raise StoreError("broker is not started")
        if not self._connected.is_set():
            raise StoreError("redis pub/sub is reconnecting")
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise StoreError(f"redis ping failed: {exc}") from exc

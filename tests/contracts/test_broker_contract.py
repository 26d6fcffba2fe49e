"""The Broker contract (``chatserver/broker.py``) for every backend.

The memory broker is one process; the Redis broker is checked across two
broker instances (two "processes") on a real redis-server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from chatserver import broker_redis
from chatserver.broker import Broker
from chatserver.broker_memory import MemoryBroker
from chatserver.broker_redis import RedisBroker
from chatserver.errors import StoreError

from ..redis_server import RedisServer
from ..redis_topologies import redis_cluster, redis_sentinel  # noqa: F401  (fixtures)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Inbox:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.changed = asyncio.Event()

    def __call__(self, channel: str, event: dict[str, Any]) -> None:
        self.events.append((channel, event))
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async def enough() -> None:
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(enough(), timeout)


def coordination_target(request: pytest.FixtureRequest) -> Any:
    """The Redis the seam under test uses: one server, a Cluster, or Sentinel's primary."""
    if request.param == "cluster":
        return request.getfixturevalue("redis_cluster").target
    if request.param == "sentinel":
        return request.getfixturevalue("redis_sentinel").target
    return request.getfixturevalue("redis_server").url


@pytest.fixture(params=["memory", "redis", "cluster", "sentinel"])
def make_pair(
    request: pytest.FixtureRequest,
) -> Callable[[], tuple[Broker, Broker]]:
    """Two brokers: a publisher and a subscriber (the same one for memory)."""
    if request.param == "memory":

        def memory() -> tuple[Broker, Broker]:
            broker = MemoryBroker()
            return broker, broker

        return memory
    target = coordination_target(request)
    prefix = request.getfixturevalue("redis_prefix")
    return lambda: (RedisBroker(target, prefix), RedisBroker(target, prefix))


@pytest.fixture
async def pair(
    make_pair: Callable[[], tuple[Broker, Broker]],
) -> AsyncIterator[tuple[Broker, Broker, Inbox]]:
    pub, sub = make_pair()
    inbox = Inbox()
    await sub.start(inbox)
    if pub is not sub:
        await pub.start(Inbox())
    yield pub, sub, inbox
    await sub.close()
    if pub is not sub:
        await pub.close()


async def test_subscribed_channel_gets_events_in_order(pair: Any) -> None:
    pub, sub, inbox = pair
    await sub.subscribe("conv:1")
    for i in range(100):
        await pub.publish("conv:1", {"op": "frame", "i": i, "text": "héllo"})
    await inbox.wait_for(100)
    assert [e["i"] for _, e in inbox.events] == list(range(100))
    assert {c for c, _ in inbox.events} == {"conv:1"}
    assert inbox.events[0][1]["text"] == "héllo"


async def test_unsubscribed_channels_get_nothing(pair: Any) -> None:
    pub, sub, inbox = pair
    await sub.subscribe("conv:a")
    await pub.publish("conv:b", {"n": 1})
    await sub.unsubscribe("conv:a")
    await pub.publish("conv:a", {"n": 2})
    await sub.subscribe("conv:c")
    await pub.publish("conv:c", {"n": 3})
    await inbox.wait_for(1)
    await asyncio.sleep(0.1)
    assert [e["n"] for _, e in inbox.events] == [3]


async def test_subscribe_then_publish_is_never_missed(pair: Any) -> None:
    pub, sub, inbox = pair
    for i in range(50):
        await sub.subscribe(f"visitor:{i}")
        await pub.publish(f"visitor:{i}", {"i": i})
    await inbox.wait_for(50)
    assert sorted(e["i"] for _, e in inbox.events) == list(range(50))


async def test_redis_broker_resubscribes_after_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    inbox = Inbox()
    sub, pub = RedisBroker(server.url), RedisBroker(server.url)
    try:
        await sub.start(inbox)
        await pub.start(Inbox())
        await sub.subscribe("site:1")
        await pub.publish("site:1", {"n": 1})
        await inbox.wait_for(1)
        server.kill()
        with pytest.raises(StoreError):
            await pub.publish("site:1", {"n": "lost"})
        server.start()
        deadline = asyncio.get_running_loop().time() + 10
        n = 2
        while len(inbox.events) < 2:
            assert asyncio.get_running_loop().time() < deadline, "never resubscribed"
            with contextlib.suppress(StoreError):
                await pub.publish("site:1", {"n": n})
            n += 1
            await asyncio.sleep(0.1)
        assert inbox.events[0][1]["n"] == 1 and inbox.events[1][1]["n"] != "lost"
    finally:
        await sub.close()
        await pub.close()
        server.stop()


@pytest.mark.parametrize("how", ["client kill", "redis restart"])
async def test_redis_broker_reports_every_resubscribed_channel(tmp_path: Path, how: str) -> None:
    """Issue #15: a lost subscription that comes back is reported per channel
    (``resubscribed``), so the hub can catch up from the store at once."""
    server = RedisServer(tmp_path / "redis").start()
    again: list[str] = []
    broker = RedisBroker(server.url)
    try:
        await broker.start(Inbox(), again.append)
        await broker.subscribe("conv:1")
        await broker.subscribe("site:1")
        await broker.unsubscribe("site:1")
        assert again == []  # a subscription asked for is not a re-subscription
        if how == "client kill":
            killer = redis.Redis(port=server.port)
            killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            killer.close()
        else:
            server.kill()
            server.start()
        deadline = asyncio.get_running_loop().time() + 10
        while "conv:1" not in again:
            assert asyncio.get_running_loop().time() < deadline, "never reported"
            await asyncio.sleep(0.05)
        assert set(again) == {"conv:1"}  # not the node channel, not site:1
    finally:
        await broker.close()
        server.stop()


async def test_memory_broker_never_reports_a_resubscription() -> None:
    again: list[str] = []
    broker = MemoryBroker()
    await broker.start(Inbox(), again.append)
    await broker.subscribe("conv:1")
    await broker.publish("conv:1", {"n": 1})
    assert again == []


async def test_publish_many_delivers_in_order(pair: Any) -> None:
    pub, sub, inbox = pair
    await sub.subscribe("conv:x")
    await sub.subscribe("conv:y")
    await pub.publish_many([("conv:x", {"i": 0}), ("conv:z", {"i": -1}), ("conv:y", {"i": 1})])
    await pub.publish_many([])
    await pub.publish_many([("conv:x", {"i": i}) for i in range(2, 60)])
    await inbox.wait_for(60)
    assert [e["i"] for _, e in inbox.events] == list(range(60))
    assert [c for c, _ in inbox.events][:2] == ["conv:x", "conv:y"]


# -- publish without waiting (typing previews) -------------------------------


async def test_publish_soon_delivers_in_order(pair: Any) -> None:
    pub, sub, inbox = pair
    await sub.subscribe("conv:soon")
    for i in range(100):
        pub.publish_soon("conv:soon", {"i": i})
        pub.publish_soon("conv:elsewhere", {"i": -1})
        if i % 10 == 0:
            await asyncio.sleep(0)  # some go out alone, some queue up
    await inbox.wait_for(100)
    await asyncio.sleep(0.1)
    assert [e["i"] for _, e in inbox.events] == list(range(100))


async def test_memory_publish_soon_is_delivered_before_it_returns() -> None:
    broker, inbox = MemoryBroker(), Inbox()
    await broker.start(inbox)
    await broker.subscribe("conv:1")
    broker.publish_soon("conv:1", {"n": 1})
    assert inbox.events == [("conv:1", {"n": 1})]
    await broker.close()


async def test_redis_publish_soon_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "redis").start()
    broker = RedisBroker(server.url)
    try:
        await broker.start(Inbox())
        server.kill()
        broker.publish_soon("conv:1", {"n": 1})  # Redis is gone: logged, not raised
        deadline = asyncio.get_running_loop().time() + 10
        while "queued events lost" not in caplog.text:
            assert asyncio.get_running_loop().time() < deadline, "no failure logged"
            await asyncio.sleep(0.05)
    finally:
        await broker.close()


async def test_redis_publish_soon_queue_is_bounded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker_redis, "MAX_SOON", 5)
    server = RedisServer(tmp_path / "redis").start()
    pub, sub, inbox = RedisBroker(server.url), RedisBroker(server.url), Inbox()
    try:
        await pub.start(Inbox())
        await sub.start(inbox)
        await sub.subscribe("conv:1")
        for i in range(8):  # no await between: the queue fills before it is sent
            pub.publish_soon("conv:1", {"i": i})
        assert "redis too slow: 1 queued events dropped" in caplog.text
        await inbox.wait_for(5)
        await asyncio.sleep(0.2)
        assert [e["i"] for _, e in inbox.events] == [0, 1, 2, 3, 4]
    finally:
        await pub.close()
        await sub.close()
        server.stop()


async def test_ping_answers_once_started(pair: Any) -> None:
    pub, sub, _ = pair
    assert await pub.ping() is None
    assert await sub.ping() is None


async def test_redis_broker_ping_fails_while_redis_is_down(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    broker = RedisBroker(redis.url, "ping:")
    await broker.start(Inbox())
    try:
        await broker.ping()
        redis.stop()
        with pytest.raises(StoreError):
            await broker.ping()
    finally:
        await broker.close()
        redis.stop()

"""The Presence contract (``chatserver/presence.py``) for every backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from chatserver.presence import Presence
from chatserver.presence_memory import MemoryPresence
from chatserver.presence_redis import RedisPresence
from chatserver.tasks import stop

from ..redis_topologies import redis_cluster, redis_sentinel  # noqa: F401  (fixtures)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def coordination_target(request: pytest.FixtureRequest) -> Any:
    """The Redis the seam under test uses: one server, a Cluster, or Sentinel's primary."""
    if request.param == "cluster":
        return request.getfixturevalue("redis_cluster").target
    if request.param == "sentinel":
        return request.getfixturevalue("redis_sentinel").target
    return request.getfixturevalue("redis_server").url


@pytest.fixture(params=["memory", "redis", "cluster", "sentinel"])
def make(request: pytest.FixtureRequest) -> Callable[[], Presence]:
    if request.param == "memory":
        return MemoryPresence
    target = coordination_target(request)
    prefix = request.getfixturevalue("redis_prefix")
    return lambda: RedisPresence(target, prefix, ttl=0.6)


@pytest.fixture
async def presence(make: Callable[[], Presence]) -> AsyncIterator[Presence]:
    p = make()
    await p.start()
    yield p
    await p.close()


async def test_add_remove_nest_and_info(presence: Presence) -> None:
    await presence.add("site:1:visitors", "v1", {"url": "/a"})
    await presence.add("site:1:visitors", "v1", {"url": "/b"})  # a second tab
    await presence.add("site:1:visitors", "v2", {})
    await presence.add("site:2:visitors", "v9", {})
    assert await presence.members("site:1:visitors") == {"v1": {"url": "/b"}, "v2": {}}
    assert await presence.count("site:1:visitors") == 2
    await presence.remove("site:1:visitors", "v1")
    assert await presence.count("site:1:visitors") == 2  # one tab left
    await presence.remove("site:1:visitors", "v1")
    await presence.remove("site:1:visitors", "unknown")
    assert list(await presence.members("site:1:visitors")) == ["v2"]
    assert await presence.count("site:2:visitors") == 1


async def test_redis_members_span_processes_and_expire_with_a_dead_one(
    redis_server: Any, redis_prefix: str
) -> None:
    a = RedisPresence(redis_server.url, redis_prefix, ttl=0.6)
    b = RedisPresence(redis_server.url, redis_prefix, ttl=0.6)
    await a.start()
    await b.start()
    try:
        await a.add("k", "v1", {"on": "a"})
        await b.add("k", "v1", {"on": "b"})
        await b.add("k", "v2", {})
        assert await a.count("k") == 2
        await a.remove("k", "v1")
        assert sorted(await a.members("k")) == ["v1", "v2"]  # still on b
        await asyncio.sleep(1.0)
        assert await a.count("k") == 2  # b's heartbeat keeps them
        assert b._task is not None
        # b dies without a word: its heartbeat stops (tasks.stop cancels again
        # if redis-py swallowed the first cancellation mid-command, which
        # left it beating in 1 run of about 20).
        await stop(b._task)
        await asyncio.sleep(1.0)
        assert await a.count("k") == 0
    finally:
        b._local.clear()
        await a.close()
        await b.close()


async def test_update_replaces_info_and_keeps_counts(presence: Presence) -> None:
    await presence.add("k", "v1", {"url": "/a"})
    await presence.add("k", "v1", {"url": "/a"})
    await presence.update("k", "v1", {"url": "/b"})
    await presence.update("k", "not-held", {"url": "/x"})
    assert await presence.members("k") == {"v1": {"url": "/b"}}
    await presence.remove("k", "v1")
    assert await presence.count("k") == 1
    await presence.remove("k", "v1")
    assert await presence.count("k") == 0


async def test_drop_forgets_a_member_and_its_info_now(presence: Presence) -> None:
    await presence.add("site:1:visitors", "v1", {"url": "/secret-page"})
    await presence.add("site:1:visitors", "v2", {"url": "/a"})
    await presence.remove("site:1:visitors", "v1")  # its socket closed...
    await presence.drop("site:1:visitors", "v1")  # ...and it was erased
    assert await presence.members("site:1:visitors") == {"v2": {"url": "/a"}}
    await presence.drop("site:1:visitors", "v-none")  # nothing to forget: no error
    assert await presence.count("site:1:visitors") == 1

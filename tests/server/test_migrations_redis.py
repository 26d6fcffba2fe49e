"""The Redis key layout's version (chatserver/migrations_redis.py) on a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from chatserver.errors import StoreError
from chatserver.migrations_redis import STEPS, Step, layout, layout_key, migrate
from chatserver.redis_client import open_client
from chatserver.store_redis import RedisStore

from ..redis_server import RedisServer

pytestmark = pytest.mark.anyio
LATEST = STEPS[-1].version


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = open_client(redis_server.url, max_connections=4)
    yield client
    await client.aclose()


async def test_the_first_start_writes_the_layout_and_later_starts_keep_it(
    redis_server: RedisServer, redis_prefix: str, client: Redis
) -> None:
    assert await client.get(layout_key(redis_prefix)) is None
    store = RedisStore(redis_server.url, prefix=redis_prefix)
    await store.start()
    site = await store.create_site("Shop")
    await store.close()
    assert await client.get(layout_key(redis_prefix)) == str(LATEST)
    store = RedisStore(redis_server.url, prefix=redis_prefix)
    await store.start()
    try:
        assert await store.get_site(site.id) == site
    finally:
        await store.close()
    assert await layout(client, redis_prefix) == LATEST
    assert await layout(client, redis_prefix + "other:") == 0  # per prefix


async def test_data_written_before_layout_versions_is_layout_1(
    redis_server: RedisServer, redis_prefix: str, client: Redis
) -> None:
    store = RedisStore(redis_server.url, prefix=redis_prefix)
    await store.start()
    site = await store.create_site("Shop")
    await store.close()
    await client.delete(layout_key(redis_prefix))  # as chatserver left it before the key
    store = RedisStore(redis_server.url, prefix=redis_prefix)
    await store.start()
    try:
        assert await store.get_site(site.id) == site
        assert await client.get(layout_key(redis_prefix)) == "1"
    finally:
        await store.close()


async def test_a_newer_layout_is_refused(
    redis_server: RedisServer, redis_prefix: str, client: Redis
) -> None:
    await client.set(layout_key(redis_prefix), str(LATEST + 1))
    store = RedisStore(redis_server.url, prefix=redis_prefix)
    with pytest.raises(StoreError) as refused:
        await store.start()
    message = str(refused.value)
    assert f"key layout version {LATEST + 1}" in message and f"up to {LATEST}" in message
    assert "upgrade chatserver" in message and repr(redis_prefix) in message
    assert redis_server.url.rsplit("/", 1)[0] in message  # names the server
    with pytest.raises(StoreError, match="not started"):
        await store.list_sites()
    assert await client.get(layout_key(redis_prefix)) == str(LATEST + 1)  # left alone


async def test_a_layout_key_that_is_no_number_is_refused(
    redis_server: RedisServer, redis_prefix: str, client: Redis
) -> None:
    await client.set(layout_key(redis_prefix), "two")
    with pytest.raises(StoreError, match="not a layout version"):
        await RedisStore(redis_server.url, prefix=redis_prefix).start()


async def test_steps_run_in_order_once_and_a_failing_one_keeps_the_version(
    redis_server: RedisServer, redis_prefix: str, client: Redis
) -> None:
    store = RedisStore(redis_server.url, prefix=redis_prefix)
    await store.start()
    site = await store.create_site("Shop")
    await store.close()
    runs: list[int] = []

    async def add_plans(client: Redis, prefix: str) -> None:  # an idempotent step
        runs.append(LATEST + 1)
        for site_id in await client.smembers(f"{prefix}sites"):
            await client.hset(f"{prefix}site:{site_id}", "plan", "free")

    async def fails(client: Redis, prefix: str) -> None:
        runs.append(LATEST + 2)
        raise RuntimeError("step failed")

    steps = (*STEPS, Step(LATEST + 1, "plans", add_plans), Step(LATEST + 2, "fails", fails))
    with pytest.raises(RuntimeError, match="step failed"):
        await migrate(client, redis_prefix, steps)
    assert runs == [LATEST + 1, LATEST + 2]
    assert await layout(client, redis_prefix) == LATEST + 1  # the step before the failure
    assert await client.hget(f"{redis_prefix}site:{site.id}", "plan") == "free"

    runs.clear()
    assert await migrate(client, redis_prefix, steps[:-1]) == []  # nothing left to run
    assert runs == []
    with pytest.raises(StoreError, match="upgrade chatserver"):  # today's code refuses it
        await RedisStore(redis_server.url, prefix=redis_prefix).start()


async def test_steps_must_be_numbered_in_order(client: Redis, redis_prefix: str) -> None:
    with pytest.raises(ValueError, match="numbered"):
        await migrate(client, redis_prefix, (*STEPS, *STEPS))
    assert await client.get(layout_key(redis_prefix)) is None

"""What only the Redis store has: a separate server that can die, and epochs.

The shared behaviour is in ``tests/contracts/``; these tests start
redis-servers of their own to kill them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio
from redis.exceptions import RedisError

from chatserver.errors import StoreError
from chatserver.store_redis import RedisStore
from chatserver.types import AuthorKind, Conversation, EntryKind

from ..redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own (AOF, appendfsync always), to kill."""
    server = RedisServer(tmp_path / "redis", fsync="always").start()
    yield server
    server.stop()


@pytest.fixture
async def shared_store(redis_server: RedisServer, redis_prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_server.url, prefix=redis_prefix)
    await store.start()
    yield store
    await store.close()


async def new_conv(store: RedisStore) -> Conversation:
    site = await store.create_site("Shop")
    visitor = await store.create_visitor(site.id)
    conv, _ = await store.open_conversation(site.id, visitor.id)
    return conv


async def say(store: RedisStore, conv_id: str, body: str, cid: str | None = None) -> int:
    entry, _ = await store.append(
        conv_id, EntryKind.TEXT, AuthorKind.VISITOR, "v_1", "V", body, cid=cid
    )
    return entry.offset


async def test_acknowledged_appends_survive_kill_9_of_redis(own_redis: RedisServer) -> None:
    store = RedisStore(own_redis.url)
    await store.start()
    try:
        conv = await new_conv(store)
        offsets = await asyncio.gather(*(say(store, conv.id, f"m{i}") for i in range(200)))
        assert sorted(offsets) == list(range(1, 201))
        own_redis.kill()  # SIGKILL: no shutdown, only what is in the AOF
    finally:
        await store.close()

    own_redis.start()  # same directory and port: loads the AOF
    reopened = RedisStore(own_redis.url)
    await reopened.start()
    try:
        entries = await reopened.entries(conv.id, limit=500)
        assert [e.offset for e in entries] == list(range(1, 201))
        assert {e.offset: e.body for e in entries} == {
            offset: f"m{i}" for i, offset in enumerate(offsets)
        }
        stored = await reopened.get_conversation(conv.id)
        assert stored is not None
        assert (stored.last_offset, stored.epoch) == (200, conv.epoch)
        assert await say(reopened, conv.id, "after") == 201
    finally:
        await reopened.close()


async def test_store_error_while_redis_is_down(own_redis: RedisServer) -> None:
    store = RedisStore(own_redis.url, timeout=2.0)
    await store.start()
    try:
        conv = await new_conv(store)
        assert await say(store, conv.id, "before", cid="m1") == 1
        own_redis.kill()
        for call in (
            store.get_conversation(conv.id),
            store.append(conv.id, EntryKind.TEXT, AuthorKind.VISITOR, "v_1", "V", "lost"),
            store.entries(conv.id),
        ):
            with pytest.raises(StoreError) as caught:
                await call
            assert not isinstance(caught.value, RedisError)
        own_redis.start()
        # the same store recovers: new connections, scripts loaded again
        assert await say(store, conv.id, "resent", cid="m1") == 1  # still deduplicated
        assert await say(store, conv.id, "after") == 2
        assert [e.body for e in await store.entries(conv.id)] == ["before", "after"]
    finally:
        await store.close()


async def test_start_fails_with_store_error_when_redis_is_unreachable() -> None:
    store = RedisStore(f"redis://:secret@127.0.0.1:{free_port()}/0", timeout=2.0)
    unreachable = r"cannot reach Redis at redis://:\*\*\*@127\.0\.0\.1:\d+/0:"
    with pytest.raises(StoreError, match=unreachable) as caught:
        await store.start()
    assert "secret" not in str(caught.value)
    with pytest.raises(StoreError, match="not started"):
        await store.get_site("s_1")


async def lose_history(server: RedisServer, key: str) -> None:
    raw = redis.asyncio.Redis.from_url(server.url)
    try:
        assert await raw.delete(key) == 1
    finally:
        await raw.aclose()


async def test_lost_stream_starts_a_new_epoch(
    shared_store: RedisStore, redis_server: RedisServer, redis_prefix: str
) -> None:
    store = shared_store
    conv = await new_conv(store)
    for i in range(3):
        await say(store, conv.id, f"m{i}", cid=f"c{i}")
    await lose_history(redis_server, f"{redis_prefix}entries:{conv.id}")

    # offsets are never reused: the history lost is marked by a new epoch
    entry, duplicate = await store.append(
        conv.id, EntryKind.TEXT, AuthorKind.VISITOR, "v_1", "V", "m0 again", cid="c0"
    )
    assert (entry.offset, entry.body, duplicate) == (4, "m0 again", False)
    changed = await store.get_conversation(conv.id)
    assert changed is not None
    assert changed.epoch != conv.epoch
    assert changed.last_offset == 4
    assert [e.offset for e in await store.entries(conv.id)] == [4]
    # the new epoch holds from then on
    assert await say(store, conv.id, "next") == 5
    again = await store.get_conversation(conv.id)
    assert again is not None
    assert (again.epoch, again.last_offset) == (changed.epoch, 5)
    assert [e.offset for e in await store.entries(conv.id, after=0)] == [4, 5]
    # and a second loss is noticed as well
    await lose_history(redis_server, f"{redis_prefix}entries:{conv.id}")
    assert await say(store, conv.id, "after the second loss") == 6
    third = await store.get_conversation(conv.id)
    assert third is not None
    assert third.epoch not in (conv.epoch, changed.epoch)
    assert [e.offset for e in await store.entries(conv.id)] == [6]


async def test_stale_entries_of_the_unposted_index_are_dropped(
    shared_store: RedisStore, redis_server: RedisServer, redis_prefix: str
) -> None:
    """An index entry whose record vanished (deleted by hand, a partial
    restore) is dropped by the sweep's listing instead of filling its batches."""
    site = await shared_store.create_site("Shop")
    gone = await shared_store.create_attachment(site.id, "visitor:v_1", "a.png", "image/png", 5)
    kept = await shared_store.create_attachment(site.id, "visitor:v_1", "b.png", "image/png", 6)
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await client.delete(f"{redis_prefix}attachment:{gone.id}")
        listed = await shared_store.unposted_attachments(kept.created_at + 1)
        assert [a.id for a in listed] == [kept.id]
        index = await client.zrange(f"{redis_prefix}unposted-attachments", 0, -1)
        assert [i.decode() for i in index] == [kept.id]
    finally:
        await client.aclose()

"""The REST API on the Redis backend: two chatserver processes sharing one redis-server.

A key made in the shared store works on every process; a message posted
through one process reaches a visitor connected to the other, live; entries
read back through either are the same; a revoked key is refused by both at
their next request (nothing caches keys); a key's rate is counted over both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatserver.api.keys import ApiKeys, parse
from chatserver.store_redis import RedisStore

from ..api_check import Api, error_of
from ..conftest import Client, Server, Shop, seed
from ..redis_server import RedisServer
from .test_api import MANUAL

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("close_clients")]

RATE = 40  # requests per key per minute, over both processes


@pytest.fixture
async def two(tmp_path: Path, redis: RedisServer) -> AsyncIterator[tuple[Shop, list[Server]]]:
    shop = await seed(tmp_path, agents=1, settings=MANUAL, redis_url=redis.url)
    procs = [
        Server(tmp_path / f"p{i}", "--redis", redis.url, "--api-rate", str(RATE)) for i in range(2)
    ]
    for p in procs:
        p.start()
    yield shop, procs
    for p in procs:
        p.stop()


async def test_read_and_post_across_processes_and_revoke_everywhere(
    two: tuple[Shop, list[Server]], redis: RedisServer
) -> None:
    shop, (first, second) = two
    (email,) = shop.agents
    agent_id = shop.agents[email]
    store = RedisStore(redis.url)
    await store.start()
    try:
        keys = ApiKeys(store, 0)
        _, key = await keys.create(shop.site.id, "helpdesk")
        await Client.agent(server=first, email=email)
        visitor = await Client.visitor(second, shop.key)
        conv = (await visitor.request({"t": "send", "cid": "m1", "body": "hello?"}))["conv"]
        on_first, on_second = Api(first.url, key), Api(second.url, key)
        try:
            r = await on_first.post(f"/conversations/{conv}/assign", json={"agent_id": agent_id})
            assert r.status_code == 200, r.text
            message = {"agent_id": agent_id, "body": "Hi from the helpdesk", "cid": "h-1"}
            r = await on_first.post(f"/conversations/{conv}/messages", json=message)
            assert r.status_code == 201, r.text
            got = await visitor.expect("msg", lambda f: f.get("body") == "Hi from the helpdesk")
            assert got["offset"] == r.json()["entry"]["offset"]
            # The retry lands on the other process: still one message.
            again = await on_second.post(f"/conversations/{conv}/messages", json=message)
            assert again.status_code == 200 and again.json()["duplicate"] is True
            read = [
                (await api.get(f"/conversations/{conv}/entries")).json()
                for api in (on_first, on_second)
            ]
            assert read[0] == read[1]
            texts = [e["body"] for e in read[0]["entries"] if e["kind"] == "text"]
            assert texts == ["hello?", "Hi from the helpdesk"]
            listed: list[str] = []
            for _ in range(20):  # the archive takes a new chat a batch (0.25 s) at a time
                page = await on_second.get("/conversations", params={"agent": agent_id})
                listed = [c["id"] for c in page.json()["conversations"]]
                if listed:
                    break
                await visitor.quiet(0.05)
            assert listed == [conv]

            parsed = parse(key)
            assert parsed is not None
            assert await keys.revoke(shop.site.id, parsed[1]) is not None
            for api in (on_first, on_second):
                assert error_of(await api.get(f"/conversations/{conv}"))[:2] == (401, 4102)
        finally:
            await on_first.close()
            await on_second.close()

        # The rate is the key's, whichever process counts: half on each, then none.
        _, busy = await keys.create(shop.site.id, "busy")
        apis = [Api(first.url, busy), Api(second.url, busy)]
        try:
            for i in range(RATE):
                r = await apis[i % 2].get(f"/conversations/{conv}")
                assert r.status_code == 200, (i, r.text)
            for api in apis:
                r = await api.get(f"/conversations/{conv}")
                assert error_of(r) == (429, 102, "rate_limited")
                assert 1 <= int(r.headers["retry-after"]) <= 61
        finally:
            for api in apis:
                await api.close()
    finally:
        await store.close()

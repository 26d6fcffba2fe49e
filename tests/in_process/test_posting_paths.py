"""Each way a visitor can answer a proactive greeting gets the chat routed alike.

A site with one agent online and a rule that greets every visitor as soon as
it connects (docs/triggers.md).  The greeting opens a conversation that is
``queued`` but not routed ("A triggered message does not occupy an agent");
the visitor's answer must route it, so the agent gets the conversation
``active`` and assigned to them, and the visitor gets the ``joined`` event.
The visitor answers three ways:

* ``send``: a typed message;
* ``attach``: a file uploaded with ``POST /api/attachments`` (docs/widget.md);
* ``offline``: the offline form's frame.

Before the one posting flow (``posting.py``, #16 step 3) only ``send`` told
the trigger engine: a file or offline-form answer was acknowledged but left
the conversation queued with nobody assigned, on every backend.  Now every
post emits the same ``entry`` conversation event, which the engine follows.

Each path runs on the in-process node (``tests/node.py``), on a server
process with the embedded backend, and on server processes sharing a
redis-server (the visitor on one, the agent on another).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatserver.proactive import TRIGGER_KIND, WAIT_KIND
from chatserver.proactive.rules import parse_rule
from chatserver.store import Store
from chatserver.store_redis import RedisStore
from chatserver.store_sqlite import SQLiteStore

from ..conftest import Client, Server, Shop, seed
from ..node import Node
from ..redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

GREETING = "Hi! Can we help you find something?"
GREET_AT_ONCE = {
    "name": "Greet everyone",
    "conditions": [{"kind": "time_on_site", "op": ">=", "value": 0}],
    "actions": [{"type": "message", "body": GREETING}],
}
PAGE = {"url": "https://shop.example/", "title": "Shop"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
ROUTED_WITHIN = 3.0  # seconds; routing takes milliseconds when it happens


@dataclass
class Place:
    """Where a test runs: connect clients, upload files, read the store."""

    shop: Shop
    visitor: Callable[[], Awaitable[Client]]
    agent: Callable[[], Awaitable[Client]]
    upload: Callable[[str, bytes], Awaitable[httpx.Response]]
    store: Callable[[], AbstractAsyncContextManager[Store]]  # a started store on its data


async def put_rule(store: Store, shop: Shop) -> None:
    """The greeting rule, checked by the console's parser and stored as the console stores it
    (no visitor came yet, so no process has the site's rules cached: no event needed)."""
    stored = parse_rule(GREET_AT_ONCE, None, "t_greet").to_json()
    await store.put_doc(shop.site.id, TRIGGER_KIND, "t_greet", stored)


def server_place(shop: Shop, visitors: Server, agents: Server, store: Callable[[], Store]) -> Place:
    async def upload(token: str, data: bytes) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.post(
                f"{visitors.url}/api/attachments",
                params={"name": "photo.png"},
                content=data,
                headers={"Authorization": f"Bearer {token}"},
            )

    @contextlib.asynccontextmanager
    async def started() -> AsyncIterator[Store]:
        s = store()
        await s.start()
        try:
            yield s
        finally:
            await s.close()

    return Place(
        shop,
        lambda: Client.visitor(visitors, shop.key, page=PAGE),
        lambda: Client.agent(agents, next(iter(shop.agents))),
        upload,
        started,
    )


@pytest.fixture(params=["node", "embedded", pytest.param("redis", marks=pytest.mark.slow)])
async def place(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Place]:
    """The greeting rule on a new site with one agent, on the node or on server processes."""
    if request.param == "node":
        node = await Node(tmp_path / "node").start()
        try:
            shop = await node.seed()
            await put_rule(node.store, shop)

            async def upload(token: str, data: bytes) -> httpx.Response:
                async with node.http() as http:
                    return await http.post(
                        "/api/attachments",
                        params={"name": "photo.png"},
                        content=data,
                        headers={"Authorization": f"Bearer {token}"},
                    )

            @contextlib.asynccontextmanager
            async def store() -> AsyncIterator[Store]:
                yield node.store  # the node's own: the node closes it

            yield Place(
                shop,
                lambda: node.visitor(shop.key, page=PAGE),
                lambda: node.agent(next(iter(shop.agents))),
                upload,
                store,
            )
        finally:
            await node.close()
    elif request.param == "embedded":
        server: Server = request.getfixturevalue("server")  # one per module
        shop = await seed(server.data)
        sqlite = SQLiteStore(server.data / "chatserver.db")
        await sqlite.start()
        try:
            await put_rule(sqlite, shop)
        finally:
            await sqlite.close()
        yield server_place(shop, server, server, lambda: SQLiteStore(server.data / "chatserver.db"))
    else:
        redis: RedisServer = request.getfixturevalue("redis")
        shop = await seed(tmp_path, redis_url=redis.url)
        rs = RedisStore(redis.url)
        await rs.start()
        try:
            await put_rule(rs, shop)
        finally:
            await rs.close()
        a = Server(tmp_path / "a", "--redis", redis.url).start()
        b = Server(tmp_path / "b", "--redis", redis.url).start()
        try:
            yield server_place(shop, a, b, lambda: RedisStore(redis.url))
        finally:
            a.stop()
            b.stop()


async def greeted(place: Place) -> tuple[Client, Client, str]:
    """The agent online, then a visitor greeted: (agent, visitor, the greeting's conversation)."""
    agent = await place.agent()
    visitor = await place.visitor()
    # The greeting opened the conversation the visitor follows; written before
    # the follow's position or after, it is in the history up to there or live.
    follow = await visitor.expect("conv", lambda f: bool(f.get("follow")))
    conv = str(follow["conv"]["id"])
    page = await visitor.request({"t": "history", "conv": conv, "since": 0})
    texts = [m for m in page["messages"] + visitor.of("msg", conv) if m["kind"] == "text"]
    if not texts:  # appended after the history was read: it comes live
        await visitor.expect("msg", lambda f: f.get("conv") == conv and f["kind"] == "text")
        texts = visitor.of("msg", conv)
    assert [m["body"] for m in texts][:1] == [GREETING], texts
    assert texts[0]["data"]["auto"]["trigger"] == "t_greet"
    async with place.store() as store:
        stored = await store.get_conversation(conv)
        assert stored is not None and stored.state.value == "queued" and not stored.agents
        assert await store.get_doc(place.shop.site.id, WAIT_KIND, conv) is not None
    return agent, visitor, conv


class NotRouted(AssertionError):
    """The answer was taken, but the conversation was not routed."""


async def assert_routed(place: Place, agent: Client, visitor: Client, conv: str) -> None:
    """The agent gets the conversation active and theirs; the visitor, ``joined``.

    On failure the message says what each side got instead, and the stored state.
    """
    agent_id = next(iter(place.shop.agents.values()))

    def assigned(f: dict[str, Any]) -> bool:
        c = f["conv"]
        return bool(
            c["id"] == conv
            and c["state"] == "active"
            and agent_id in [a["id"] for a in c["agents"]]
        )

    def joined(f: dict[str, Any]) -> bool:
        return bool(
            f.get("conv") == conv
            and f.get("kind") == "event"
            and f["data"].get("event") == "joined"
        )

    deadline = asyncio.get_running_loop().time() + ROUTED_WITHIN
    while asyncio.get_running_loop().time() < deadline:
        if any(f.get("t") == "conv" and assigned(f) for f in agent.frames) and any(
            f.get("t") == "msg" and joined(f) for f in visitor.frames
        ):
            return
        await asyncio.sleep(0.05)
    async with place.store() as store:
        stored = await store.get_conversation(conv)
        waiting = await store.get_doc(place.shop.site.id, WAIT_KIND, conv) is not None
    agent_saw = [
        (f["conv"]["state"], [a["id"] for a in f["conv"]["agents"]])
        for f in agent.frames
        if f.get("t") == "conv" and f["conv"]["id"] == conv
    ]
    agent_msgs = [f.get("body") for f in agent.of("msg", conv)]
    visitor_events = [
        f["data"].get("event")
        for f in visitor.frames
        if f.get("t") == "msg" and f.get("conv") == conv and f.get("kind") == "event"
    ]
    raise NotRouted(
        f"not routed within {ROUTED_WITHIN}s: stored state "
        f"{stored.state.value if stored else None}, agents {stored.agents if stored else None}, "
        f"still waiting for an answer: {waiting}; the agent's conv frames (state, agents): "
        f"{agent_saw}; the agent's live entries of it: {agent_msgs}; "
        f"the visitor's events: {visitor_events}"
    )


async def agent_reads(agent: Client, conv: str, body: str) -> None:
    """The assigned agent has the greeting and the answer (history, then live)."""
    page = await agent.request({"t": "history", "conv": conv, "since": 0})
    seen = {m["offset"]: m for m in page["messages"] + agent.of("msg", conv)}
    texts = [m["body"] for _, m in sorted(seen.items()) if m["kind"] == "text"]
    assert texts == [GREETING, body], texts


async def test_a_typed_answer_routes_the_greeting(place: Place) -> None:
    agent, visitor, conv = await greeted(place)
    ack = await visitor.request({"t": "send", "cid": "a1", "body": "Yes, a red jacket"})
    assert ack["t"] == "ack" and ack["conv"] == conv, ack
    await assert_routed(place, agent, visitor, conv)
    await agent_reads(agent, conv, "Yes, a red jacket")


async def test_a_file_answer_routes_the_greeting(place: Place) -> None:
    agent, visitor, conv = await greeted(place)
    uploaded = await place.upload(visitor.welcome["token"], PNG)
    assert uploaded.status_code == 200, uploaded.text
    frame = {"t": "attach", "cid": "a1", "attachment": uploaded.json()["id"]}
    ack = await visitor.request(frame)
    assert ack["t"] == "ack" and ack["conv"] == conv, ack
    await assert_routed(place, agent, visitor, conv)
    await agent_reads(agent, conv, "photo.png")


async def test_an_offline_form_answer_routes_the_greeting(place: Place) -> None:
    agent, visitor, conv = await greeted(place)
    frame = {
        "t": "offline",
        "cid": "a1",
        "name": "Vi",
        "email": "vi@example.com",
        "body": "Yes, a red jacket",
    }
    ack = await visitor.request(frame)
    assert ack["t"] == "ack" and ack["conv"] == conv, ack
    await assert_routed(place, agent, visitor, conv)
    await agent_reads(agent, conv, "Yes, a red jacket")

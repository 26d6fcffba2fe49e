"""Visitor page tracking, identify and attributes end to end (a real server, SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatserver.store_sqlite import SQLiteStore

from ..conftest import Client, Server, seed
from ..redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]


def of_visitor(visitor: Client) -> Any:
    vid = visitor.welcome["visitor"]
    return lambda f: f["visitor"]["id"] == vid


async def ok(client: Client, frame: dict[str, Any]) -> dict[str, Any]:
    reply = await client.request(frame)
    assert reply["t"] == "ok", (frame, reply)
    return reply


async def test_page_views_are_recorded_and_agents_see_them_live(server: Server) -> None:
    shop = await seed(server.data)
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    vid = visitor.welcome["visitor"]

    await ok(
        visitor,
        {"t": "page", "url": "https://shop.test/", "title": "Home", "referrer": "https://s.test/"},
    )
    live = await agent.expect("visitor", of_visitor(visitor))
    assert live["visitor"]["visits"] == 1
    assert live["visitor"]["page"]["url"] == "https://shop.test/"
    assert live["visitor"]["page"]["title"] == "Home"
    assert live["visitor"]["page"]["referrer"] == "https://s.test/"
    assert "re" not in live

    mark = len(agent.frames)
    await ok(visitor, {"t": "page", "url": "https://shop.test/cart"})
    live = await agent.expect("visitor", of_visitor(visitor), after=mark)
    assert live["visitor"]["page"]["url"] == "https://shop.test/cart"
    assert live["visitor"]["page"]["title"] == ""

    # presence shows the current page
    listed = await agent.request({"t": "visitors"})
    (entry,) = [v for v in listed["visitors"] if v["id"] == vid]
    assert entry["url"] == "https://shop.test/cart"
    assert listed["count"] >= 1

    # Without a record yet (docs/protocol.md §3.5) the views are held in the
    # server's memory: the agent gets them with an unsaved record.
    before = await agent.request({"t": "visitor", "visitor": vid})
    # The first thing worth keeping stores the record with the held views.
    await ok(visitor, {"t": "attrs", "set": {"plan": "gold"}})
    after = await agent.request({"t": "visitor", "visitor": vid})
    for reply in (before, after):
        assert reply["t"] == "visitor", reply
        assert reply["visitor"]["id"] == vid and reply["visitor"]["visits"] == 1
        urls = [p["url"] for p in reply["pages"]]
        assert urls == ["https://shop.test/cart", "https://shop.test/"]
        assert all(p["visit"] == 1 for p in reply["pages"])
    assert (before["visitor"]["attributes"], after["visitor"]["attributes"]) == (
        {},
        {"plan": "gold"},
    )

    # visitors never get visitor frames
    await visitor.quiet(0.2)
    assert not visitor.of("visitor")


async def test_presence_keeps_counting_tabs_after_page(server: Server) -> None:
    shop = await seed(server.data)
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    first = await Client.visitor(server, shop.key)
    token = first.welcome["token"]
    second = await Client.visitor(server, shop.key, token=token)
    await ok(first, {"t": "page", "url": "https://shop.test/a"})
    await ok(second, {"t": "page", "url": "https://shop.test/b"})
    await first.close()
    await second.quiet(0.2)
    listed = await agent.request({"t": "visitors"})
    (entry,) = [v for v in listed["visitors"] if v["id"] == first.welcome["visitor"]]
    assert entry["url"] == "https://shop.test/b"  # last writer wins; the other tab stays


async def test_identify_and_attrs(server: Server) -> None:
    shop = await seed(server.data)
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    vid = visitor.welcome["visitor"]

    await ok(visitor, {"t": "page", "url": "https://shop.test/p/1", "title": "Shoe"})
    await agent.expect("visitor", of_visitor(visitor))
    mark = len(agent.frames)
    await ok(visitor, {"t": "identify", "name": "Ann", "email": "ann@example.com"})
    live = await agent.expect("visitor", of_visitor(visitor), after=mark)
    assert (live["visitor"]["name"], live["visitor"]["email"]) == ("Ann", "ann@example.com")
    assert live["visitor"]["page"]["url"] == "https://shop.test/p/1"

    cart = {"items": 2, "total": 59.9, "currency": "EUR"}
    mark = len(agent.frames)
    await ok(visitor, {"t": "attrs", "set": {"plan": "pro", "vip": True, "cart": cart}})
    live = await agent.expect("visitor", of_visitor(visitor), after=mark)
    assert live["visitor"]["attributes"] == {"plan": "pro", "vip": True, "cart": cart}

    mark = len(agent.frames)
    await ok(visitor, {"t": "attrs", "set": {"vip": None}})
    live = await agent.expect("visitor", of_visitor(visitor), after=mark)
    assert live["visitor"]["attributes"] == {"plan": "pro", "cart": cart}

    reply = await agent.request({"t": "visitor", "visitor": vid})
    assert reply["visitor"]["name"] == "Ann"
    assert reply["visitor"]["attributes"] == {"plan": "pro", "cart": cart}

    # durable: the store has it
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    try:
        stored = await store.get_visitor(vid)
    finally:
        await store.close()
    assert stored is not None and stored.name == "Ann" and stored.visits == 1


@pytest.mark.parametrize(
    "frame",
    [
        {"t": "attrs", "set": {f"k{i}": i for i in range(51)}},
        {"t": "attrs", "set": {"k" * 65: 1}},
        {"t": "attrs", "set": {"": 1}},
        {"t": "attrs", "set": {"note": "x" * 501}},
        {"t": "attrs", "set": {"list": [1, 2]}},
        {"t": "attrs", "set": {"a": {"b": {"c": 1}}}},
        {"t": "attrs", "set": {"a": {"b": [1]}}},
        {"t": "attrs", "set": {f"k{i}": "x" * 490 for i in range(20)}},
        {"t": "attrs", "set": "nope"},
        {"t": "attrs"},
        {"t": "page"},
        {"t": "page", "url": "x" * 2001},
        {"t": "page", "url": "/", "title": "x" * 501},
        {"t": "page", "url": "/", "referrer": 5},
        {"t": "identify", "name": "x" * 201},
        {"t": "identify", "email": "x" * 321},
    ],
)
async def test_invalid_frames_are_refused(server: Server, frame: dict[str, Any]) -> None:
    shop = await seed(server.data)
    visitor = await Client.visitor(server, shop.key)
    reply = await visitor.request(frame)
    assert reply["t"] == "error" and reply["code"] == 203, reply
    # the connection stays usable
    await ok(visitor, {"t": "page", "url": "https://shop.test/"})


async def test_limits_at_the_edge_are_accepted(server: Server) -> None:
    shop = await seed(server.data)
    visitor = await Client.visitor(server, shop.key)
    await ok(visitor, {"t": "attrs", "set": {f"k{i}": i for i in range(50)}})
    await ok(visitor, {"t": "attrs", "set": {"k" * 64: "x" * 500, "n": {"a": 1.5, "b": None}}})
    await ok(visitor, {"t": "page", "url": "u" * 2000, "title": "t" * 500, "referrer": "r" * 2000})
    await ok(visitor, {"t": "identify", "name": "n" * 200, "email": "e" * 320})


async def test_visitor_of_another_site_is_not_found(server: Server) -> None:
    shop = await seed(server.data)
    other = await seed(server.data)
    (other_email,) = other.agents
    (email,) = shop.agents
    outsider = await Client.agent(server, other_email)
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    vid = visitor.welcome["visitor"]
    await ok(visitor, {"t": "page", "url": "https://shop.test/secret"})
    await agent.expect("visitor", of_visitor(visitor))

    reply = await outsider.request({"t": "visitor", "visitor": vid})
    assert reply["t"] == "error" and reply["code"] == 205, reply
    reply = await agent.request({"t": "visitor", "visitor": "v_nope"})
    assert reply["t"] == "error" and reply["code"] == 205, reply
    # and the other site's agent never saw the live frame
    await outsider.quiet(0.2)
    assert not [f for f in outsider.of("visitor") if f["visitor"]["id"] == vid]


async def test_visitors_cannot_ask_for_visitor_records(server: Server) -> None:
    shop = await seed(server.data)
    visitor = await Client.visitor(server, shop.key)
    reply = await visitor.request({"t": "visitor", "visitor": visitor.welcome["visitor"]})
    assert reply["t"] == "error" and reply["code"] == 202, reply


async def test_tracking_across_processes_with_redis(tmp_path: Path) -> None:
    """Two processes on one Redis: the agent on B sees the visitor on A."""
    redis = RedisServer(tmp_path / "redis").start()
    redis_url = redis.url
    a, b = (Server(tmp_path / f"p{i}", "--redis", redis_url) for i in range(2))
    shop = await seed(a.data, redis_url=redis_url)
    a.start()
    b.start()
    try:
        (email,) = shop.agents
        agent = await Client.agent(b, email)
        visitor = await Client.visitor(a, shop.key, page={"url": "https://shop.test/"})
        tab = await Client.visitor(b, shop.key, token=visitor.welcome["token"])
        vid = visitor.welcome["visitor"]
        await ok(visitor, {"t": "page", "url": "https://shop.test/", "title": "Home"})
        await ok(tab, {"t": "page", "url": "https://shop.test/cart", "title": "Cart"})
        await agent.expect("visitor", lambda f: f["visitor"]["page"]["url"].endswith("/cart"))
        await ok(visitor, {"t": "attrs", "set": {"plan": "pro"}})
        await agent.expect("visitor", lambda f: f["visitor"]["attributes"] == {"plan": "pro"})
        reply = await agent.request({"t": "visitor", "visitor": vid})
        assert [p["url"] for p in reply["pages"]] == [
            "https://shop.test/cart",
            "https://shop.test/",
        ]
        assert reply["visitor"]["visits"] == 1
        # the tab on B closes; the visitor stays present through A
        await tab.close()
        await agent.quiet(0.3)
        listed = await agent.request({"t": "visitors"})
        assert [v["id"] for v in listed["visitors"]] == [vid]
    finally:
        a.stop()
        b.stop()
        redis.stop()

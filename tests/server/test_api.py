"""The REST API end to end: a real server, real WebSocket clients, real SQLite.

Every answer is checked against the OpenAPI document on the way
(``tests/api_check.py``).  Each test seeds its own site; a second site and
its key check that ids cannot be probed across sites.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from chatserver.api.keys import ApiKeys
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Role, SiteSettings

from ..api_check import Api, error_of
from ..conftest import Client, Server, Shop, seed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

MANUAL = SiteSettings(routing="manual")


async def make_key(server: Server, site_id: str, name: str = "CRM sync") -> str:
    """A key made straight in the server's store (the console's page is tested on its own)."""
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    try:
        _, key = await ApiKeys(store, 0).create(site_id, name)
        return key
    finally:
        await store.close()


@asynccontextmanager
async def api(server: Server, key: str | None) -> AsyncIterator[Api]:
    client = Api(server.url, key)
    try:
        yield client
    finally:
        await client.close()


async def open_chat(server: Server, shop: Shop, body: str = "hello") -> tuple[Client, str]:
    visitor = await Client.visitor(server, shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": body})
    assert ack["t"] == "ack", ack
    return visitor, str(ack["conv"])


def refused(response: Any, status: int, code: int) -> None:
    got = error_of(response)
    assert got[:2] == (status, code), (got, response.text)


async def test_a_key_is_needed_and_must_be_right(server: Server) -> None:
    shop = await seed(server.data)
    key = await make_key(server, shop.site.id)
    _, conv = await open_chat(server, shop)
    path = f"/conversations/{conv}"
    async with api(server, None) as anonymous:
        r = await anonymous.get(path)
        refused(r, 401, 4102)
        assert r.json()["error"]["name"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
    site_part, _, secret = key.rpartition("_")
    wrong_secret = f"{site_part}_{'0' * 64 if secret != '0' * 64 else '1' * 64}"
    for bad in ("nonsense", "csk_", key[:-1], key + "0", wrong_secret, key.upper()):
        async with api(server, bad) as client:
            refused(await client.get(path), 401, 4102)
    async with api(server, key) as client:
        r = await client.http.get(path, headers={"Authorization": f"Basic {key}"})
        assert r.status_code == 401
        ok = await client.get(path)
        assert ok.status_code == 200, ok.text
        assert ok.json()["conversation"]["id"] == conv
        assert ok.headers["cache-control"] == "no-store"


async def test_another_sites_key_sees_nothing_of_this_site(server: Server) -> None:
    shop = await seed(server.data, settings=MANUAL)
    other = await seed(server.data)
    (agent_id,) = shop.agents.values()
    foreign = await make_key(server, other.site.id, "other shop")
    visitor, conv = await open_chat(server, shop)
    vid = visitor.welcome["visitor"]
    async with api(server, foreign) as client:
        for path in (
            f"/conversations/{conv}",
            f"/conversations/{conv}/entries",
            f"/visitors/{vid}",
            f"/visitors/{vid}/pages",
        ):
            refused(await client.get(path), 404, 205)
        body = {"agent_id": agent_id, "body": "hi"}
        refused(await client.post(f"/conversations/{conv}/messages", json=body), 404, 205)
        refused(await client.post(f"/conversations/{conv}/close", json={}), 404, 205)
        refused(await client.post(f"/conversations/{conv}/tags", json={"add": ["x"]}), 404, 205)
        listed = await client.get("/conversations")
        assert conv not in [c["id"] for c in listed.json()["conversations"]]
    # The other site's agents are not this key's either.
    (other_agent,) = other.agents.values()
    async with api(server, await make_key(server, shop.site.id)) as client:
        body = {"agent_id": other_agent, "body": "hi"}
        refused(await client.post(f"/conversations/{conv}/messages", json=body), 404, 205)
        refused(await client.post(f"/conversations/{conv}/assign", json=body), 400, 203)
        body = {"agent_id": other_agent}
        refused(await client.post(f"/conversations/{conv}/assign", json=body), 404, 205)
    assert not visitor.of("msg", conv)[1:], "nothing was posted"


async def test_an_agent_posts_through_the_api_and_the_visitor_gets_it_live(
    server: Server,
) -> None:
    shop = await seed(server.data, agents=2, settings=MANUAL)
    (owner, other) = shop.agents.values()
    agent = await Client.agent(server, next(iter(shop.agents)))
    visitor, conv = await open_chat(server, shop)
    async with api(server, await make_key(server, shop.site.id)) as client:
        message = {"agent_id": owner, "body": "How can I help?", "cid": "crm-1"}
        # Not in the conversation yet: refused, nothing stored.
        refused(await client.post(f"/conversations/{conv}/messages", json=message), 403, 206)
        # Assign (the agent is online): both the API and the agent's socket say so.
        r = await client.post(f"/conversations/{conv}/assign", json={"agent_id": owner})
        assert r.status_code == 200, r.text
        assert r.json()["conversation"]["agents"] == [owner]
        assert r.json()["conversation"]["state"] == "active"
        await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["agents"])
        # An offline agent cannot be assigned.
        r = await client.post(f"/conversations/{conv}/assign", json={"agent_id": other})
        refused(r, 409, 207)

        mark = len(visitor.frames)
        r = await client.post(f"/conversations/{conv}/messages", json=message)
        assert r.status_code == 201, r.text
        entry = r.json()["entry"]
        assert r.json()["duplicate"] is False
        assert entry["kind"] == "text" and entry["from"]["id"] == owner
        got = await visitor.expect("msg", lambda f: f.get("body") == "How can I help?", after=mark)
        assert got["offset"] == entry["offset"] and got["from"]["kind"] == "agent"
        await agent.expect("msg", lambda f: f.get("offset") == entry["offset"])

        # A retry with the same cid posts nothing and answers the first entry.
        again = await client.post(f"/conversations/{conv}/messages", json=message)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert again.json()["entry"]["offset"] == entry["offset"]

        # A note reaches the agents, never the visitor.
        note = {"agent_id": owner, "body": "VIP customer", "note": True}
        r = await client.post(f"/conversations/{conv}/messages", json=note)
        assert r.status_code == 201 and r.json()["entry"]["kind"] == "note"
        await agent.expect("msg", lambda f: f.get("body") == "VIP customer")
        await visitor.quiet(0.2)
        bodies = [f.get("body") for f in visitor.of("msg", conv)]
        assert bodies.count("How can I help?") == 1 and "VIP customer" not in bodies

        # Tags, then close: the visitor sees the chat closed, by the key's name.
        r = await client.post(f"/conversations/{conv}/tags", json={"add": ["vip", " billing "]})
        assert r.json()["conversation"]["tags"] == ["billing", "vip"]
        r = await client.post(f"/conversations/{conv}/tags", json={"remove": ["billing"]})
        assert r.json()["conversation"]["tags"] == ["vip"]
        await agent.expect("conv", lambda f: f["conv"].get("tags") == ["vip"])
        r = await client.post(f"/conversations/{conv}/close", json={})
        assert r.status_code == 200 and r.json()["conversation"]["state"] == "closed"
        assert r.json()["conversation"]["closed_at"] is not None
        closed = await visitor.expect(
            "msg", lambda f: (f.get("data") or {}).get("event") == "closed"
        )
        assert closed["data"]["by"] == {
            "kind": "integration",
            "id": closed["data"]["by"]["id"],
            "name": "CRM sync",
        }
        # Closing again changes nothing; posting now is a conflict.
        r = await client.post(f"/conversations/{conv}/close", json={"agent_id": owner})
        assert r.status_code == 200
        late = {"agent_id": owner, "body": "one more thing"}
        refused(await client.post(f"/conversations/{conv}/messages", json=late), 409, 207)


async def test_entries_are_paged_by_offset(server: Server) -> None:
    shop = await seed(server.data)
    visitor, conv = await open_chat(server, shop, "first")
    for i in range(2, 8):
        ack = await visitor.request({"t": "send", "cid": f"m{i}", "body": f"message {i}"})
        assert ack["t"] == "ack"
    async with api(server, await make_key(server, shop.site.id)) as client:
        whole = (await client.get(f"/conversations/{conv}/entries")).json()
        last = whole["offset"]
        assert [e["offset"] for e in whole["entries"]] == list(range(1, last + 1))
        assert whole["next_after"] is None
        seen: list[int] = []
        after: int | None = 0
        for _ in range(last + 1):  # bounded
            if after is None:
                break
            page = (
                await client.get(
                    f"/conversations/{conv}/entries", params={"after": after, "limit": 3}
                )
            ).json()
            assert len(page["entries"]) <= 3
            seen += [e["offset"] for e in page["entries"]]
            after = page["next_after"]
        assert seen == list(range(1, last + 1))
        texts = [e["body"] for e in whole["entries"] if e["kind"] == "text"]
        assert texts == ["first", *[f"message {i}" for i in range(2, 8)]]
        beyond = await client.get(f"/conversations/{conv}/entries", params={"after": last})
        assert beyond.json()["entries"] == [] and beyond.json()["next_after"] is None
        for bad in (
            {"after": "-1"},
            {"after": "x"},
            {"limit": "0"},
            {"limit": "201"},
            {"before": "3"},
        ):
            refused(await client.get(f"/conversations/{conv}/entries", params=bad), 400, 203)


async def test_conversations_are_listed_with_filters_and_cursor_pages(server: Server) -> None:
    shop = await seed(server.data, settings=MANUAL)
    (owner,) = shop.agents.values()
    agent = await Client.agent(server, next(iter(shop.agents)))
    convs = [(await open_chat(server, shop, f"chat {i}"))[1] for i in range(5)]
    async with api(server, await make_key(server, shop.site.id)) as client:
        assert (
            await client.post(f"/conversations/{convs[0]}/assign", json={"agent_id": owner})
        ).status_code == 200
        await client.post(f"/conversations/{convs[1]}/tags", json={"add": ["refund"]})
        assert (await client.post(f"/conversations/{convs[2]}/close", json={})).status_code == 200

        async def listed(**params: Any) -> list[str]:
            ids: list[str] = []
            cursor = None
            for _ in range(20):  # bounded
                query = {**params, **({"cursor": cursor} if cursor else {})}
                page = (await client.get("/conversations", params=query)).json()
                ids += [c["id"] for c in page["conversations"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    return ids
            raise AssertionError("too many pages")

        # The archive index follows the events a batch at a time (0.25 s).
        for _ in range(50):
            if set(await listed()) >= set(convs):
                break
            await agent.quiet(0.05)
        assert await listed() == convs[::-1]  # newest first
        assert await listed(limit=2) == convs[::-1]
        assert await listed(state="closed") == [convs[2]]
        assert await listed(state="active") == [convs[0]]
        assert await listed(agent=owner) == [convs[0]]
        assert await listed(tag="refund") == [convs[1]]
        assert await listed(since="2000-01-01", until="2000-01-02") == []
        assert set(await listed(since="2000-01-01T00:00:00+00:00")) == set(convs)
        for bad in (
            {"state": "open"},
            {"limit": "101"},
            {"since": "yesterday"},
            {"cursor": "zz"},
            {"q": "x"},
        ):
            refused(await client.get("/conversations", params=bad), 400, 203)
        refused(await client.get("/conversations?state=closed&state=active"), 400, 203)


async def test_bodies_and_parameters_are_validated(server: Server) -> None:
    shop = await seed(server.data, settings=MANUAL)
    (owner,) = shop.agents.values()
    await Client.agent(server, next(iter(shop.agents)))
    visitor, conv = await open_chat(server, shop)
    path = f"/conversations/{conv}/messages"
    async with api(server, await make_key(server, shop.site.id)) as client:
        assert (
            await client.post(f"/conversations/{conv}/assign", json={"agent_id": owner})
        ).status_code == 200
        cases: list[tuple[Any, int]] = [
            ({"agent_id": owner}, 203),  # no body
            ({"agent_id": owner, "body": "   "}, 203),  # empty
            ({"agent_id": owner, "body": 5}, 203),  # wrong type
            ({"agent_id": owner, "body": "x", "note": "yes"}, 203),
            ({"agent_id": owner, "body": "x", "cid": "c" * 65}, 203),
            ({"agent_id": owner, "body": "x", "extra": 1}, 203),  # unknown field
            ({"agent_id": owner, "body": "x" * 4001}, 208),  # too long
            ([1, 2], 200),  # not an object
        ]
        for body, code in cases:
            refused(await client.post(path, json=body), 400, code)
        surrogate = '{"agent_id": "' + owner + '", "body": "\\ud800"}'
        refused(await client.post(path, content=surrogate.encode()), 400, 203)
        for raw in (b"{", b"NaN", b'{"body": 1e400}', b"\xff"):
            refused(await client.post(path, content=raw), 400, 200)
        refused(await client.post(path, content=b" " * (64 * 1024 + 1)), 413, 201)
        refused(await client.post(f"/conversations/{conv}/tags", json={}), 400, 203)
        refused(await client.post(f"/conversations/{conv}/tags", json={"add": ["a\nb"]}), 400, 203)
        refused(
            await client.post(f"/conversations/{conv}/tags", json={"add": ["x" * 33]}), 400, 203
        )
        refused(await client.post(f"/conversations/{'c' * 65}/close", json={}), 404, 205)
        refused(await client.get("/conversations/c_unknown"), 404, 205)
        # Wrong methods and paths are JSON errors too.
        r = await client.request("DELETE", f"/conversations/{conv}")
        refused(r, 405, 204)
        assert r.headers["allow"] == "GET"
        refused(await client.get(f"/conversations/{conv}/messages"), 405, 204)
        refused(await client.get("/nothing/here"), 404, 205)
        # Nothing of that reached the visitor.
        await visitor.quiet(0.2)
        assert [f["from"]["kind"] for f in visitor.of("msg", conv) if f["kind"] == "text"] == [
            "visitor"
        ]


async def test_visitors_and_their_page_views(server: Server) -> None:
    shop = await seed(server.data)
    visitor = await Client.visitor(server, shop.key)
    for i in range(4):
        reply = await visitor.request(
            {"t": "page", "url": f"https://shop.test/p{i}", "title": f"P{i}"}
        )
        assert reply["t"] == "ok", reply
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "hi"})
    vid = visitor.welcome["visitor"]
    async with api(server, await make_key(server, shop.site.id)) as client:
        r = await client.get(f"/visitors/{vid}")
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["visitor"]["id"] == vid and got["visitor"]["visits"] == 1
        assert got["visitor"]["page"]["url"] == "https://shop.test/p3"
        assert [c["id"] for c in got["conversations"]] == [ack["conv"]]
        pages = (await client.get(f"/visitors/{vid}/pages")).json()["pages"]
        assert [p["url"] for p in pages] == [f"https://shop.test/p{i}" for i in (3, 2, 1, 0)]
        two = (await client.get(f"/visitors/{vid}/pages", params={"limit": 2})).json()["pages"]
        assert [p["title"] for p in two] == ["P3", "P2"]
        refused(await client.get(f"/visitors/{vid}/pages", params={"limit": 201}), 400, 203)
        refused(await client.get(f"/visitors/{vid}", params={"x": 1}), 400, 203)
        refused(await client.get("/visitors/v_nobody"), 404, 205)


async def test_reports_read_the_sites_figures(server: Server) -> None:
    shop = await seed(server.data, roles={0: Role.ADMIN})
    await open_chat(server, shop)
    async with api(server, await make_key(server, shop.site.id)) as client:
        r = await client.get("/reports")
        assert r.status_code == 200, r.text
        report = r.json()
        assert set(report["tables"]) >= {"daily", "agents", "satisfaction"}
        assert report["overview"]["started"] == 1 and report["overview"]["open"] == 1
        one = (
            await client.get(
                "/reports/agents", params={"since": "2026-01-01", "until": "2026-01-31"}
            )
        ).json()
        assert one["table"] == "agents" and one["period"]["since"] == "2026-01-01"
        refused(await client.get("/reports/nope"), 404, 205)
        refused(
            await client.get("/reports", params={"since": "2026-02-01", "until": "2026-01-01"}),
            400,
            203,
        )
        refused(
            await client.get("/reports", params={"since": "2020-01-01", "until": "2026-01-01"}),
            400,
            203,
        )
        refused(await client.get("/reports", params={"since": "soon"}), 400, 203)

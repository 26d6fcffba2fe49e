"""The agent console's frames end to end: tag, invite, view (viewers), typing notes.

A real server process, real WebSocket clients, real SQLite (and, for viewers
across processes, two processes sharing a real redis-server).  Each test seeds
its own site; a second site's agent checks that ids cannot be probed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatserver.protocol.frames import MAX_TAGS, MAX_TAGS_PER_FRAME, MAX_VIEWING
from chatserver.types import Role, SiteSettings

from ..conftest import Client, Server, Shop, seed
from ..redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

NOT_FOUND, FORBIDDEN, CONFLICT, INVALID = 205, 206, 207, 203


async def agents_of(server: Server, shop: Shop) -> list[Client]:
    return [await Client.agent(server, email) for email in shop.agents]


async def open_chat(server: Server, shop: Shop, body: str = "hello", **hello: Any) -> Any:
    """A visitor with a conversation; returns (visitor, conv id)."""
    visitor = await Client.visitor(server, shop.key, **hello)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": body})
    assert ack["t"] == "ack", ack
    return visitor, ack["conv"]


def error(reply: dict[str, Any], code: int) -> None:
    assert reply["t"] == "error" and reply["code"] == code, reply


async def test_tags_are_set_broadcast_to_agents_and_kept_from_visitors(server: Server) -> None:
    manual = SiteSettings(routing="manual")
    shop = await seed(server.data, agents=3, roles={2: Role.ADMIN}, settings=manual)
    owner, colleague, admin = await agents_of(server, shop)
    visitor, conv = await open_chat(server, shop)
    assert (await owner.request({"t": "join", "conv": conv}))["t"] == "ok"
    reply = await owner.request({"t": "tag", "conv": conv, "add": [" vip ", "billing"]})
    assert reply["t"] == "ok", reply
    snap = await colleague.expect("conv", lambda f: f["conv"].get("tags") == ["billing", "vip"])
    assert snap["conv"]["id"] == conv
    mark = len(owner.frames)
    assert (await owner.request({"t": "tag", "conv": conv, "remove": ["billing"]}))["t"] == "ok"
    await owner.expect("conv", lambda f: f["conv"].get("tags") == ["vip"], after=mark)

    # The visitor's copies of the conversation never carry tags.
    await visitor.quiet(0.3)
    convs = visitor.of("conv")
    assert convs and all("tags" not in f["conv"] for f in convs), convs
    again = await Client.visitor(server, shop.key, token=visitor.welcome["token"])
    follow = await again.expect("conv", lambda f: f.get("follow") is True)
    assert "tags" not in follow["conv"]

    # Not a member: refused; an admin may.
    error(await colleague.request({"t": "tag", "conv": conv, "add": ["x"]}), FORBIDDEN)
    assert (await admin.request({"t": "tag", "conv": conv, "add": ["checked"]}))["t"] == "ok"

    # Validation: nothing to do, an empty tag, control characters, too many, too long.
    error(await owner.request({"t": "tag", "conv": conv}), INVALID)
    error(await owner.request({"t": "tag", "conv": conv, "add": [], "remove": []}), INVALID)
    error(await owner.request({"t": "tag", "conv": conv, "add": ["   "]}), INVALID)
    error(await owner.request({"t": "tag", "conv": conv, "add": ["a\nb"]}), INVALID)
    many = [f"t{i}" for i in range(MAX_TAGS_PER_FRAME + 1)]
    error(await owner.request({"t": "tag", "conv": conv, "add": many}), INVALID)
    error(await owner.request({"t": "tag", "conv": conv, "add": ["x" * 33]}), INVALID)
    for start in range(0, MAX_TAGS - 2, MAX_TAGS_PER_FRAME):
        batch = [f"k{i:02d}" for i in range(start, min(start + MAX_TAGS_PER_FRAME, MAX_TAGS - 2))]
        assert (await owner.request({"t": "tag", "conv": conv, "add": batch}))["t"] == "ok"
    # vip + checked + 48 = 50: one more is refused, swapping one is fine.
    error(await owner.request({"t": "tag", "conv": conv, "add": ["one-too-many"]}), CONFLICT)
    swap = {"t": "tag", "conv": conv, "add": ["swap"], "remove": ["k00"]}
    assert (await owner.request(swap))["t"] == "ok"

    # Closed conversations can still be tagged (wrap-up).
    assert (await owner.request({"t": "close", "conv": conv}))["t"] == "ok"
    done = {"t": "tag", "conv": conv, "add": ["done"], "remove": ["swap"]}
    assert (await owner.request(done))["t"] == "ok"


async def test_invite_reaches_the_colleague_who_joins(server: Server) -> None:
    manual = SiteSettings(routing="manual")
    shop = await seed(server.data, agents=4, roles={3: Role.ANALYST}, settings=manual)
    emails = list(shop.agents)
    ids = [shop.agents[e] for e in emails]
    owner = await Client.agent(server, emails[0])
    colleague = await Client.agent(server, emails[1], status="away")  # away may be invited
    colleague_tab = await Client.agent(server, emails[1])
    visitor, conv = await open_chat(server, shop)
    assert (await owner.request({"t": "join", "conv": conv}))["t"] == "ok"
    reply = await owner.request({"t": "invite", "conv": conv, "agent": ids[1]})
    assert reply["t"] == "ok", reply
    for client in (colleague, colleague_tab):
        got = await client.expect("invite")
        assert got["conv"]["id"] == conv and got["by"] == {"id": ids[0], "name": got["by"]["name"]}
        assert got["by"]["name"].startswith("Agent ")
    assert not owner.of("invite")
    assert not visitor.of("invite")

    # Accepting is a join.
    assert (await colleague.request({"t": "join", "conv": conv}))["t"] == "ok"
    await colleague.expect("conv", lambda f: f.get("follow") is True and f["conv"]["id"] == conv)

    # Refusals.
    error(await owner.request({"t": "invite", "conv": conv, "agent": ids[1]}), CONFLICT)
    error(await owner.request({"t": "invite", "conv": conv, "agent": ids[0]}), CONFLICT)
    error(await owner.request({"t": "invite", "conv": conv, "agent": "a_nobody"}), NOT_FOUND)
    error(await owner.request({"t": "invite", "conv": conv, "agent": ids[3]}), NOT_FOUND)
    # Not connected.
    error(await owner.request({"t": "invite", "conv": conv, "agent": ids[2]}), CONFLICT)
    outsider = await Client.agent(server, emails[2])
    error(await outsider.request({"t": "invite", "conv": conv, "agent": ids[0]}), FORBIDDEN)
    assert (await owner.request({"t": "close", "conv": conv}))["t"] == "ok"
    error(await owner.request({"t": "invite", "conv": conv, "agent": ids[2]}), CONFLICT)


async def test_viewers_and_typing_fan_out_and_clean_up(server: Server) -> None:
    shop = await seed(server.data, agents=3, settings=SiteSettings(routing="manual"))
    emails = list(shop.agents)
    a = await Client.agent(server, emails[0])
    b = await Client.agent(server, emails[1])
    c = await Client.agent(server, emails[2])  # views nothing, sees everything
    a_id, b_id = shop.agents[emails[0]], shop.agents[emails[1]]
    visitor, conv = await open_chat(server, shop)
    assert (await a.request({"t": "join", "conv": conv}))["t"] == "ok"

    def viewers(client: Client, expected: list[tuple[str, bool]], after: int = 0) -> Any:
        want = sorted(expected)
        return client.expect(
            "viewers",
            lambda f: f["conv"] == conv and [(v["id"], v["typing"]) for v in f["agents"]] == want,
            after=after,
        )

    assert (await a.request({"t": "view", "conv": conv, "on": True}))["t"] == "ok"
    for client in (a, b, c):
        await viewers(client, [(a_id, False)])
    mark = len(c.frames)
    assert (await b.request({"t": "view", "conv": conv, "on": True}))["t"] == "ok"
    got = await viewers(c, [(a_id, False), (b_id, False)], mark)
    assert {v["name"] for v in got["agents"]} == {"Agent 0", "Agent 1"}

    # A member types: the visitor sees it, and the viewers list says so.
    mark = len(b.frames)
    await a.send({"t": "typing", "conv": conv, "on": True})
    await viewers(b, [(a_id, True), (b_id, False)], mark)
    await visitor.expect("typing", lambda f: f["from"]["id"] == a_id and f["on"] is True)
    # Typing a note: colleagues see it, the visitor does not.
    await a.send({"t": "typing", "conv": conv, "on": False})
    await visitor.expect("typing", lambda f: f["on"] is False)
    before = len(visitor.of("typing"))
    await b.request({"t": "watch", "conv": conv})
    await a.send({"t": "typing", "conv": conv, "on": True, "note": True})
    note = await b.expect("typing", lambda f: f.get("note") is True and f["on"] is True)
    assert note["from"]["id"] == a_id
    await viewers(c, [(a_id, True), (b_id, False)])
    await visitor.quiet(0.4)
    assert len(visitor.of("typing")) == before, visitor.of("typing")

    # A viewer who is not a member cannot type.
    error(await b.request({"t": "typing", "conv": conv, "on": True}), FORBIDDEN)

    # Closing the connection ends its views (typing included).
    mark = len(c.frames)
    await a.close()
    await viewers(c, [(b_id, False)], mark)
    mark = len(c.frames)
    assert (await b.request({"t": "view", "conv": conv, "on": False}))["t"] == "ok"
    await viewers(c, [], mark)
    # Stopping a view that was never started is harmless.
    assert (await c.request({"t": "view", "conv": conv, "on": False}))["t"] == "ok"


async def test_view_is_limited_per_connection(server: Server) -> None:
    shop = await seed(server.data, agents=1, settings=SiteSettings(routing="manual"))
    (agent,) = await agents_of(server, shop)
    convs = []
    for _ in range(MAX_VIEWING + 1):
        _, conv = await open_chat(server, shop)
        convs.append(conv)
    for conv in convs[:MAX_VIEWING]:
        assert (await agent.request({"t": "view", "conv": conv, "on": True}))["t"] == "ok"
    # Viewing one already viewed again is fine; one more is not.
    assert (await agent.request({"t": "view", "conv": convs[0], "on": True}))["t"] == "ok"
    error(await agent.request({"t": "view", "conv": convs[-1], "on": True}), CONFLICT)
    assert (await agent.request({"t": "view", "conv": convs[0], "on": False}))["t"] == "ok"
    assert (await agent.request({"t": "view", "conv": convs[-1], "on": True}))["t"] == "ok"


async def test_another_sites_agent_can_neither_see_nor_touch(server: Server) -> None:
    shop = await seed(server.data, agents=1)
    other = await seed(server.data, agents=1, roles={0: Role.ADMIN})
    (agent,) = await agents_of(server, shop)
    (stranger,) = await agents_of(server, other)
    visitor, conv = await open_chat(server, shop)
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    agent_id = next(iter(shop.agents.values()))
    stranger_id = next(iter(other.agents.values()))
    assert (await agent.request({"t": "view", "conv": conv, "on": True}))["t"] == "ok"
    await agent.expect("viewers", lambda f: f["conv"] == conv)

    probes = [
        {"t": "tag", "conv": conv, "add": ["mine"]},
        {"t": "invite", "conv": conv, "agent": agent_id},
        {"t": "view", "conv": conv, "on": True},
        {"t": "visitor", "visitor": visitor.welcome["visitor"]},
        {"t": "history", "conv": conv, "since": 0},
        {"t": "typing", "conv": conv, "on": True, "note": True},
    ]
    for probe in probes:
        reply = await stranger.request(probe)
        error(reply, NOT_FOUND)
        unknown = {**probe}
        if "conv" in unknown:
            unknown["conv"] = "c_doesnotexist0000"
        else:
            unknown["visitor"] = "v_doesnotexist0000"
        # The same answer as for an id that does not exist: nothing to probe.
        assert (await stranger.request(unknown))["message"] == reply["message"]
    # Inviting a stranger into one's own conversation: no such agent.
    error(await agent.request({"t": "invite", "conv": conv, "agent": stranger_id}), NOT_FOUND)
    await stranger.quiet(0.3)
    assert not stranger.of("viewers") and not stranger.of("conv") and not stranger.of("invite")
    got = await agent.request({"t": "history", "conv": conv, "since": 0})
    assert [m["body"] for m in got["messages"] if m["kind"] == "text"] == ["hello"]


async def test_visitor_answer_has_past_conversations_and_local_time_zone(server: Server) -> None:
    shop = await seed(server.data, agents=1)
    (agent,) = await agents_of(server, shop)
    page = {"url": "https://shop.example/", "title": "Home", "tz": "America/Argentina/Salta"}
    visitor, first = await open_chat(server, shop, "first", page=page)
    await agent.expect(
        "conv", lambda f: f["conv"]["id"] == first and f["conv"]["state"] == "active"
    )
    assert (await agent.request({"t": "close", "conv": first}))["t"] == "ok"
    await visitor.expect("conv", lambda f: f["conv"]["state"] == "closed")
    second = (await visitor.request({"t": "send", "cid": "m2", "body": "second"}))["conv"]
    vid = visitor.welcome["visitor"]
    reply = await agent.request({"t": "visitor", "visitor": vid})
    assert [c["id"] for c in reply["conversations"]] == [second, first]
    assert reply["conversations"][1]["state"] == "closed"
    assert reply["online"]["tz"] == "America/Argentina/Salta"
    assert reply["online"]["url"] == "https://shop.example/"

    # A time zone that is not a zone name is dropped; gone visitors are not online.
    odd = await Client.visitor(server, shop.key, page={"url": "/", "tz": "<b>x</b>"})
    reply = await agent.request({"t": "visitor", "visitor": odd.welcome["visitor"]})
    assert "tz" not in reply["online"] and reply["conversations"] == []
    await odd.close()
    await visitor.close()
    for _ in range(50):
        reply = await agent.request({"t": "visitor", "visitor": vid})
        if reply["online"] is None:
            break
        await agent.quiet(0.1)
    assert reply["online"] is None


async def test_viewers_span_processes(tmp_path: Path, redis: RedisServer) -> None:
    procs = [Server(tmp_path / f"p{i}", "--redis", redis.url) for i in range(2)]
    shop = await seed(procs[0].data, agents=2, redis_url=redis.url)
    try:
        for proc in procs:
            proc.start()
        emails = list(shop.agents)
        a = await Client.agent(procs[0], emails[0])
        b = await Client.agent(procs[1], emails[1], codec="msgpack")
        visitor = await Client.visitor(procs[0], shop.key)
        conv = (await visitor.request({"t": "send", "cid": "1", "body": "hi"}))["conv"]
        ids = sorted(shop.agents.values())
        assert (await a.request({"t": "view", "conv": conv, "on": True}))["t"] == "ok"
        assert (await b.request({"t": "view", "conv": conv, "on": True}))["t"] == "ok"
        both = await a.expect(
            "viewers", lambda f: sorted(v["id"] for v in f["agents"]) == ids, timeout=10
        )
        assert both["conv"] == conv
        mark = len(a.frames)
        await b.close()
        left = await a.expect(
            "viewers",
            lambda f: [v["id"] for v in f["agents"]] == [shop.agents[emails[0]]],
            after=mark,
            timeout=10,
        )
        assert left["conv"] == conv
        await a.close()
        await visitor.close()
    finally:
        for proc in procs:
            proc.stop()

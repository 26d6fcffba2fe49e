"""Read markers survive reconnects: the follow-start ``conv`` frame carries them.

Real server processes, real WebSocket clients, real SQLite, and two processes
sharing a real redis-server (docs/read-receipts.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import Client, Server, Shop, seed
from ..redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]


def follow_start(client: Client, conv: str) -> dict[str, Any]:
    """The last follow-start ``conv`` frame this connection got for ``conv``."""
    frames = [f for f in client.of("conv") if f.get("follow") and f["conv"]["id"] == conv]
    assert frames, f"no follow-start frame for {conv}"
    return frames[-1]


def markers(frame: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {(m["by"]["kind"], m["by"]["id"]): m["offset"] for m in frame["reads"]}


async def started(client: Client, conv: str) -> dict[str, Any]:
    await client.expect("conv", lambda f: bool(f.get("follow")) and f["conv"]["id"] == conv)
    return follow_start(client, conv)


async def open_chat(server: Server, shop: Shop, body: str = "hello") -> tuple[Client, Client, str]:
    """The first agent, a visitor with one message, their conversation (assigned to it)."""
    email = next(iter(shop.agents))
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": body})
    conv = ack["conv"]
    await started(agent, conv)
    return agent, visitor, conv


async def reply(agent: Client, conv: str, cid: str, body: str, note: bool = False) -> int:
    frame: dict[str, Any] = {"t": "send", "conv": conv, "cid": cid, "body": body}
    if note:
        frame["note"] = True
    ack = await agent.request(frame)
    assert ack["t"] == "ack", ack
    return int(ack["offset"])


async def read(client: Client, conv: str, offset: int, by: str) -> dict[str, Any]:
    """Send ``read`` and wait for its broadcast back (the marker is stored then)."""
    mark = len(client.frames)
    await client.send({"t": "read", "conv": conv, "offset": offset})
    return await client.expect("read", lambda f: f["by"]["kind"] == by, after=mark)


async def test_visitor_reconnects_and_gets_the_agents_marker(server: Server) -> None:
    shop = await seed(server.data)
    agent_id = next(iter(shop.agents.values()))
    agent, visitor, conv = await open_chat(server, shop)
    first = await started(visitor, conv)
    assert first["reads"] == []  # nobody has read anything yet

    await read(agent, conv, 1, "agent")
    token = visitor.welcome["token"]
    await visitor.close()

    again = await Client.visitor(server, shop.key, token)
    assert again.welcome["conv"] == conv
    frame = await started(again, conv)
    assert frame["reads"] == [{"by": {"kind": "agent", "id": agent_id}, "offset": 1}]


async def test_agent_reconnects_and_gets_the_visitors_marker(server: Server) -> None:
    shop = await seed(server.data)
    (email,) = shop.agents
    agent, visitor, conv = await open_chat(server, shop)
    offset = await reply(agent, conv, "a1", "Hi, how can I help?")
    await read(visitor, conv, offset, "visitor")
    await read(agent, conv, offset, "agent")
    await agent.close()

    again = await Client.agent(server, email)
    frame = await started(again, conv)
    # Agents see every marker: the visitor's and their own.
    assert markers(frame) == {
        ("visitor", visitor.welcome["visitor"]): offset,
        ("agent", shop.agents[email]): offset,
    }


async def test_markers_only_move_forward(server: Server) -> None:
    shop = await seed(server.data)
    (email,) = shop.agents
    agent, visitor, conv = await open_chat(server, shop)
    offsets = [await reply(agent, conv, f"a{i}", f"answer {i}") for i in range(3)]
    top = offsets[-1]  # also the conversation's last offset
    await read(visitor, conv, top, "visitor")
    back = await read(visitor, conv, offsets[0], "visitor")
    assert back["offset"] == top
    await read(agent, conv, offsets[1], "agent")
    await read(agent, conv, 1, "agent")
    capped = await read(agent, conv, 99, "agent")  # capped at the last offset
    assert capped["offset"] == top
    token = visitor.welcome["token"]
    await visitor.close()
    await agent.close()

    agent2 = await Client.agent(server, email)
    assert markers(await started(agent2, conv)) == {
        ("visitor", visitor.welcome["visitor"]): top,
        ("agent", shop.agents[email]): top,
    }
    visitor2 = await Client.visitor(server, shop.key, token)
    assert markers(await started(visitor2, conv)) == {
        ("visitor", visitor.welcome["visitor"]): top,
        ("agent", shop.agents[email]): top,
    }


async def test_a_visitor_never_gets_markers_of_another_conversation(server: Server) -> None:
    shop = await seed(server.data)
    (email,) = shop.agents
    agent_id = shop.agents[email]
    agent, mine, conv = await open_chat(server, shop, "first visitor")
    other = await Client.visitor(server, shop.key)
    other_conv = (await other.request({"t": "send", "cid": "o1", "body": "second visitor"}))["conv"]
    await started(agent, other_conv)
    for i in range(4):
        await reply(agent, other_conv, f"o{i}", f"to the other {i}")
    await read(other, other_conv, 99, "visitor")
    await read(agent, other_conv, 99, "agent")
    await read(agent, conv, 1, "agent")
    token = mine.welcome["token"]
    await mine.close()

    again = await Client.visitor(server, shop.key, token)
    assert again.welcome["conv"] == conv
    await started(again, conv)
    await again.quiet(0.3)
    # Only its own conversation's follow start, with only the agent's marker there.
    follows = [f for f in again.of("conv") if f.get("follow")]
    assert [f["conv"]["id"] for f in follows] == [conv]
    assert follows[0]["reads"] == [{"by": {"kind": "agent", "id": agent_id}, "offset": 1}]
    assert other.welcome["visitor"] not in str(again.frames)
    assert other_conv not in str(again.frames)
    # And it cannot ask for the other conversation at all.
    refused = await again.request({"t": "history", "conv": other_conv, "since": 0})
    assert refused["t"] == "error" and refused["code"] == 205


async def test_a_visitor_does_not_learn_where_notes_are(server: Server) -> None:
    shop = await seed(server.data)
    (email,) = shop.agents
    agent, visitor, conv = await open_chat(server, shop)
    answer = await reply(agent, conv, "a1", "On its way")
    note = await reply(agent, conv, "n1", "refund tomorrow", note=True)
    assert note == answer + 1
    await read(agent, conv, note, "agent")
    token = visitor.welcome["token"]
    await visitor.close()
    await agent.close()

    again = await Client.visitor(server, shop.key, token)
    frame = await started(again, conv)
    # The visitor sees the agent's marker on the last entry it can see.
    assert frame["reads"] == [{"by": {"kind": "agent", "id": shop.agents[email]}, "offset": answer}]
    agent2 = await Client.agent(server, email)
    assert markers(await started(agent2, conv)) == {("agent", shop.agents[email]): note}


async def notes_stay_hidden(agent: Client, visitor: Client, conv: str) -> None:
    """An agent reads past its notes; the visitor's frames never carry a note's offset.

    The broker keeps one channel's events in order, so a ``read`` the visitor
    should not get would arrive before the next message it waits for.
    """
    agent_id = agent.welcome["agent"]["id"]

    def agents_read(frame: dict[str, Any]) -> bool:
        return bool(frame["by"] == {"kind": "agent", "id": agent_id})

    answer = await reply(agent, conv, "a1", "On its way")
    await read(agent, conv, answer, "agent")
    await visitor.expect("read", lambda f: agents_read(f) and f["offset"] == answer)
    note = await reply(agent, conv, "n1", "refund tomorrow", note=True)
    moved = await read(agent, conv, note, "agent")
    assert moved["offset"] == note  # agents get the marker as stored
    # A marker moving across a note alone: the visitor is told nothing.
    answer2 = await reply(agent, conv, "a2", "Anything else?")
    await visitor.expect("msg", lambda f: f["offset"] == answer2)
    assert [f["offset"] for f in visitor.of("read") if agents_read(f)] == [answer]
    note2 = await reply(agent, conv, "n2", "VIP, be nice", note=True)
    await read(agent, conv, note2, "agent")
    # Past a message and a note: the visitor gets the message's offset.
    await visitor.expect("read", lambda f: agents_read(f) and f["offset"] == answer2)
    # The visitor's own marker never lands on a note either, however far it reads.
    own = await read(visitor, conv, 10**9, "visitor")
    assert own["offset"] == answer2
    notes = {note, note2}
    assert [f for f in visitor.frames if f.get("offset") in notes] == []
    assert [f["offset"] for f in visitor.of("read") if agents_read(f)] == [answer, answer2]
    # The agent saw each move as stored, and the visitor's marker lowered.
    assert [f["offset"] for f in agent.of("read") if agents_read(f)] == [answer, note, note2]
    seen = await agent.expect("read", lambda f: f["by"]["kind"] == "visitor")
    assert seen["offset"] == answer2


async def test_live_reads_do_not_show_the_visitor_where_notes_are(server: Server) -> None:
    shop = await seed(server.data)
    agent, visitor, conv = await open_chat(server, shop)
    await started(visitor, conv)
    await notes_stay_hidden(agent, visitor, conv)


async def test_live_reads_do_not_show_notes_across_processes(
    own_two_on_redis: tuple[Server, Server], redis: RedisServer
) -> None:
    one, other = own_two_on_redis
    shop = await seed(one.data, redis_url=redis.url)
    (email,) = shop.agents
    agent = await Client.agent(one, email)
    visitor = await Client.visitor(other, shop.key)
    conv = (await visitor.request({"t": "send", "cid": "m1", "body": "hello"}))["conv"]
    await started(agent, conv)
    await started(visitor, conv)
    await notes_stay_hidden(agent, visitor, conv)


async def test_a_watching_agent_gets_the_markers_too(server: Server) -> None:
    shop = await seed(server.data, agents=2)
    second = list(shop.agents)[1]
    _, visitor, conv = await open_chat(server, shop)
    await read(visitor, conv, 1, "visitor")
    colleague = await Client.agent(server, second, status="away")  # not a member: watches
    ok = await colleague.request({"t": "watch", "conv": conv})
    assert ok["t"] == "ok", ok
    assert markers(follow_start(colleague, conv)) == {("visitor", visitor.welcome["visitor"]): 1}


@pytest.fixture
def two_on_redis(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[Server, Server]]:
    procs = [Server(tmp_path / f"p{i}", "--redis", redis_server.url) for i in range(2)]
    try:
        for proc in procs:
            proc.start()
        yield procs[0], procs[1]
    finally:
        for proc in procs:
            proc.stop()


async def test_markers_come_back_on_another_process(
    two_on_redis: tuple[Server, Server], redis_server: RedisServer
) -> None:
    one, other = two_on_redis
    shop = await seed(one.data, redis_url=redis_server.url)
    (email,) = shop.agents
    agent, visitor, conv = await open_chat(one, shop)
    offset = await reply(agent, conv, "a1", "Hello from process one")
    await read(agent, conv, 1, "agent")
    await read(visitor, conv, offset, "visitor")
    token = visitor.welcome["token"]
    await visitor.close()
    await agent.close()

    again = await Client.visitor(other, shop.key, token)
    assert markers(await started(again, conv)) == {
        ("agent", shop.agents[email]): 1,
        ("visitor", again.welcome["visitor"]): offset,
    }
    agent2 = await Client.agent(other, email)
    assert markers(await started(agent2, conv)) == {
        ("agent", shop.agents[email]): 1,
        ("visitor", again.welcome["visitor"]): offset,
    }


@pytest.fixture
def own_two_on_redis(tmp_path: Path, redis: RedisServer) -> Iterator[tuple[Server, Server]]:
    """Two processes on a redis-server of the test's own."""
    procs = [Server(tmp_path / f"p{i}", "--redis", redis.url) for i in range(2)]
    try:
        for proc in procs:
            proc.start()
        yield procs[0], procs[1]
    finally:
        for proc in procs:
            proc.stop()

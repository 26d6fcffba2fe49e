"""The in-process node (``tests/node.py``) against what the server process does.

Each test mirrors a subprocess test in ``tests/server/test_hub.py`` (named in its
docstring) with the same frames and the same assertions, on a ``Node``
instead of a ``Server``: if the node drifted from the real server, these
would disagree with their twins.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatserver.errors import CloseCode
from chatserver.types import ConvState

from ..conftest import PASSWORD
from ..node import Node, NodeClient

pytestmark = pytest.mark.anyio


async def first_message(visitor: NodeClient, body: str = "hello", cid: str = "m1") -> Any:
    ack = await visitor.request({"t": "send", "cid": cid, "body": body})
    assert ack["t"] == "ack", ack
    return ack


async def history(client: NodeClient, conv: str, **kw: Any) -> dict[str, Any]:
    reply = await client.request({"t": "history", "conv": conv, **kw})
    assert reply["t"] == "history", reply
    return reply


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_hello_and_welcome(node: Node, codec: str) -> None:
    """``test_visitor_and_agent_chat``'s hellos: both kinds get their ``welcome``."""
    shop = await node.seed()
    (email,) = shop.agents
    agent = await node.agent(email, codec=codec)
    assert agent.welcome["agent"]["id"] == shop.agents[email]
    assert agent.welcome["status"] == "online"
    visitor = await node.visitor(shop.key, codec=codec)
    assert visitor.welcome["agents_online"] == 1
    assert visitor.welcome["token"]
    assert node.hub.stats()["agents_connected"] == 1


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_send_ack_and_echo(node: Node, codec: str) -> None:
    """``test_visitor_and_agent_chat``'s first message; a resend is a duplicate
    (``test_resend_with_same_cid_is_idempotent``)."""
    shop = await node.seed()
    visitor = await node.visitor(shop.key, codec=codec)
    ack = await first_message(visitor, "hello, do you ship to Spain?")
    assert ack["offset"] == 1 and ack["duplicate"] is False
    echo = await visitor.expect("msg", lambda f: f["body"] == "hello, do you ship to Spain?")
    assert echo["conv"] == ack["conv"] and echo["from"]["kind"] == "visitor"
    again = await first_message(visitor, "hello, do you ship to Spain?")
    assert again["duplicate"] is True and again["offset"] == 1
    conv = await node.store.get_conversation(ack["conv"])
    assert conv is not None and conv.last_offset == 1


async def test_agent_gets_the_conversation_and_replies(node: Node) -> None:
    """``test_visitor_and_agent_chat``: assigned, history from 0, reply, joined, read."""
    shop = await node.seed()
    (email,) = shop.agents
    agent = await node.agent(email)
    visitor = await node.visitor(shop.key)
    conv = (await first_message(visitor, "hello, do you ship to Spain?"))["conv"]

    assigned = await agent.expect(
        "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active"
    )
    assert [a["id"] for a in assigned["conv"]["agents"]] == [shop.agents[email]]
    reply = await history(agent, conv, since=0)
    assert reply["complete"] is True
    assert [m["body"] for m in reply["messages"] if m["kind"] == "text"] == [
        "hello, do you ship to Spain?"
    ]

    await agent.request({"t": "send", "conv": conv, "cid": "a1", "body": "Yes, in 2 days."})
    got = await visitor.expect("msg", lambda f: f["body"] == "Yes, in 2 days.")
    assert got["from"]["kind"] == "agent" and got["from"]["name"] == "Agent 0"
    joined = await visitor.expect("msg", lambda f: f["kind"] == "event")
    assert joined["data"]["event"] == "joined"

    await visitor.request({"t": "send", "cid": "m2", "body": "great"})
    await agent.expect("msg", lambda f: f["body"] == "great")
    await visitor.send({"t": "read", "conv": conv, "offset": got["offset"]})
    receipt = await agent.expect("read", lambda f: f["by"]["kind"] == "visitor")
    assert receipt["offset"] == got["offset"]
    stored = await node.store.get_conversation(conv)
    assert stored is not None and stored.state is ConvState.ACTIVE


async def test_reconnect_recovers_exactly_the_missed_messages(node: Node) -> None:
    """``test_reconnect_recovers_exactly_the_missed_messages``, the same frames."""
    shop = await node.seed()
    agent = await node.agent(next(iter(shop.agents)))
    visitor = await node.visitor(shop.key, codec="msgpack")
    conv = (await first_message(visitor))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    await agent.request({"t": "send", "conv": conv, "cid": "a0", "body": "before drop"})
    seen = await visitor.expect("msg", lambda f: f["body"] == "before drop")
    epoch = (await visitor.expect("conv"))["conv"]["epoch"]
    token = visitor.welcome["token"]
    await visitor.close()
    assert await visitor.closed == (1000, "")

    for i in range(1, 21):
        await agent.request({"t": "send", "conv": conv, "cid": f"a{i}", "body": f"missed {i}"})
    back = await node.visitor(shop.key, token=token, codec="msgpack")
    assert back.welcome["conv"] == conv
    reply = await history(back, conv, since=seen["offset"], epoch=epoch)
    assert reply["complete"] is True
    assert [m["body"] for m in reply["messages"]] == [f"missed {i}" for i in range(1, 21)]
    offsets = [m["offset"] for m in reply["messages"]]
    assert offsets == list(range(seen["offset"] + 1, seen["offset"] + 21))
    await agent.request({"t": "send", "conv": conv, "cid": "a99", "body": "live again"})
    await back.expect("msg", lambda f: f["body"] == "live again")
    live = [f["offset"] for f in back.of("msg")]
    assert len(live) == len(set(live)) and all(o > offsets[-1] for o in live)

    stale = await history(back, conv, since=1, epoch="not-the-epoch")
    assert stale["complete"] is False and stale["messages"]


async def test_typing_preview_reaches_the_agent(node: Node) -> None:
    """``test_typing_preview_is_coalesced_and_capped``: coalesced, capped, never stored."""
    shop = await node.seed()
    agent = await node.agent(next(iter(shop.agents)))
    visitor = await node.visitor(shop.key)
    conv = (await first_message(visitor))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    mark = len(agent.frames)
    text = ""
    for ch in "How much does the red jacket cost in size M?":
        text += ch
        await visitor.send({"t": "typing", "draft": text})
    await agent.expect("preview", lambda f: f["text"] == text, after=mark)
    await asyncio.sleep(0.3)
    previews = [f for f in agent.frames[mark:] if f["t"] == "preview"]
    assert 1 <= len(previews) <= 3, [p["text"] for p in previews]
    assert previews[-1]["text"] == text and previews[-1]["conv"] == conv
    assert not visitor.of("preview"), "a visitor never receives previews"

    await asyncio.sleep(0.15)
    await visitor.send({"t": "typing", "draft": "x" * 5000})
    capped = await agent.expect("preview", lambda f: f["text"].startswith("xxx"))
    assert len(capped["text"]) == 2000
    stored = await history(agent, conv, since=0)
    assert all("xxx" not in m["body"] for m in stored["messages"])


async def test_protocol_violation_closes_with_its_code(node: Node) -> None:
    """``test_protocol_violations_close_with_documented_codes``: the close reaches the client."""
    client = await node.connect()
    await client.send({"t": "send", "cid": "m1", "body": "no hello first"})
    code, _ = await asyncio.wait_for(client.closed, 5)
    assert code == CloseCode.PROTOCOL_VIOLATION
    bad = await node.connect()
    await bad.send_raw(b"\xc1 not msgpack")
    assert (await asyncio.wait_for(bad.closed, 5))[0] == CloseCode.PROTOCOL_VIOLATION


async def test_http_routes_share_the_node(node: Node) -> None:
    """``POST /api/login`` on the node's app gives a token its hub accepts
    (``test_logins.py`` does this on a server process)."""
    shop = await node.seed()
    (email,) = shop.agents
    async with node.http() as http:
        wrong = await http.post("/api/login", json={"email": email, "password": "nope"})
        assert wrong.status_code == 401
        r = await http.post("/api/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        health = (await http.get("/healthz")).json()
    assert health["backend"] == "embedded" and health["connections"] == 0
    client = await node.connect()
    await client.send({"t": "hello", "v": 1, "kind": "agent", "token": r.json()["token"]})
    welcome = await client.expect("welcome")
    assert welcome["agent"]["id"] == shop.agents[email]
    assert node.hub.agent_sessions(shop.agents[email])


async def test_a_hello_while_storage_is_down_closes_with_unavailable(node: Node) -> None:
    """A store that cannot answer during ``hello`` (a database restarting) closes the
    connection with ``4006 unavailable`` (reconnect with backoff), not ``4001``; once
    it is back, the same hello is welcomed."""
    shop = await node.seed(agents=1)
    await node.store.close()  # the store is down
    try:
        client = await node.connect()
        await client.send({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key})
        code, reason = await asyncio.wait_for(client.closed, 5)
        assert (code, reason) == (CloseCode.UNAVAILABLE, "storage unavailable, try again")
        assert CloseCode(code).reconnect
    finally:
        await node.store.start()  # back
    visitor = await node.visitor(shop.key)
    assert visitor.welcome["t"] == "welcome"

"""``start``: an agent starts a chat with a visitor on the site (docs/protocol.md)."""

from __future__ import annotations

import pytest

from ..node import Node

pytestmark = pytest.mark.anyio


async def test_an_agent_starts_a_chat_and_the_widget_opens(node: Node) -> None:
    shop = await node.seed(agents=2)
    first, second = shop.agents
    anna = await node.agent(first)
    marc = await node.agent(second)
    visitor = await node.visitor(shop.key)  # anonymous: no record yet
    vid = visitor.welcome["visitor"]
    frame = {"t": "start", "visitor": vid, "cid": "s1", "body": "Hi! Can I help with sizes?"}
    ack = await anna.request(frame)
    assert ack["t"] == "ack" and not ack["duplicate"], ack
    conv = ack["conv"]
    await anna.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    opened = await visitor.expect("open")
    assert opened["agent"]["id"] == anna.welcome["agent"]["id"]
    msg = await visitor.expect("msg", lambda f: f["conv"] == conv and f["kind"] == "text")
    assert msg["body"] == "Hi! Can I help with sizes?" and msg["from"]["kind"] == "agent"
    reply = await visitor.request({"t": "send", "cid": "v1", "body": "Yes please"})
    assert reply["conv"] == conv  # the visitor answers in the same conversation
    again = await anna.request(frame)  # a retry: the same message, nothing new
    assert again["duplicate"] and again["offset"] == ack["offset"]
    taken = await marc.request({**frame, "cid": "s2"})
    assert taken["t"] == "error" and taken["code"] == 207  # already chatting with Anna
    gone = await anna.request({**frame, "visitor": "v_nobody", "cid": "s3"})
    assert gone["t"] == "error" and gone["code"] == 205
    assert (await node.store.get_visitor(vid)) is not None  # the chat made a record


async def test_an_agent_offline_cannot_start_one_and_leaves_nothing_open(node: Node) -> None:
    shop = await node.seed(agents=1)
    anna = await node.agent(next(iter(shop.agents)), status="offline")
    visitor = await node.visitor(shop.key)
    frame = {"t": "start", "visitor": visitor.welcome["visitor"], "cid": "s1", "body": "Hi"}
    refused = await anna.request(frame)
    assert refused["t"] == "error" and refused["code"] == 207, refused
    assert await node.store.current_conversation(visitor.welcome["visitor"]) is None
    assert not visitor.of("open")

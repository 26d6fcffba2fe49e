"""A record published without the conversation's lock never has the last word.

Tagging a chat, the visitor's rating and a trigger's tags change the record
without taking the conversation's lock, then publish the record they read.
A join (or any locked change) made between that read and its send used to be
undone at every console: its record came first, the older one last, and the
console showed the chat without the agent who had joined.  Now these
publishers read the record again after sending theirs and, if it changed,
send the current one (``Conversations.publish_settled``).

Each test holds back the unlocked publisher's record (as a loaded machine
delays a task between its read and its send) while a second agent joins,
then lets it go: the last ``conv`` record every agent gets must list both
agents and the change.  Without the fix the held record, with one agent,
came last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from chatserver.types import JSON

from ..conftest import Client
from ..node import HeldRecord, Node

pytestmark = pytest.mark.anyio


def records(client: Client, conv_id: str) -> list[dict[str, Any]]:
    """The published ``conv`` records of ``conv_id`` the client got, in order."""
    return [
        f["conv"] for f in client.of("conv") if f["conv"]["id"] == conv_id and not f.get("follow")
    ]


async def chat_with_two_agents(node: Node) -> tuple[Client, Client, Client, str, list[str]]:
    """A visitor's chat taken by the first agent; the second online, not in it."""
    shop = await node.seed(agents=2)
    first, second = shop.agents
    a = await node.agent(first)
    visitor = await node.visitor(shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "hello"})
    conv_id = ack["conv"]
    await a.expect("conv", lambda f: f["conv"]["id"] == conv_id and f["conv"]["state"] == "active")
    b = await node.agent(second)
    return a, b, visitor, conv_id, [shop.agents[first], shop.agents[second]]


async def joined_while_held(hold: HeldRecord, b: Client, conv_id: str) -> None:
    await asyncio.wait_for(hold.reached.wait(), 5)
    reply = await b.request({"t": "join", "conv": conv_id})
    assert reply["t"] == "ok", reply
    await b.expect("conv", lambda f: f["conv"]["id"] == conv_id and len(f["conv"]["agents"]) == 2)
    hold.released.set()


async def last_settles(clients: list[Client], conv_id: str, check: Callable[[JSON], bool]) -> None:
    """Every client's last record of the chat passes ``check`` (5 s at most), and stays so."""
    for _ in range(500):
        if all(records(c, conv_id) and check(records(c, conv_id)[-1]) for c in clients):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # nothing older may come after it
    for c in clients:
        assert check(records(c, conv_id)[-1]), records(c, conv_id)


def both_agents(ids: list[str]) -> Callable[[JSON], bool]:
    return lambda conv: sorted(a["id"] for a in conv["agents"]) == sorted(ids)


async def test_a_tag_published_after_a_join_does_not_undo_it(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, _, conv_id, ids = await chat_with_two_agents(node)
    hold = HeldRecord(
        node, monkeypatch, lambda c: "vip" in c.get("tags", ()) and len(c["agents"]) == 1
    )
    tagging = asyncio.ensure_future(a.request({"t": "tag", "conv": conv_id, "add": ["vip"]}))
    await joined_while_held(hold, b, conv_id)
    assert (await tagging)["t"] == "ok"
    await last_settles([a, b], conv_id, lambda c: both_agents(ids)(c) and c.get("tags") == ["vip"])


async def test_a_rating_published_after_a_tag_does_not_undo_it(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ratings come once the chat is closed, when no one joins; but an agent may tag
    it then, without the lock too: the later of the two records must win."""
    a, b, visitor, conv_id, _ = await chat_with_two_agents(node)
    closed = await a.request({"t": "close", "conv": conv_id})
    assert closed["t"] == "ok", closed

    def rated(conv: JSON) -> bool:
        return (conv.get("rating") or {}).get("value") == "great"

    hold = HeldRecord(node, monkeypatch, lambda c: rated(c) and "vip" not in c.get("tags", ()))
    rating = asyncio.ensure_future(
        visitor.request({"t": "rate", "conv": conv_id, "rating": "great"})
    )
    await asyncio.wait_for(hold.reached.wait(), 5)
    tagged = await a.request({"t": "tag", "conv": conv_id, "add": ["vip"]})
    assert tagged["t"] == "ok", tagged
    await a.expect("conv", lambda f: f["conv"]["id"] == conv_id and rated(f["conv"]))
    hold.released.set()
    assert (await rating)["t"] == "ok"
    await last_settles([a, b], conv_id, lambda c: rated(c) and c.get("tags") == ["vip"])

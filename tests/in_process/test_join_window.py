"""An agent who joins a waiting chat before it enters the router's queue keeps it.

``Conversations.enqueue`` publishes a waiting chat's ``queued`` record before
``router.submit`` queues it (test_queued_frame_order.py says why).  An agent's
console shows the chat waiting as soon as that record arrives, so the agent
may ``join`` it in between: ``attach`` gives it to them in the router, then
the late ``submit`` runs on a chat that already has its agent.  It used to
release every agent's hold and queue the chat again: routing then gave it to a
second agent (auto routing) or left it in the queue (manual), and the joiner's
load was lost, so they could take one chat past their capacity.

Each test holds ``submit`` while the agent joins from the ``queued`` record,
then lets it go.  The chat must end with exactly the agent who joined: its
record, the last record each console got, the router's queue and loads, and
the routing of the chats that come after (no capacity leaked either way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from chatserver.routing import Router
from chatserver.store import Store
from chatserver.types import Role, SiteSettings

from ..node import Node, NodeClient

pytestmark = pytest.mark.anyio


class HeldSubmit:
    """Holds the router's first ``submit`` until ``release``; ``queued`` says what
    the held call returned."""

    def __init__(self, router: Router, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = asyncio.Event()
        self.released = asyncio.Event()
        self.returned: list[Any] = []
        submit = router.submit

        async def held(*args: Any, **kwargs: Any) -> Any:
            first = not self.reached.is_set()
            if first:
                self.reached.set()
                await asyncio.wait_for(self.released.wait(), 5)
            result = await submit(*args, **kwargs)
            if first:
                self.returned.append(result)
            return result

        monkeypatch.setattr(router, "submit", held)


def records(client: NodeClient, conv_id: str) -> list[dict[str, Any]]:
    """The published ``conv`` records of ``conv_id`` the client got, in order."""
    return [
        f["conv"] for f in client.of("conv") if f["conv"]["id"] == conv_id and not f.get("follow")
    ]


async def last_record(client: NodeClient, conv_id: str) -> dict[str, Any]:
    """The last record of ``conv_id`` once the client got an ``active`` one (5 s at most)."""
    for _ in range(500):
        got = records(client, conv_id)
        if any(r["state"] == "active" for r in got):
            return got[-1]
        await asyncio.sleep(0.01)
    raise AssertionError([r["state"] for r in records(client, conv_id)])


async def only_with(store: Store, clients: Sequence[NodeClient], conv_id: str, agent: str) -> None:
    """The stored record and the last record each client got: ``active``, with ``agent``
    alone."""
    conv = await store.get_conversation(conv_id)
    assert conv is not None and conv.state.value == "active" and conv.agents == (agent,), conv
    for client in clients:
        last = await last_record(client, conv_id)
        assert last["state"] == "active" and [a["id"] for a in last["agents"]] == [agent], last


async def join_while_held(
    posting: Node, visitor: NodeClient, joining: NodeClient, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, HeldSubmit]:
    """The visitor's first message opens a chat; its ``submit`` is held while ``joining``
    joins it from the ``queued`` record; then the submit and the routing after it run.
    Returns the chat's id."""
    hold = HeldSubmit(posting.parts.router, monkeypatch)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "anyone there?"})
    assert ack["t"] == "ack", ack
    conv_id = ack["conv"]
    await asyncio.wait_for(hold.reached.wait(), 5)
    await joining.expect(
        "conv", lambda f: f["conv"]["id"] == conv_id and f["conv"]["state"] == "queued"
    )
    reply = await joining.request({"t": "join", "conv": conv_id})
    assert reply["t"] == "ok", reply
    hold.released.set()
    # The visitor's frames run one at a time: this ack comes after the first
    # message's submit and routing are done.
    ack = await visitor.request({"t": "send", "cid": "m2", "body": "hello?"})
    assert ack["t"] == "ack" and ack["conv"] == conv_id, ack
    assert hold.returned == [False]  # the submit saw the joiner's hold and queued nothing
    return conv_id, hold


@pytest.mark.parametrize("routing", ["auto", "manual"])
async def test_a_join_before_the_submit_keeps_the_chat_with_the_joiner(
    node: Node, monkeypatch: pytest.MonkeyPatch, routing: str
) -> None:
    shop = await node.seed(agents=2, capacity=1, settings=SiteSettings(routing=routing))
    (first, a1), (second, a2) = shop.agents.items()
    joining = await node.agent(first)
    other = await node.agent(second)
    visitor = await node.visitor(shop.key)
    conv_id, _ = await join_while_held(node, visitor, joining, monkeypatch)

    await only_with(node.store, (joining, other, visitor), conv_id, a1)
    router = node.parts.router
    assert await router.queue(shop.site.id) == []
    assert (await router.load(a1), await router.load(a2)) == (1, 0)

    # Later chats: capacity 1 each, so the joiner has no room left.
    later = await node.visitor(shop.key)
    ack = await later.request({"t": "send", "cid": "l1", "body": "me too"})
    later_id = ack["conv"]
    if routing == "auto":
        took = await other.expect("conv", lambda f: f["conv"]["id"] == later_id and f.get("follow"))
        assert [a["id"] for a in took["conv"]["agents"]] == [a2]
        assert (await router.load(a1), await router.load(a2)) == (1, 1)
        assert await router.queue(shop.site.id) == []
    else:
        place = await later.expect("queue", lambda f: f["conv"] == later_id)
        assert place["position"] == 1, place
        assert await router.queue(shop.site.id) == [later_id]
        refused = await joining.request({"t": "join", "conv": later_id})
        assert refused["t"] == "error", refused  # at capacity: the joined chat counts


async def test_a_join_on_another_process_before_the_submit(
    two_nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chat opens on one process (its submit held); the agent joins it on another,
    through the Redis router they share: the held submit must see that hold (in the
    router's Lua, atomically) and queue nothing."""
    a, b = two_nodes
    shop = await a.seed(agents=2, capacity=1)
    (first, a1), (second, a2) = shop.agents.items()
    joining = await b.agent(first)
    other = await a.agent(second)
    visitor = await a.visitor(shop.key)
    conv_id, _ = await join_while_held(a, visitor, joining, monkeypatch)

    await only_with(b.store, (joining, other, visitor), conv_id, a1)
    for node in (a, b):
        router = node.parts.router
        assert await router.queue(shop.site.id) == []
        assert (await router.load(a1), await router.load(a2)) == (1, 0)

    # The next chat goes to the other agent; the one after waits (nobody has room).
    later = await b.visitor(shop.key)
    ack = await later.request({"t": "send", "cid": "l1", "body": "me too"})
    took = await other.expect("conv", lambda f: f["conv"]["id"] == ack["conv"] and f.get("follow"))
    assert [x["id"] for x in took["conv"]["agents"]] == [a2]
    last = await b.visitor(shop.key)
    ack = await last.request({"t": "send", "cid": "l2", "body": "and me"})
    place = await last.expect("queue", lambda f: f["conv"] == ack["conv"])
    assert place["position"] == 1, place
    assert await a.parts.router.queue(shop.site.id) == [ack["conv"]]
    assert (await a.parts.router.load(a1), await a.parts.router.load(a2)) == (1, 1)


@pytest.mark.parametrize("who", ["a colleague", "the agent who left"])
async def test_a_join_before_a_left_chat_is_queued_again(
    node: Node, monkeypatch: pytest.MonkeyPatch, who: str
) -> None:
    """An agent leaves; someone joins from the ``queued`` record before the requeue's
    submit (a colleague, or the agent who left, changing their mind in another tab).  The requeue
    holds the chat's lock, so the join's assignment waits for it after taking the
    chat in the router: the submit runs between the two."""
    shop = await node.seed(agents=3, capacity=1)
    (first, l1), (second, j2), (third, o3) = shop.agents.items()
    leaving = await node.agent(first)
    visitor = await node.visitor(shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "anyone there?"})
    conv_id = ack["conv"]
    await leaving.expect("conv", lambda f: f["conv"]["id"] == conv_id and bool(f.get("follow")))
    colleague = await node.agent(second)
    other = await node.agent(third)
    # The agent who left joins back from another tab: a tab's frames run one at a time.
    joining, joiner = (colleague, j2) if who == "a colleague" else (await node.agent(first), l1)
    router = node.parts.router
    hold = HeldSubmit(router, monkeypatch)
    await leaving.send({"t": "leave", "conv": conv_id, "id": 1})
    await asyncio.wait_for(hold.reached.wait(), 5)
    await joining.expect(
        "conv", lambda f: f["conv"]["id"] == conv_id and f["conv"]["state"] == "queued"
    )
    await joining.send({"t": "join", "conv": conv_id, "id": 2})
    for _ in range(500):  # the join's attach; its assignment waits for the lock
        if await router.load(joiner) == 1:
            break
        await asyncio.sleep(0.01)
    hold.released.set()
    await leaving.expect("ok", lambda f: f.get("re") == 1)
    await joining.expect("ok", lambda f: f.get("re") == 2)
    assert hold.returned == [False]

    conv = await node.store.get_conversation(conv_id)
    assert conv is not None and conv.state.value == "active" and conv.agents == (joiner,), conv
    for client in (leaving, joining, colleague, other, visitor):
        last = (records(client, conv_id) or [{}])[-1]
        assert last["state"] == "active" and [a["id"] for a in last["agents"]] == [joiner], last
    assert await router.queue(shop.site.id) == []
    loads = {a: 1 if a == joiner else 0 for a in (l1, j2, o3)}
    assert {a: await router.load(a) for a in (l1, j2, o3)} == loads


async def test_a_chat_closed_before_the_submit_is_not_queued(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same window with a close: an admin closes the chat from its ``queued`` record
    before the submit (the close's ``remove`` finds nothing to remove yet).  The closed
    chat must not wait in the queue, ahead of the chats that come after it."""
    shop = await node.seed(agents=1, settings=SiteSettings(routing="manual"), roles={0: Role.ADMIN})
    ((email, _),) = shop.agents.items()
    admin = await node.agent(email)
    visitor = await node.visitor(shop.key)
    hold = HeldSubmit(node.parts.router, monkeypatch)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "anyone there?"})
    conv_id = ack["conv"]
    await asyncio.wait_for(hold.reached.wait(), 5)
    await admin.expect(
        "conv", lambda f: f["conv"]["id"] == conv_id and f["conv"]["state"] == "queued"
    )
    reply = await admin.request({"t": "close", "conv": conv_id})
    assert reply["t"] == "ok", reply
    hold.released.set()
    # The visitor's frames run one at a time: this reply comes after the first
    # message's submit and routing are done.
    done = await visitor.request({"t": "attrs", "set": {"plan": "pro"}})
    assert done["t"] == "ok", done
    assert await node.parts.router.queue(shop.site.id) == []
    later = await node.visitor(shop.key)
    ack = await later.request({"t": "send", "cid": "l1", "body": "me too"})
    place = await later.expect("queue", lambda f: f["conv"] == ack["conv"])
    assert place["position"] == 1, place

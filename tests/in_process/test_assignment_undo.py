"""A join or a transfer whose writing fails gives the agent's place back.

``join`` and ``transfer`` take the agent's place in the router first
(``attach``: it checks and spends their capacity, and takes a waiting chat out
of the queue), then write the assignment.  When the writing failed (the store
refusing a call), the place stayed taken: the agent's capacity leaked, and a
waiting chat was held by an agent the record never gave it to, in no queue.
Now the failure is undone as ``route`` undoes one (``_assignment_failed``: the
record decides), and the caller still gets the error.

Each test makes the store fail once, at the step named, on the embedded
backend and on Redis (its store and its router, a redis-server of the test's
own), then checks the record, the router's queue and loads, and that the same
action succeeds when tried again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatserver.errors import StoreError
from chatserver.types import SiteSettings

from ..node import Node

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "redis"])
async def any_node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Node]:
    """A node of the embedded backend, or one whose store and router are on Redis."""
    config: dict[str, Any] = {}
    if request.param == "redis":
        config["redis_url"] = request.getfixturevalue("redis").url
    started = await Node(tmp_path / "node", **config).start()
    try:
        yield started
    finally:
        await started.close()


def fail_once(node: Node, monkeypatch: pytest.MonkeyPatch, step: str) -> list[StoreError]:
    """The store fails once at ``step``: ``assignment`` (writing the chat ``active``) or
    ``event`` (appending the ``transferred`` event).  The list empties when it did."""
    store = node.store
    failures = [StoreError("sqlite: disk I/O error")]
    if step == "assignment":
        update = store.update_conversation

        async def flaky_update(conv_id: Any, **kw: Any) -> Any:
            if kw.get("state") is not None and kw["state"].value == "active" and failures:
                raise failures.pop()
            return await update(conv_id, **kw)

        monkeypatch.setattr(store, "update_conversation", flaky_update)
    else:
        append = store.append

        async def flaky_append(*args: Any, **kw: Any) -> Any:
            if (kw.get("data") or {}).get("event") == "transferred" and failures:
                raise failures.pop()
            return await append(*args, **kw)

        monkeypatch.setattr(store, "append", flaky_append)
    return failures


async def test_a_failed_join_gives_the_place_back_and_the_chat_waits_again(
    any_node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = any_node
    shop = await node.seed(agents=1, capacity=1, settings=SiteSettings(routing="manual"))
    ((email, agent_id),) = shop.agents.items()
    agent = await node.agent(email)
    visitor = await node.visitor(shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "anyone there?"})
    conv_id = ack["conv"]
    await visitor.expect("queue", lambda f: f["conv"] == conv_id)  # queued, not routed
    router = node.parts.router
    assert await router.queue(shop.site.id) == [conv_id]
    failures = fail_once(node, monkeypatch, "assignment")

    refused = await agent.request({"t": "join", "conv": conv_id})
    assert refused["t"] == "error" and refused["code"] == 101, refused
    assert failures == []
    conv = await node.store.get_conversation(conv_id)
    assert conv is not None and conv.state.value == "queued" and conv.agents == (), conv
    # Before the fix: load 1 (capacity spent) and an empty queue (the chat in none).
    assert await router.load(agent_id) == 0
    assert await router.queue(shop.site.id) == [conv_id]

    joined = await agent.request({"t": "join", "conv": conv_id})
    assert joined["t"] == "ok", joined
    assert await router.load(agent_id) == 1
    assert await router.queue(shop.site.id) == []
    conv = await node.store.get_conversation(conv_id)
    assert conv is not None and conv.state.value == "active" and conv.agents == (agent_id,)


@pytest.mark.parametrize("step", ["event", "assignment"])
async def test_a_failed_transfer_gives_the_targets_place_back(
    any_node: Node, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    node = any_node
    shop = await node.seed(agents=2, capacity=1)
    (first, a1), (second, a2) = shop.agents.items()
    giving = await node.agent(first)
    visitor = await node.visitor(shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "anyone there?"})
    conv_id = ack["conv"]
    await giving.expect("conv", lambda f: f["conv"]["id"] == conv_id and bool(f.get("follow")))
    taking = await node.agent(second)
    await visitor.expect("agents", lambda f: f["online"] == 2)
    router = node.parts.router
    failures = fail_once(node, monkeypatch, step)

    refused = await giving.request({"t": "transfer", "conv": conv_id, "agent": a2})
    assert refused["t"] == "error" and refused["code"] == 101, refused
    assert failures == []
    conv = await node.store.get_conversation(conv_id)
    assert conv is not None and conv.state.value == "active" and conv.agents == (a1,), conv
    # Before the fix a2 held it too (load 1, at capacity) without being in it.
    assert (await router.load(a1), await router.load(a2)) == (1, 0)

    done = await giving.request({"t": "transfer", "conv": conv_id, "agent": a2})
    assert done["t"] == "ok", done
    conv = await node.store.get_conversation(conv_id)
    assert conv is not None and conv.agents == (a2,), conv
    assert (await router.load(a1), await router.load(a2)) == (0, 1)
    await taking.expect("conv", lambda f: f["conv"]["id"] == conv_id and bool(f.get("follow")))

"""A new chat whose queueing failed after its ack is queued again in the background.

The visitor's first message is stored and acknowledged before the chat is
queued.  When the router fails then (on Redis: its connection pool, or a round
trip past the timeout, under load: ``tests/server/test_scale_redis.py`` saw
it), the record says the chat waits while no queue holds it, and a resent
message is a duplicate, which routes nothing.  ``Conversations.enqueue_new``
tries again (``ROUTE_RETRIES``) until it is queued, taken or closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from chatserver.conversations import Conversations
from chatserver.errors import StoreError

from ..node import Node

pytestmark = pytest.mark.anyio


def failing_submits(node: Node, monkeypatch: pytest.MonkeyPatch, times: int) -> list[str]:
    """The router's ``submit`` fails its first ``times`` calls, as a Redis router
    whose pool had no connection for 5 s; the calls are listed."""
    router = node.parts.router
    submit = router.submit
    calls: list[str] = []

    async def flaky(conv: Any, *args: Any, **kw: Any) -> bool:
        calls.append(conv.id)
        if len(calls) <= times:
            raise StoreError("redis routing failed: No connection available.")
        return await submit(conv, *args, **kw)

    monkeypatch.setattr(router, "submit", flaky)
    monkeypatch.setattr(Conversations, "ROUTE_RETRIES", (0.05, 0.05, 0.05))
    return calls


async def test_a_chat_whose_queueing_failed_reaches_an_agent(
    node: Node, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shop = await node.seed(agents=1)
    (email,) = shop.agents
    agent = await node.agent(email)
    visitor = await node.visitor(shop.key)
    calls = failing_submits(node, monkeypatch, times=2)
    with caplog.at_level(logging.WARNING, "chatserver.conversations"):
        ack = await visitor.request({"t": "send", "cid": "m1", "body": "anyone there?"})
        assert ack["t"] == "ack", ack
        conv_id = ack["conv"]
        joined = await agent.expect(
            "conv", lambda f: f["conv"]["id"] == conv_id and f["conv"]["state"] == "active"
        )
    assert [a["id"] for a in joined["conv"]["agents"]] == [shop.agents[email]]
    assert calls == [conv_id] * 3  # failed, failed, queued
    assert "trying again in the background" in caplog.text
    assert await node.parts.router.queue(shop.site.id) == []


async def test_a_chat_closed_before_the_next_try_is_left_alone(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await node.seed(agents=1)
    visitor = await node.visitor(shop.key)
    calls = failing_submits(node, monkeypatch, times=1)
    monkeypatch.setattr(Conversations, "ROUTE_RETRIES", (0.3,))
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "never mind"})
    conv_id = ack["conv"]
    closed = await visitor.request({"t": "close", "conv": conv_id})
    assert closed["t"] == "ok", closed
    await asyncio.sleep(0.5)  # past the one try
    assert calls == [conv_id]  # the try found it closed and queued nothing
    assert await node.parts.router.queue(shop.site.id) == []


async def test_a_failed_assignment_puts_the_chat_back_in_the_queue(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``drain`` took the chat out of the queue for an agent, and writing the assignment
    failed: the chat goes back in the queue (before, only the agent's hold went, and the
    chat waited in no queue), and the next routing gives it to the agent."""
    shop = await node.seed(agents=1)
    (email,) = shop.agents
    agent_id = shop.agents[email]
    store, router = node.store, node.parts.router
    update = store.update_conversation
    failures = [StoreError("sqlite: disk I/O error")]

    async def flaky(conv_id: Any, **kw: Any) -> Any:
        if kw.get("state") is not None and kw["state"].value == "active" and failures:
            raise failures.pop()
        return await update(conv_id, **kw)

    visitor = await node.visitor(shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "anyone there?"})
    conv_id = ack["conv"]
    monkeypatch.setattr(store, "update_conversation", flaky)
    agent = await node.agent(email)  # its arrival routes the site: the assignment fails
    await visitor.expect("agents", lambda f: f["online"] >= 1)
    for _ in range(200):
        if not failures and await router.queue(shop.site.id) == [conv_id]:
            break
        await asyncio.sleep(0.01)
    assert await router.queue(shop.site.id) == [conv_id]
    assert await router.load(agent_id) == 0
    site = await node.hub.site(shop.site.id)
    await node.parts.convs.route(site)  # the next routing (a message, an agent's change)
    joined = await agent.expect(
        "conv", lambda f: f["conv"]["id"] == conv_id and f["conv"]["state"] == "active"
    )
    assert [a["id"] for a in joined["conv"]["agents"]] == [agent_id]

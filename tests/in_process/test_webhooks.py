"""Webhooks on the in-process node (``tests/node.py``) with a real HTTP receiver.

The node's real parts (SQLite store, outbox runner, dispatcher, HTTP client)
deliver to ``tests/webhook_receiver.py`` on 127.0.0.1, which the endpoints
are allowed to reach (``allow_private``); retries are made short by options.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chatserver.outbox import OutboxConfig
from chatserver.store.outbox import JobState
from chatserver.webhooks import Webhooks
from chatserver.webhooks.endpoints import DEFAULT_EVENTS, key_prefix
from chatserver.webhooks.settings import WebhookConfig
from chatserver.webhooks.signing import verify

from ..conftest import Shop
from ..node import Node, NodeClient
from ..webhook_receiver import Receiver

pytestmark = pytest.mark.anyio

FAST = OutboxConfig(retry_base=0.05, retry_cap=0.2, give_up=30.0, lease=5.0, poll=0.05)


def fast(**kw: Any) -> WebhookConfig:
    return WebhookConfig(**{"poll": 0.05, "timeout": 2.0, "outbox": FAST, **kw})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    with Receiver() as r:
        yield r


async def started(tmp_path: Path, **kw: Any) -> Node:
    return await Node(tmp_path / "node", webhooks=fast(**kw)).start()


def hooks(node: Node) -> Webhooks:
    return node.parts.webhooks


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def say(client: NodeClient, body: str, cid: str, conv: str | None = None) -> Any:
    frame: dict[str, Any] = {"t": "send", "cid": cid, "body": body}
    if conv is not None:
        frame["conv"] = conv
    ack = await client.request(frame)
    assert ack["t"] == "ack", ack
    return ack


async def chat(node: Node, shop: Shop) -> str:
    """A visitor's message, the agent's answer and note, then the agent closes."""
    (email,) = shop.agents
    agent = await node.agent(email)
    visitor = await node.visitor(shop.key)
    conv = (await say(visitor, "Do you ship to Spain?", "v1"))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["agents"])
    await say(agent, "Yes, in two days.", "a1", conv)
    note = await agent.request(
        {"t": "send", "conv": conv, "cid": "n1", "body": "VIP", "note": True}
    )
    assert note["t"] == "ack", note
    closed = await agent.request({"t": "close", "conv": conv})
    assert closed["t"] == "ok", closed
    return str(conv)


async def test_a_chat_arrives_signed_in_order_without_notes(
    tmp_path: Path, receiver: Receiver
) -> None:
    node = await started(tmp_path)
    try:
        shop = await node.seed()
        endpoint = await hooks(node).add(shop.site.id, receiver.url, DEFAULT_EVENTS, True)
        notes = await hooks(node).add(shop.site.id, receiver.url, ["note.created"], True)
        conv = await chat(node, shop)
        await until(lambda: len(receiver.requests) >= 6)
        await asyncio.sleep(0.2)  # nothing more comes
        mine = [r for r in receiver.requests if r.body["id"].startswith(endpoint.id)]
        types = [r.body["type"] for r in mine]
        assert types == [
            "conversation.opened",
            "message.created",
            "conversation.assigned",
            "message.created",
            "conversation.closed",
        ]
        offsets = [r.body["offset"] for r in mine]
        assert offsets == sorted(offsets) and offsets[0] == 0
        for r in mine:
            assert r.body["conversation"]["id"] == conv and r.body["site"] == shop.site.id
            assert r.headers["Chatserver-Delivery"] == r.body["id"]
            assert r.headers["Chatserver-Event"] == r.body["type"]
            assert verify(endpoint.secret, r.headers["Chatserver-Signature"], r.raw, time.time())
            assert not verify(notes.secret, r.headers["Chatserver-Signature"], r.raw, time.time())
        assert mine[1].body["entry"]["body"] == "Do you ship to Spain?"
        assert mine[1].body["entry"]["from"]["kind"] == "visitor"
        (note,) = [r.body for r in receiver.requests if r.body["id"].startswith(notes.id)]
        assert note["type"] == "note.created" and note["entry"]["body"] == "VIP"
    finally:
        await node.close()


async def test_a_500_is_retried_with_the_same_delivery(tmp_path: Path, receiver: Receiver) -> None:
    node = await started(tmp_path)
    try:
        shop = await node.seed(agents=0)
        endpoint = await hooks(node).add(shop.site.id, receiver.url, ["message.created"], True)
        answers = iter([500, 500])
        receiver.answer = lambda body: next(answers, 200)
        visitor = await node.visitor(shop.key)
        await say(visitor, "hello", "v1")
        await until(lambda: len(receiver.delivered()) == 1)
        ids = [r.headers["Chatserver-Delivery"] for r in receiver.requests]
        assert [r.status for r in receiver.requests] == [500, 500, 200]
        assert len(set(ids)) == 1
        deadline = time.monotonic() + 5
        while (
            job := (await node.store.jobs(shop.site.id, key_prefix(endpoint.id)))[0]
        ).state is not JobState.DONE:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert job.id == ids[0] and job.attempts == 2 and job.last_error == "HTTP 500"
        saved = await hooks(node).endpoint(shop.site.id, endpoint.id)
        assert saved is not None and saved.failures == 0 and len(saved.errors) == 2
    finally:
        await node.close()


async def test_a_receiver_that_times_out_gets_it_again(tmp_path: Path, receiver: Receiver) -> None:
    node = await started(tmp_path, timeout=0.3)
    try:
        shop = await node.seed(agents=0)
        await hooks(node).add(shop.site.id, receiver.url, ["message.created"], True)
        first = [True]

        def answer(body: dict[str, Any]) -> int | tuple[str, float]:
            if first:
                first.clear()
                return ("sleep", 3.0)
            return 200

        receiver.answer = answer
        visitor = await node.visitor(shop.key)
        await say(visitor, "hello", "v1")
        await until(lambda: len(receiver.requests) == 2)
        a, b = receiver.requests
        assert a.headers["Chatserver-Delivery"] == b.headers["Chatserver-Delivery"]
        assert b.at - a.at < 3.0  # retried after the 0.3 s timeout, not after the answer
    finally:
        await node.close()


async def test_conversations_are_delivered_concurrently(tmp_path: Path, receiver: Receiver) -> None:
    """A receiver stuck on one conversation's delivery still gets the others',
    and each conversation's deliveries come in offset order."""
    node = await started(tmp_path)
    try:
        shop = await node.seed(agents=0)
        await hooks(node).add(shop.site.id, receiver.url, ["message.created"], True)
        first = await node.visitor(shop.key)
        stuck = (await say(first, "m0", "f0"))["conv"]
        receiver.hold(lambda body: body["conversation"]["id"] == stuck)
        for i in range(1, 4):
            await say(first, f"m{i}", f"f{i}")
        others = [await node.visitor(shop.key) for _ in range(3)]
        for n, visitor in enumerate(others):
            for i in range(3):
                await say(visitor, f"o{n}.{i}", f"o{i}")
        await until(lambda: len(receiver.requests) >= 9)
        assert all(r.body["conversation"]["id"] != stuck for r in receiver.requests)
        receiver.release()
        await until(lambda: len(receiver.requests) == 13)
        by_conv: dict[str, list[int]] = {}
        for body in receiver.bodies():
            by_conv.setdefault(body["conversation"]["id"], []).append(body["offset"])
        assert len(by_conv) == 4
        assert all(
            offsets == sorted(offsets) and len(offsets) in (3, 4) for offsets in by_conv.values()
        )
    finally:
        await node.close()


async def test_loopback_is_refused_without_the_allow(tmp_path: Path, receiver: Receiver) -> None:
    node = await started(tmp_path, disable_after=3)
    try:
        shop = await node.seed(agents=0)
        endpoint = await hooks(node).add(shop.site.id, receiver.url, ["message.created"])
        visitor = await node.visitor(shop.key)
        await say(visitor, "hello", "v1")

        async def switched_off() -> bool:
            saved = await hooks(node).endpoint(shop.site.id, endpoint.id)
            return saved is not None and not saved.enabled

        deadline = time.monotonic() + 5
        while not await switched_off():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        saved = await hooks(node).endpoint(shop.site.id, endpoint.id)
        assert saved is not None and saved.disabled is not None
        assert "private or local address" in saved.errors[-1]["error"]
        assert "3 failed attempts" in saved.disabled["reason"]
        assert receiver.requests == []
        deadline = time.monotonic() + 5  # its delivery is given up: the endpoint is off
        while (
            job := (await node.store.jobs(shop.site.id, key_prefix(endpoint.id)))[0]
        ).state is not JobState.FAILED:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert job.last_error == "the endpoint is switched off"
        assert all(e["error"].startswith("refused: 127.0.0.1 is a private") for e in saved.errors)
    finally:
        await node.close()


async def test_an_endpoint_switched_on_again_catches_up(tmp_path: Path, receiver: Receiver) -> None:
    node = await started(tmp_path)
    try:
        shop = await node.seed(agents=0)
        endpoint = await hooks(node).add(shop.site.id, receiver.url, ["message.created"], True)
        endpoint = await hooks(node).change(endpoint, enabled=False)
        visitor = await node.visitor(shop.key)
        await say(visitor, "while off", "v1")
        await asyncio.sleep(0.3)
        assert receiver.requests == []
        await hooks(node).change(endpoint, enabled=True)
        await until(lambda: len(receiver.requests) == 1)
        assert receiver.bodies()[0]["entry"]["body"] == "while off"
    finally:
        await node.close()


async def test_a_visitor_identifying_is_delivered(tmp_path: Path, receiver: Receiver) -> None:
    node = await started(tmp_path)
    try:
        shop = await node.seed(agents=0)
        wants = ["visitor.identified"]
        endpoint = await hooks(node).add(shop.site.id, receiver.url, wants, True)
        await hooks(node).add(shop.site.id, receiver.url, ["message.created"], True)
        await until(lambda: shop.site.id in hooks(node).by_site)
        visitor = await node.visitor(shop.key)
        reply = await visitor.request({"t": "identify", "name": "Ana", "email": "ana@shop.test"})
        assert reply["t"] == "ok", reply
        await until(lambda: len(receiver.requests) == 1)
        got = receiver.requests[0]
        assert got.body["type"] == "visitor.identified" and got.body["site"] == shop.site.id
        assert got.body["visitor"]["name"] == "Ana" and got.body["visitor"]["verified"] is False
        assert verify(endpoint.secret, got.headers["Chatserver-Signature"], got.raw, time.time())
    finally:
        await node.close()

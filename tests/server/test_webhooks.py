"""Webhooks from a real chatserver process to a real HTTP receiver, across a kill -9.

The receiver (``tests/webhook_receiver.py``) runs on 127.0.0.1, so the
endpoint is stored with ``allow_private``; retries are made short with the
``--outbox-*`` options so each test takes a few seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chatserver.store_sqlite import SQLiteStore
from chatserver.webhooks.endpoints import DEFAULT_EVENTS, KIND
from chatserver.webhooks.signing import new_secret, verify

from ..conftest import Client, Server, seed
from ..webhook_receiver import Receiver

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

FAST = (
    "--outbox-retry-base", "0.05",
    "--outbox-retry-cap", "0.2",
    "--outbox-poll", "0.05",
    "--webhook-timeout", "0.5",
    "--outbox-lease", "1",
)  # fmt: skip


async def add_endpoint(data: Path, site_id: str, url: str) -> str:
    """An endpoint stored as the admin page stores one (before the server starts)."""
    store = SQLiteStore(data / "chatserver.db")
    await store.start()
    try:
        secret = new_secret()
        doc = {
            "url": url,
            "events": list(DEFAULT_EVENTS),
            "allow_private": True,
            "secret": secret,
            "enabled": True,
            "from_seq": await store.feed_head(),
        }
        await store.put_doc(site_id, KIND, "wh_test", doc)
        return secret
    finally:
        await store.close()


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def say(visitor: Client, body: str, cid: str) -> Any:
    ack = await visitor.request({"t": "send", "cid": cid, "body": body})
    assert ack["t"] == "ack", ack
    return ack


async def test_nothing_is_lost_across_a_kill_9(tmp_path: Path) -> None:
    """The receiver fails, messages are posted, chatserver is killed (some
    deliveries failed, the last ones maybe not even dispatched); started again
    with a receiver that answers, every message arrives, in offset order, with
    the delivery ids it had before the kill."""
    data = tmp_path / "data"
    shop = await seed(data, agents=0)
    with Receiver() as receiver:
        secret = await add_endpoint(data, shop.site.id, receiver.url)
        receiver.answer = lambda body: 500
        server = Server(data, *FAST).start()
        try:
            visitor = await Client.visitor(server, shop.key)
            await say(visitor, "m1", "c1")
            await until(lambda: len(receiver.requests) >= 2)  # failing and retried
            for i in range(2, 9):
                await say(visitor, f"m{i}", f"c{i}")
            server.kill()
            before = {r.body["id"] for r in receiver.requests}
            receiver.answer = lambda body: 200
            server.start()
            await until(lambda: {b["offset"] for b in receiver.delivered()} >= set(range(0, 9)))
        finally:
            server.stop()
    delivered = receiver.delivered()
    messages = [b for b in delivered if b["type"] == "message.created"]
    firsts: list[int] = []
    for b in messages:
        if b["offset"] not in firsts:
            firsts.append(b["offset"])
    assert firsts == list(range(1, 9))  # every message, in offset order
    assert [b["entry"]["body"] for b in messages][:1] == ["m1"]
    assert delivered[0]["type"] == "conversation.opened"
    ids = {b["offset"]: b["id"] for b in delivered}
    assert before <= set(ids.values())  # the ids tried before the kill came through
    assert len(set(ids.values())) == len(ids)
    for r in receiver.requests:
        assert verify(secret, r.headers["Chatserver-Signature"], r.raw, time.time())
        assert r.headers["Chatserver-Delivery"] == r.body["id"]

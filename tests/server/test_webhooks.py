"""Webhooks from a real chatserver process to a real HTTP receiver, across a kill -9.

The receiver (``tests/webhook_receiver.py``) runs on 127.0.0.1, so the
endpoint is stored with ``allow_private``; retries are made short with the
``--outbox-*`` options so each test takes a few seconds.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chatserver.store import Store
from chatserver.store.postgres import PostgresStore
from chatserver.store_redis import RedisStore
from chatserver.store_sqlite import SQLiteStore
from chatserver.webhooks.endpoints import DEFAULT_EVENTS, KIND
from chatserver.webhooks.signing import new_secret, verify

from ..conftest import Client, Server, Shop, seed, seed_store
from ..redis_server import RedisServer
from ..webhook_receiver import Receiver
from .test_console_admin import Console, console, errors, flash, shop_with_admin

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

FAST = (
    "--outbox-retry-base", "0.05",
    "--outbox-retry-cap", "0.2",
    "--outbox-poll", "0.05",
    "--webhook-timeout", "0.5",
    "--outbox-lease", "1",
)  # fmt: skip


def backend(
    kind: str, data: Path, request: pytest.FixtureRequest
) -> tuple[Callable[[], Store], tuple[str, ...]]:
    """The server's record on ``kind``: a store opening it and the server's options."""
    if kind == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        return (lambda: RedisStore(redis.url)), ("--redis", redis.url)
    if kind == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return (lambda: PostgresStore(url)), ("--database", url)
    return (lambda: SQLiteStore(data / "chatserver.db")), ()


async def seeded(open_store: Callable[[], Store]) -> Shop:
    store = open_store()
    await store.start()
    try:
        return await seed_store(store, agents=0)
    finally:
        await store.close()


async def add_endpoint(open_store: Callable[[], Store], site_id: str, url: str) -> str:
    """An endpoint stored as the admin page stores one (before the server starts)."""
    store = open_store()
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


@pytest.mark.parametrize("kind", ["embedded", "redis", "postgres"])
async def test_nothing_is_lost_across_a_kill_9(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """The receiver fails, messages are posted, chatserver is killed (some
    deliveries failed, the last ones maybe not even dispatched); started again
    with a receiver that answers, every message arrives, in offset order, with
    the delivery ids it had before the kill.  On each backend."""
    data = tmp_path / "data"
    open_store, options = backend(kind, data, request)
    shop = await seeded(open_store)
    with Receiver() as receiver:
        secret = await add_endpoint(open_store, shop.site.id, receiver.url)
        receiver.answer = lambda body: 500
        server = Server(data, *FAST, *options).start()
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


async def test_a_timeout_and_a_500_are_retried_in_order(tmp_path: Path) -> None:
    """A receiver that first times out, then answers 500, then 200 gets the same
    delivery three times, and nothing later of that conversation before it; the
    other conversation goes on meanwhile."""
    data = tmp_path / "data"
    shop = await seed(data, agents=0)
    with Receiver() as receiver:
        secret = await add_endpoint(
            lambda: SQLiteStore(data / "chatserver.db"), shop.site.id, receiver.url
        )
        tries: list[str] = []

        def answer(body: dict[str, Any]) -> int | tuple[str, float]:
            if body.get("entry", {}).get("body") != "slow-1":
                return 200
            tries.append(body["id"])
            return ("sleep", 1.5) if len(tries) == 1 else 500 if len(tries) == 2 else 200

        receiver.answer = answer
        server = Server(data, *FAST).start()  # --webhook-timeout 0.5
        try:
            slow = await Client.visitor(server, shop.key)
            other = await Client.visitor(server, shop.key)
            await say(slow, "slow-1", "s1")
            await say(slow, "slow-2", "s2")
            await say(other, "other-1", "o1")
            await say(other, "other-2", "o2")
            texts = {"slow-2", "other-2"}
            await until(
                lambda: texts <= {b.get("entry", {}).get("body") for b in receiver.bodies()}
            )
        finally:
            server.stop()
    assert len(tries) == 3 and len(set(tries)) == 1
    bodies = [r.body for r in receiver.requests if r.body["type"] == "message.created"]
    texts = [b["entry"]["body"] for b in bodies]
    assert texts.index("other-2") < len(texts) - 1  # the other conversation did not wait
    slow_order = [t for t in texts if t.startswith("slow")]
    assert slow_order == ["slow-1", "slow-1", "slow-1", "slow-2"]
    for r in receiver.requests:
        assert verify(secret, r.headers["Chatserver-Signature"], r.raw, time.time())


async def test_the_admin_pages_add_show_the_secret_once_list_failures_and_resend(
    tmp_path: Path,
) -> None:
    """Add an endpoint in the console (its secret shown once), watch it fail and
    be switched off with its errors listed and the admin told, switch it on,
    re-send the failed delivery and send a test; everything shown is escaped."""
    server = Server(tmp_path / "data", *FAST, "--webhook-disable-after", "2").start()
    try:
        shop, (admin_email, *_) = await shop_with_admin(server)
        with Receiver() as receiver:
            receiver.answer = lambda body: 500
            url = receiver.url + "?shop=<b>&x=1"
            async with console(server, admin_email) as admin:
                form = {"url": url, "events": ["message.created"], "allow_private": "1"}
                created = await admin.post("/console/admin/webhooks/new", form)
                assert created.status_code == 200, errors(created)
                secret = re.search(r'id="webhook-secret">(whsec_[0-9a-f]{64})<', created.text)
                assert secret is not None
                hook = re.search(r'href="/console/admin/webhooks/(wh_[^"/]+)"', created.text)
                assert hook is not None
                detail = f"/console/admin/webhooks/{hook.group(1)}"
                listing = await admin.get("/console/admin/webhooks")
                assert "?shop=&lt;b&gt;&amp;x=1" in listing.text and "<b>" not in listing.text
                assert secret.group(1) not in listing.text
                assert secret.group(1) not in (await admin.get(detail)).text

                visitor = await Client.visitor(server, shop.key)
                await say(visitor, "hello", "c1")
                await until(lambda: len(receiver.requests) >= 2)

                async def shown() -> str:
                    return (await admin.get(detail)).text

                deadline = time.monotonic() + 10
                while "Switched off" not in (page := await shown()):
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                assert "2 failed attempts in a row; last: HTTP 500" in page
                assert page.count("data-error") == 2
                home = await admin.get("/console/admin")
                assert 'role="alert"' in home.text and "was switched off" in home.text
                await until_text(admin, detail, 'data-state="failed"')  # given up: off
                failed = r'data-delivery="([^"]+)" data-state="failed"'
                delivery = re.search(failed, await shown())
                assert delivery is not None

                receiver.answer = lambda body: 200
                r = await admin.post(f"{detail}/enable")
                assert r.status_code == 303
                r = await admin.post(f"{detail}/resend", {"delivery": delivery.group(1)})
                assert r.status_code == 303
                assert flash(await admin.get(detail)) == "The delivery will be sent again."
                await until(lambda: len(receiver.delivered()) >= 1)
                got = receiver.delivered()[0]
                assert got["id"] == delivery.group(1) and got["entry"]["body"] == "hello"
                last = receiver.requests[-1]
                signed = last.headers["Chatserver-Signature"]
                assert verify(secret.group(1), signed, last.raw, time.time())

                r = await admin.post(f"{detail}/test")
                assert flash(await admin.get(detail)) == "Test delivery answered 2xx."
                assert receiver.bodies()[-1]["type"] == "ping"
                r = await admin.post(f"{detail}/delete")
                assert r.status_code == 303
                assert (await admin.get(detail)).status_code == 404
    finally:
        server.stop()


async def until_text(admin: Console, path: str, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in (await admin.get(path)).text:
        assert time.monotonic() < deadline, f"{text!r} never shown on {path}"
        await asyncio.sleep(0.05)

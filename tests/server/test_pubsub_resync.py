"""A broken Redis pub/sub subscription loses nothing a client waits for.

Real chatserver processes on a real redis-server; ``CLIENT KILL TYPE pubsub``
cuts every process's subscription connection, and a message is sent at once,
before the processes have subscribed again.  The broker publishes it into the
gap (at most once); the process must catch every followed conversation up
from the store after re-subscribing, so the message reaches the visitor and
the agent within a second, exactly once and in order (issue #15).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import websockets

from ..conftest import Client, Server, seed
from ..redis_server import RedisServer
from .test_console_admin import console

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

TRIALS = 50
LATE = 1.0  # seconds: an entry later than this at a client counts as late


@pytest.fixture
async def killer(redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis.url)
    yield client
    await client.aclose()


class Storm:
    """``CLIENT KILL TYPE pubsub`` over and over (every 10 ms) while the block runs:
    the processes lose and regain their subscriptions many times, so an event
    published meanwhile likely falls into a gap.  At most ``limit`` seconds."""

    def __init__(self, killer: aioredis.Redis, limit: float = 1.0) -> None:
        self.killer = killer
        self.limit = limit
        self.task: asyncio.Future[None] | None = None

    async def __aenter__(self) -> Storm:
        self.task = asyncio.ensure_future(self._run())
        await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        while time.monotonic() < deadline:
            await self.killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            await asyncio.sleep(0.01)


async def _arrived(client: Client, body: str, timeout: float) -> bool:
    try:
        await client.expect("msg", lambda f: f.get("body") == body, timeout=timeout)
    except AssertionError:
        return False
    return True


async def _traffic(agent: Client, conv: str, stop: asyncio.Event) -> None:
    """Light traffic in another conversation: a message every 100 ms."""
    i = 0
    while not stop.is_set():
        i += 1
        await agent.send({"t": "send", "conv": conv, "cid": f"bg{i}", "body": f"bg {i}"})
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["two processes", "one process"])
async def test_message_sent_while_pubsub_resubscribes_is_not_late(
    tmp_path: Path, redis: RedisServer, killer: aioredis.Redis, layout: str
) -> None:
    shop = await seed(tmp_path / "a", capacity=5, redis_url=redis.url)
    a = Server(tmp_path / "a", "--redis", redis.url).start()
    try:
        b = a if layout == "one process" else Server(tmp_path / "b", "--redis", redis.url).start()
        try:
            await _trials(shop, a, b, killer, layout)
        finally:
            if b is not a:
                b.stop()
    finally:
        a.stop()


async def _trials(shop: Any, a: Server, b: Server, killer: aioredis.Redis, layout: str) -> None:
    (email,) = shop.agents
    agent = await Client.agent(b, email)
    visitor = await Client.visitor(a, shop.key)
    conv = (await visitor.request({"t": "send", "cid": "0", "body": "hello"}))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f.get("follow"))
    await visitor.expect("msg", lambda f: f.get("body") == "hello")
    # A second chat the agent holds, for the light traffic.
    other = await Client.visitor(b, shop.key)
    conv2 = (await other.request({"t": "send", "cid": "0", "body": "other"}))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv2 and f.get("follow"))

    late = {"visitor": 0, "agent": 0}
    started = time.monotonic()
    for trial in range(TRIALS):
        busy = trial % 2 == 1  # odd trials under light traffic, even ones idle
        stop = asyncio.Event()
        background = asyncio.ensure_future(_traffic(agent, conv2, stop)) if busy else None
        if busy:
            await asyncio.sleep(0.15)
        await killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        body = f"trial {trial}"
        if trial % 4 < 2:
            await visitor.request({"t": "send", "cid": f"t{trial}", "body": body})
        else:
            await agent.request({"t": "send", "conv": conv, "cid": f"t{trial}", "body": body})
        sent = time.monotonic()
        for name, client in (("visitor", visitor), ("agent", agent)):
            remaining = max(0.0, sent + LATE - time.monotonic())
            if not await _arrived(client, body, remaining):
                late[name] += 1
        stop.set()
        if background is not None:
            await background
    elapsed = time.monotonic() - started
    print(f"\n{layout}: {TRIALS} trials in {elapsed:.1f} s, late > {LATE} s: {late}")

    # Whatever was late arrives in the end, each entry once and in order.
    for client in (visitor, agent):
        await _arrived(client, f"trial {TRIALS - 1}", 10.0)
        offsets = [f["offset"] for f in client.of("msg", conv)]
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), offsets
        bodies = client.texts(conv)
        assert [f"trial {i}" for i in range(TRIALS)] == [t for t in bodies if t.startswith("trial")]
    assert late == {"visitor": 0, "agent": 0}, late


async def test_chat_assigned_while_pubsub_resubscribes_reaches_the_agent(
    tmp_path: Path, redis: RedisServer, killer: aioredis.Redis
) -> None:
    """A missed ``follow`` on the agent's channel: the agent's process follows the
    chat the store says is theirs, and the site channel's ``conv`` comes again."""
    trials = 10
    shop = await seed(tmp_path / "a", capacity=trials, redis_url=redis.url)
    a = Server(tmp_path / "a", "--redis", redis.url).start()
    b = Server(tmp_path / "b", "--redis", redis.url).start()
    try:
        (email,) = shop.agents
        agent = await Client.agent(b, email)
        late = {"follow": 0, "msg": 0}
        for trial in range(trials):
            visitor = await Client.visitor(a, shop.key)
            async with Storm(killer):
                ack = await visitor.request({"t": "send", "cid": "1", "body": f"first {trial}"})
                await asyncio.sleep(0.1)  # the assignment happens after the ack
            conv = ack["conv"]
            sent = time.monotonic()
            try:
                await agent.expect(
                    "conv", lambda f, c=conv: f["conv"]["id"] == c and f.get("follow"), timeout=LATE
                )
            except AssertionError:
                late["follow"] += 1
            await visitor.request({"t": "send", "cid": "2", "body": f"second {trial}"})
            remaining = max(0.0, sent + 2 * LATE - time.monotonic())
            if not await _arrived(agent, f"second {trial}", remaining):
                late["msg"] += 1
        print(f"\nassignments: {trials} trials, late > {LATE} s: {late}")
        assert late == {"follow": 0, "msg": 0}, late
    finally:
        b.stop()
        a.stop()


async def test_sign_out_while_pubsub_resubscribes_closes_the_socket(
    tmp_path: Path, redis: RedisServer, killer: aioredis.Redis
) -> None:
    """A missed control event (sign out everywhere): the process re-checks its
    agents' sign-ins on re-subscribing instead of at the next periodic check (60 s)."""
    trials = 5
    shop = await seed(tmp_path / "a", redis_url=redis.url)
    (email,) = shop.agents
    a = Server(tmp_path / "a", "--redis", redis.url).start()
    b = Server(tmp_path / "b", "--redis", redis.url).start()
    try:
        late = 0
        for _ in range(trials):
            async with console(a, email) as on_a:
                socket = await Client.agent(b, email)
                async with Storm(killer):
                    r = await on_a.post("/console/logout", {"everywhere": "1"})
                    assert r.status_code == 303
                    await asyncio.sleep(0.05)
                try:
                    code, _ = await asyncio.wait_for(asyncio.shield(socket.closed), 2 * LATE)
                    assert code == 4106
                except TimeoutError:
                    late += 1
        print(f"\nsign-outs: {trials} trials, socket open > {2 * LATE} s: {late}")
        assert late == 0
    finally:
        b.stop()
        a.stop()


async def test_connections_made_while_pubsub_breaks_are_served(
    tmp_path: Path, redis: RedisServer, killer: aioredis.Redis
) -> None:
    """A ``hello`` subscribes its channels while the pub/sub connection is being
    killed and re-established: the subscription is retried, the client served."""
    shop = await seed(tmp_path / "a", redis_url=redis.url)
    (email,) = shop.agents
    a = Server(tmp_path / "a", "--redis", redis.url).start()
    try:
        clients = []
        failed = 0
        async with Storm(killer, limit=3.0):
            for i in range(10):
                try:
                    if i % 2:
                        clients.append(await Client.agent(a, email))
                    else:
                        clients.append(await Client.visitor(a, shop.key))
                except (AssertionError, OSError, websockets.ConnectionClosed):
                    failed += 1
        for client in clients:
            try:
                await client.request({"t": "ping"}, timeout=2.0)
            except (AssertionError, websockets.ConnectionClosed):
                failed += 1
        print(f"\nhellos during kills: 10, not served: {failed}")
        assert failed == 0
    finally:
        a.stop()

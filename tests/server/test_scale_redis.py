"""Several chatserver processes sharing one redis-server.

Real uvicorn processes on different ports, a real redis-server with AOF, real
WebSocket clients spread over the processes: no sticky sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import Client, Server, seed
from ..redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]


class Cluster:
    def __init__(self, tmp: Path, redis: RedisServer, n: int, grace: float) -> None:
        self.redis = redis
        self.procs = [Server(tmp / f"p{i}", "--redis", redis.url, grace=grace) for i in range(n)]

    def start(self) -> Cluster:
        for p in self.procs:
            p.start()
        return self

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


@pytest.fixture
async def cluster(tmp_path: Path, redis: RedisServer) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path, redis, 3, grace=1.0)
    yield c
    c.stop()


async def test_visitor_and_agent_on_different_processes(cluster: Cluster) -> None:
    shop = await seed(cluster.procs[0].data, redis_url=cluster.redis.url)
    cluster.start()
    a, b = cluster.procs[0], cluster.procs[1]
    (email,) = shop.agents
    agent = await Client.agent(b, email, codec="msgpack")
    visitor = await Client.visitor(a, shop.key)
    assert visitor.welcome["agents_online"] == 1
    online = await agent.request({"t": "visitors"})  # presence spans processes
    assert [v["id"] for v in online["visitors"]] == [visitor.welcome["visitor"]]
    ack = await visitor.request({"t": "send", "cid": "1", "body": "hello from A"})
    conv = ack["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    # History answers up to what this agent's stream has delivered; an entry
    # still on its way from process A arrives live after the reply instead.
    page = await agent.request({"t": "history", "conv": conv, "since": 0})
    if "hello from A" not in [m["body"] for m in page["messages"]]:
        await agent.expect("msg", lambda f: f["body"] == "hello from A")
    await visitor.send({"t": "typing", "draft": "typing on A"})
    preview = await agent.expect("preview")
    assert preview["text"] == "typing on A"
    await agent.request({"t": "send", "conv": conv, "cid": "r", "body": "hello from B"})
    await visitor.expect("msg", lambda f: f["body"] == "hello from B")
    await agent.send({"t": "typing", "conv": conv, "on": True})
    await visitor.expect("typing")
    # A second tab of the same visitor on the third process shares the conversation.
    tab = await Client.visitor(cluster.procs[2], shop.key, token=visitor.welcome["token"])
    assert tab.welcome["conv"] == conv
    await tab.request({"t": "send", "cid": "t2", "body": "from tab on C"})
    await agent.expect("msg", lambda f: f["body"] == "from tab on C")
    await visitor.expect("msg", lambda f: f["body"] == "from tab on C")


async def test_200_visitors_5_agents_capacity_and_fifo(cluster: Cluster) -> None:
    shop = await seed(cluster.procs[0].data, agents=5, capacity=3, redis_url=cluster.redis.url)
    cluster.start()
    agents = [
        await Client.agent(cluster.procs[i % 3], email) for i, email in enumerate(shop.agents)
    ]
    visitors = [await Client.visitor(cluster.procs[i % 3], shop.key) for i in range(200)]
    acks = await asyncio.gather(
        *(
            v.request({"t": "send", "cid": "1", "body": f"v{i}"}, timeout=20)
            for i, v in enumerate(visitors)
        )
    )
    convs = [a["conv"] for a in acks]
    assert len(set(convs)) == 200

    def held() -> dict[str, set[str]]:
        """Who holds what, from the newest ``conv`` frame each agent saw."""
        latest: dict[str, dict[str, Any]] = {}
        for a in agents:
            for f in a.of("conv"):
                latest[f["conv"]["id"]] = f["conv"]
        out: dict[str, set[str]] = {}
        for c in latest.values():
            if c["state"] == "active":
                for who in c["agents"]:
                    out.setdefault(who["id"], set()).add(c["id"])
        return out

    async def settled(count: int) -> dict[str, set[str]]:
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            holding = held()
            assert all(len(v) <= 3 for v in holding.values()), holding
            if sum(len(v) for v in holding.values()) == count:
                await asyncio.sleep(0.3)  # and stays so
                if held() == holding:
                    return holding
            assert asyncio.get_running_loop().time() < deadline, holding
            await asyncio.sleep(0.1)

    holding = await settled(15)
    assert sum(len(v) for v in holding.values()) == 15, holding
    assert all(len(v) <= 3 for v in holding.values()), holding

    def waiting() -> list[Client]:
        return [
            v
            for v in visitors
            if v.of("queue") and not any(f["conv"]["state"] == "active" for f in v.of("conv"))
        ]

    # Queue positions go out after the assignments settle; on a loaded
    # machine the last few can still be in flight here.
    deadline = asyncio.get_running_loop().time() + 15
    while len(queued := waiting()) < 185 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    assert len(queued) == 185
    # Every visitor is served or queued; the queue drains in FIFO order.
    first_served = {c for cs in holding.values() for c in cs}
    served_order: list[str] = []
    for _ in range(3):
        # Every agent closes every chat it holds; the next 15 in line get them.
        for a in agents:
            for conv in held().get(a.welcome["agent"]["id"], set()):
                await a.request({"t": "close", "conv": conv})
        await settled(15)
        now_held = {c for cs in held().values() for c in cs}
        assert not now_held & (first_served | set(served_order)), "a closed chat came back"
        served_order += sorted(now_held)
    # The queue drains in FIFO order: those served after the first 15 are the
    # earliest-queued of the rest (arrivals were concurrent: the order is the
    # conversations' queued time, not the order the test sent them).
    created = {}
    for a in agents:
        for f in a.of("conv"):
            created[f["conv"]["id"]] = f["conv"]["created_at"]
    waiting = sorted(set(convs) - first_served, key=lambda c: created[c])
    assert set(served_order) == set(waiting[: len(served_order)])
    assert len(served_order) == 45


async def test_kill_9_a_process_clients_move_and_recover(cluster: Cluster) -> None:
    shop = await seed(cluster.procs[0].data, agents=2, redis_url=cluster.redis.url)
    cluster.start()
    a, b, c = cluster.procs
    e0, e1 = list(shop.agents)
    doomed_agent = await Client.agent(a, e0)
    visitor = await Client.visitor(a, shop.key)
    conv = (await visitor.request({"t": "send", "cid": "1", "body": "hi"}))["conv"]
    await doomed_agent.expect(
        "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active"
    )
    colleague = await Client.agent(b, e1)
    await visitor.expect("msg", lambda f: f["kind"] == "event")
    last = max(f["offset"] for f in visitor.of("msg"))
    epoch = (await visitor.expect("conv"))["conv"]["epoch"]
    token = visitor.welcome["token"]

    a.kill()  # kill -9 the process holding both the visitor and the agent
    # The agent's presence expires after the TTL and the grace period; the chat
    # moves to the colleague on another process.
    moved = await colleague.expect(
        "conv",
        lambda f: (
            f["conv"]["id"] == conv
            and f["conv"]["state"] == "active"
            and [x["id"] for x in f["conv"]["agents"]] == [shop.agents[e1]]
        ),
        timeout=20,
    )
    assert moved
    for i in range(5):
        await colleague.request({"t": "send", "conv": conv, "cid": f"m{i}", "body": f"missed {i}"})
    # The visitor reconnects to another process and recovers exactly what it missed.
    back = await Client.visitor(c, shop.key, token=token)
    assert back.welcome["conv"] == conv
    rec = await back.request({"t": "history", "conv": conv, "since": last, "epoch": epoch})
    assert rec["complete"] is True
    texts = [m["body"] for m in rec["messages"] if m["kind"] == "text"]
    assert texts == [f"missed {i}" for i in range(5)]
    offsets = [m["offset"] for m in rec["messages"]]
    assert offsets == list(range(last + 1, last + 1 + len(offsets)))
    await colleague.request({"t": "send", "conv": conv, "cid": "live", "body": "live"})
    await back.expect("msg", lambda f: f["body"] == "live")
    assert all(f["offset"] > offsets[-1] for f in back.of("msg"))


async def test_redis_restart_loses_no_acknowledged_message(cluster: Cluster) -> None:
    shop = await seed(cluster.procs[0].data, redis_url=cluster.redis.url)
    cluster.start()
    (email,) = shop.agents
    agent = await Client.agent(cluster.procs[1], email)
    visitor = await Client.visitor(cluster.procs[0], shop.key)
    conv = (await visitor.request({"t": "send", "cid": "c0", "body": "m0"}))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    acked: list[str] = ["m0"]
    stop = asyncio.Event()

    async def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                reply = await agent.request(
                    {"t": "send", "conv": conv, "cid": f"a{i}", "body": f"a{i}"}, timeout=3
                )
            except AssertionError:
                continue
            if reply.get("t") == "ack":
                acked.append(f"a{i}")
            await asyncio.sleep(0.01)

    task = asyncio.ensure_future(writer())
    await asyncio.sleep(0.5)
    cluster.redis.kill()
    await asyncio.sleep(0.5)
    cluster.redis.start()
    await asyncio.sleep(1.5)
    stop.set()
    await task
    # The processes reconnected by themselves: a new message flows end to end.
    await agent.request({"t": "send", "conv": conv, "cid": "after", "body": "after restart"})
    await visitor.expect("msg", lambda f: f["body"] == "after restart", timeout=10)
    # Once the agent's own stream has it, history covers every earlier entry.
    await agent.expect("msg", lambda f: f["body"] == "after restart", timeout=10)
    stored: list[str] = []
    after = 0
    while True:
        page = await agent.request({"t": "history", "conv": conv, "since": after})
        if not page["messages"]:
            break
        stored += [m["body"] for m in page["messages"] if m["kind"] == "text"]
        after = page["messages"][-1]["offset"]
    missing = set(acked) - set(stored)
    assert len(acked) > 10 and not missing, sorted(missing)

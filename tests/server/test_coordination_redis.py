"""Redis for coordination only: hash tags, Cluster, Sentinel, rebuild after loss.

Real redis-servers throughout (tests/redis_server.py, tests/redis_topologies.py):
the key layout on a real 3-primary Cluster, settings refused with messages
that never show a password, and Redis flushed under running routers and
under two running chatserver processes whose record is elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from chatserver.backends import build
from chatserver.broker_redis import RedisBroker
from chatserver.config import Config
from chatserver.coordination import coordination_target
from chatserver.errors import ChatError, StoreError
from chatserver.presence import visitors_key
from chatserver.presence_redis import RedisPresence
from chatserver.redis_client import RedisTarget
from chatserver.routing_redis import RedisRouter
from chatserver.store.postgres import PostgresStore
from chatserver.types import Agent, AgentStatus, Conversation, ConvState

from ..conftest import Client, Server, seed, seed_store
from ..redis_server import RedisServer
from ..redis_topologies import ClusterNodes, SentinelGroup, redis_cluster  # noqa: F401

pytestmark = pytest.mark.anyio

SITE = "s_coord"
LUA = Path(__file__).parents[2] / "chatserver" / "lua" / "routing.lua"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def agent(n: int, capacity: int = 2) -> Agent:
    return Agent(f"a{n}", SITE, f"a{n}@x", f"A{n}", "-", capacity=capacity)


def conv(n: int, state: ConvState = ConvState.QUEUED, *agents: str) -> Conversation:
    return Conversation(f"c{n}", SITE, f"v{n}", "e", state, float(n), float(n), None, agents)


def test_routing_script_touches_only_its_declared_key() -> None:
    calls = re.findall(r"redis\.call\('(\w+)'(?:,\s*([^,)]+))?", LUA.read_text())
    assert calls, "no redis.call found: the pattern is stale"
    for command, first in calls:
        if command != "TIME":
            assert first.strip() == "KEYS[1]", (command, first)


async def test_cluster_keys_sit_under_hash_tags(redis_cluster: ClusterNodes) -> None:  # noqa: F811
    prefix = "tag:"
    router = RedisRouter(redis_cluster.target, prefix, ttl=5)
    presence = RedisPresence(redis_cluster.target, prefix, ttl=5)
    await router.start()
    await presence.start()
    try:
        await router.agent_connected(agent(1), AgentStatus.ONLINE)
        await router.submit(conv(1), None)
        assert await router.drain(SITE, 0.0) == [("c1", "a1")]
        await presence.add(visitors_key(SITE), "v1", {"n": 1})
        await presence.add(visitors_key(SITE), "v2", {"n": 2})
        assert set(await presence.members(visitors_key(SITE))) == {"v1", "v2"}
        keys: set[str] = set()
        for port in redis_cluster.ports:
            with redis.Redis(port=port, decode_responses=True) as node:
                keys.update(node.scan_iter(match=f"{prefix}*", count=1000))
    finally:
        await presence.close()
        await router.close()
    # A site's keys carry the site's tag (or the presence key's, which names the site).
    site_keys = {k for k in keys if f"{{{SITE}}}" in k or f"{{site:{SITE}:" in k}
    assert f"{prefix}{{{SITE}}}:routing" in site_keys
    assert f"{prefix}presence:{{{visitors_key(SITE)}}}" in site_keys
    # The rest are single-key indexes: any slot will do.
    index = re.compile(rf"^{prefix}(agentsite:a1|convsite:c1|routing:sites|coordination:epoch)$")
    assert all(index.match(k) for k in keys - site_keys), sorted(keys - site_keys)
    with redis.Redis(port=redis_cluster.ports[0], decode_responses=True) as node:
        slots = {
            node.execute_command("CLUSTER", "KEYSLOT", k) for k in site_keys if "presence" in k
        }
    assert len(slots) == 1  # MGET of a key's members' infos stays in one slot


def test_settings_are_refused_clearly_and_without_the_password() -> None:
    secret = "s3cr3t-pw"
    url = f"redis://:{secret}@127.0.0.1:6379/0"
    cases = [
        Config(redis_url=url, redis_cluster=True),  # the record on a Cluster
        Config(redis_url=url, redis_sentinels="127.0.0.1:26379", redis_master="m"),
        Config(coordination_url=url),  # SQLite record: nothing shared
        Config(redis_url=url, coordination_url=url, redis_sentinels="127.0.0.1:26379"),
        Config(redis_url=url, coordination_url=url, redis_sentinels="nohost", redis_master="m"),
        Config(redis_url=url, coordination_url=url.replace("/0", "/3"), redis_cluster=True),
    ]
    for config in cases:
        record = "redis" if config.redis_url else "embedded"
        with pytest.raises(ChatError) as err:
            coordination_target(config, record)
        assert secret not in str(err.value)
    pg = "postgresql://u:s3cr3t-pw@127.0.0.1/db"
    with pytest.raises(ChatError) as err:  # PostgreSQL alone is one process
        build(Config(database_url=pg, redis_cluster=True))
    assert secret not in str(err.value)
    ok = Config(database_url=pg, redis_url=url, redis_cluster=True)
    assert ok.backend == "postgres+redis"
    assert coordination_target(ok, "shared") == RedisTarget(url, cluster=True)
    assert Config(database_url=pg, coordination_url=url).backend == "postgres+redis"
    assert secret not in RedisTarget(url, cluster=True).describe()


def test_serve_reports_an_unreachable_coordination_redis_without_the_password(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    out = subprocess.run(
        [
            *(sys.executable, "-m", "chatserver.cli", "serve", "--data", str(tmp_path)),
            *("--port", "1", "--redis", redis_server.url),
            *("--redis-coordination", "redis://:pw-not-shown@127.0.0.1:1/0"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in out.stderr
    assert "pw-not-shown" not in out.stderr + out.stdout


async def test_an_unreachable_sentinel_fails_start_without_the_password() -> None:
    target = RedisTarget(
        "redis://:pw-not-shown@unused/0", sentinels=(("127.0.0.1", 1),), master="m"
    )
    router = RedisRouter(target)
    with pytest.raises(StoreError) as err:
        await router.start()
    assert "pw-not-shown" not in str(err.value) and "Sentinel 127.0.0.1:1" in str(err.value)
    await router.close()


async def test_routers_rebuild_after_redis_is_flushed(redis_server: RedisServer) -> None:
    """Two routers (processes), each with its agent; FLUSHALL; both notice and
    rebuild: agents, their status and their loads are back, the queue too."""
    record = [conv(1, ConvState.ACTIVE, "a1"), conv(2, ConvState.ACTIVE, "a2"), conv(3)]
    routers = [RedisRouter(redis_server.url, "rb:", grace=30, ttl=0.6) for _ in range(2)]
    for r in routers:

        async def restore(r: RedisRouter = r) -> None:  # what rebuild.py does from the store
            for c in record:
                await r.restore(c)

        r.watch_loss(restore)
        await r.start()
    try:
        await routers[0].agent_connected(agent(1, capacity=1), AgentStatus.ONLINE)
        await routers[1].agent_connected(agent(2, capacity=2), AgentStatus.AWAY)
        for c in record:
            await routers[0].restore(c)
        assert (await routers[0].load("a1"), await routers[0].load("a2")) == (1, 1)
        with redis.Redis(port=redis_server.port) as client:
            client.flushall()
        assert await routers[0].load("a1") == 0  # lost
        deadline = asyncio.get_running_loop().time() + 5
        while not all(r.rebuilds for r in routers):
            assert asyncio.get_running_loop().time() < deadline, [r.rebuilds for r in routers]
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the slower one's restore may still run
        assert (await routers[1].load("a1"), await routers[1].load("a2")) == (1, 1)
        assert await routers[1].queue(SITE) == ["c3"]
        assert await routers[0].available_agents(SITE) == 1  # a2 is still away
        assert await routers[0].drain(SITE, 0.0) == []  # a1 is full: capacity holds
    finally:
        for r in routers:
            await r.close()


async def test_a_failed_rebuild_is_tried_again(redis_server: RedisServer) -> None:
    router = RedisRouter(redis_server.url, "rt:", ttl=0.6)
    calls: list[int] = []

    async def rebuild() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise StoreError("the record store is unreachable for a moment")
        await router.restore(conv(1, ConvState.ACTIVE, "a1"))

    router.watch_loss(rebuild)
    await router.start()
    try:
        await router.agent_connected(agent(1), AgentStatus.ONLINE)
        with redis.Redis(port=redis_server.port) as client:
            client.flushall()
        deadline = asyncio.get_running_loop().time() + 5
        while await router.load("a1") != 1:
            assert asyncio.get_running_loop().time() < deadline, calls
            await asyncio.sleep(0.05)
        assert len(calls) == 2 and router.rebuilds == 2
    finally:
        await router.close()


@pytest.mark.usefixtures("close_clients")
@pytest.mark.parametrize("record_kind", ["postgres", "redis"])
async def test_flush_under_two_processes_loses_nothing_acknowledged(
    tmp_path: Path, record_kind: str, request: pytest.FixtureRequest
) -> None:
    """The record in PostgreSQL (``--database``, ``--redis`` for coordination)
    or on a Redis of its own (``--redis-coordination`` for the other), two
    chatserver processes; FLUSHALL the coordination Redis mid-chat: the chat
    goes on with every acknowledged message kept, and a new visitor is routed
    by the rebuilt state (the agent's load counts: capacity still holds)."""
    coord = RedisServer(tmp_path / "coord").start()
    record: RedisServer | None = None
    if record_kind == "postgres":
        database = request.getfixturevalue("postgres_url")
        args: tuple[str, ...] = ("--database", database, "--redis", coord.url)
    else:
        record = RedisServer(tmp_path / "record").start()
        args = ("--redis", record.url, "--redis-coordination", coord.url)
    procs = [Server(tmp_path / f"p{i}", *args) for i in range(2)]
    try:
        if record is None:
            seeding = PostgresStore(database)
            await seeding.start()
            try:
                shop = await seed_store(seeding, capacity=2)
            finally:
                await seeding.close()
        else:
            shop = await seed(procs[0].data, capacity=2, redis_url=record.url)
        for p in procs:
            p.start()
        (email,) = shop.agents
        agent_ws = await Client.agent(procs[1], email, codec="msgpack")
        first = await Client.visitor(procs[0], shop.key)
        acked = []
        reply = await first.request({"t": "send", "cid": "v0", "body": "before"})
        conv_id = reply["conv"]
        acked.append("before")
        await agent_ws.expect(
            "conv", lambda f: f["conv"]["id"] == conv_id and f["conv"]["state"] == "active"
        )
        with redis.Redis(port=coord.port) as client:
            client.flushall()
        # The chat goes on meanwhile (the record holds it; fan-out is pub/sub).
        for i in range(5):
            await first.request({"t": "send", "cid": f"v{i + 1}", "body": f"visitor {i}"})
            acked.append(f"visitor {i}")
            body = f"agent {i}"
            await agent_ws.request({"t": "send", "conv": conv_id, "cid": f"a{i}", "body": body})
            acked.append(body)
        await first.expect("msg", lambda f: f["body"] == "agent 4")
        await agent_ws.expect("msg", lambda f: f["body"] == "visitor 4")
        # Both processes notice the loss and rebuild.
        deadline = asyncio.get_running_loop().time() + 15
        while not all("routing state rebuilt" in p.log.read_text() for p in procs):
            assert asyncio.get_running_loop().time() < deadline, "no rebuild logged"
            await asyncio.sleep(0.1)
        # Presence is back: the visitor connected before the flush is listed again.
        online = await agent_ws.request({"t": "visitors"})
        assert first.welcome["visitor"] in [v["id"] for v in online["visitors"]]
        # A new visitor is routed to the agent (load 1 of 2)...
        second = await Client.visitor(procs[0], shop.key)
        conv2 = (await second.request({"t": "send", "cid": "s", "body": "new"}))["conv"]
        await agent_ws.expect(
            "conv", lambda f: f["conv"]["id"] == conv2 and f["conv"]["state"] == "active"
        )
        # ...and the next one waits: the rebuilt load counts the first chat.
        third = await Client.visitor(procs[1], shop.key)
        await third.request({"t": "send", "cid": "t", "body": "third"})
        queued = await third.expect("queue")
        assert queued["position"] == 1
        # Every acknowledged message is in the record, in order.
        page = await agent_ws.request({"t": "history", "conv": conv_id, "since": 0})
        texts = [m["body"] for m in page["messages"] if m["kind"] == "text"]
        assert texts == acked
    finally:
        for p in procs:
            p.stop()
        coord.stop()
        if record is not None:
            record.stop()


async def test_routing_and_fan_out_follow_a_sentinel_failover(tmp_path: Path) -> None:
    """A real primary, replica and Sentinel: after ``SENTINEL FAILOVER`` the
    router (through Sentinel) works on the new primary with the state it
    replicated, and events published afterwards reach the subscriber."""
    group = SentinelGroup(tmp_path, replica=True).start()
    router = RedisRouter(group.target, "fo:", ttl=5)
    pub, sub = RedisBroker(group.target, "fo:"), RedisBroker(group.target, "fo:")
    got: list[dict[str, Any]] = []
    try:
        await router.start()
        await sub.start(lambda _channel, event: got.append(event))
        await pub.start(lambda _channel, _event: None)
        await sub.subscribe("conv:1")
        await router.agent_connected(agent(1, capacity=2), AgentStatus.ONLINE)
        await router.submit(conv(1), None)
        assert await router.drain(SITE, 0.0) == [("c1", "a1")]
        with redis.Redis(port=group.primary.port) as primary:
            primary.execute_command("WAIT", 1, 2000)  # the replica has it all
        new_port = group.failover()
        assert new_port == group.replica.port  # type: ignore[union-attr]
        # Connections to the old primary are cut; a command may fail once meanwhile.
        load = None
        deadline = asyncio.get_running_loop().time() + 15
        while load is None:
            try:
                load = await router.load("a1")
            except StoreError:
                assert asyncio.get_running_loop().time() < deadline, "router never reconnected"
                await asyncio.sleep(0.2)
        assert load == 1  # the state came along with the replica
        await router.submit(conv(2), None)
        assert await router.drain(SITE, 0.0) == [("c2", "a1")]
        # Fan-out: publish until the subscriber's reconnected connection hears it.
        deadline = asyncio.get_running_loop().time() + 15
        while not got:
            assert asyncio.get_running_loop().time() < deadline, "no event after the failover"
            with contextlib.suppress(StoreError):
                await pub.publish("conv:1", {"n": 1})
            await asyncio.sleep(0.2)
        assert got[0] == {"n": 1}
    finally:
        await pub.close()
        await sub.close()
        await router.close()
        group.stop()


@pytest.mark.usefixtures("close_clients")
@pytest.mark.parametrize("kind", ["postgres+cluster", "redis+sentinel"])
async def test_two_processes_chat_over_cluster_or_sentinel_coordination(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """``chatserver serve`` with the record in PostgreSQL and ``--redis`` a
    real Cluster, or the record on a Redis of its own and coordination behind
    a real Sentinel: a visitor on one process and an agent on the other chat
    both ways, and presence spans the processes."""
    record: RedisServer | None = None
    group: SentinelGroup | None = None
    if kind == "postgres+cluster":
        database = request.getfixturevalue("postgres_url")
        nodes = request.getfixturevalue("redis_cluster")
        args: tuple[str, ...] = ("--database", database, "--redis", nodes.target.url)
        args += ("--redis-cluster",)
    else:
        record = RedisServer(tmp_path / "record").start()
        group = SentinelGroup(tmp_path / "sentinel").start()
        args = ("--redis", record.url, "--redis-coordination", "redis://unused/0")
        args += ("--redis-sentinel", f"127.0.0.1:{group.port}", "--redis-master", group.MASTER)
    procs = [Server(tmp_path / f"p{i}", *args) for i in range(2)]
    try:
        if record is None:
            seeding = PostgresStore(database)
            await seeding.start()
            try:
                shop = await seed_store(seeding)
            finally:
                await seeding.close()
        else:
            shop = await seed(procs[0].data, redis_url=record.url)
        for p in procs:
            p.start()
        (email,) = shop.agents
        agent_ws = await Client.agent(procs[1], email, codec="msgpack")
        visitor = await Client.visitor(procs[0], shop.key)
        assert visitor.welcome["agents_online"] == 1  # presence across processes
        conv_id = (await visitor.request({"t": "send", "cid": "1", "body": "hello"}))["conv"]
        await agent_ws.expect(
            "conv", lambda f: f["conv"]["id"] == conv_id and f["conv"]["state"] == "active"
        )
        await agent_ws.request({"t": "send", "conv": conv_id, "cid": "r", "body": "hi there"})
        await visitor.expect("msg", lambda f: f["body"] == "hi there")
        online = await agent_ws.request({"t": "visitors"})
        assert [v["id"] for v in online["visitors"]] == [visitor.welcome["visitor"]]
    finally:
        for p in procs:
            p.stop()
        if group is not None:
            group.stop()
        if record is not None:
            record.stop()

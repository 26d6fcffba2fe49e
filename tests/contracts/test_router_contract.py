"""The Router contract (``chatserver/routing.py``) for every backend.

The memory router is checked in one process; the Redis router also across
several router instances (processes) sharing one redis-server.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from chatserver.routing import Router
from chatserver.routing_memory import MemoryRouter
from chatserver.routing_redis import RedisRouter
from chatserver.types import Agent, AgentStatus, Conversation, ConvState

from ..redis_topologies import redis_cluster, redis_sentinel  # noqa: F401  (fixtures)

pytestmark = pytest.mark.anyio

SITE = "s_test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def agent(n: int, capacity: int = 2, depts: tuple[str, ...] = ()) -> Agent:
    return Agent(f"a{n}", SITE, f"a{n}@x", f"A{n}", "-", capacity=capacity, departments=depts)


def conv(n: int, queued_at: float | None = None, dept: str | None = None) -> Conversation:
    t = float(n) if queued_at is None else queued_at
    return Conversation(f"c{n:03d}", SITE, f"v{n}", "e", ConvState.QUEUED, t, t, dept)


def coordination_target(request: pytest.FixtureRequest) -> Any:
    """The Redis the seam under test uses: one server, a Cluster, or Sentinel's primary."""
    if request.param == "cluster":
        return request.getfixturevalue("redis_cluster").target
    if request.param == "sentinel":
        return request.getfixturevalue("redis_sentinel").target
    return request.getfixturevalue("redis_server").url


@pytest.fixture(params=["memory", "redis", "cluster", "sentinel"])
def make_router(request: pytest.FixtureRequest) -> Callable[[], Router]:
    if request.param == "memory":
        shared = MemoryRouter()
        return lambda: shared  # one process: every "instance" is the same router
    target = coordination_target(request)
    prefix = request.getfixturevalue("redis_prefix")
    # A ttl of seconds: these tests never wait for one to lapse (the silent-process
    # tests below make routers of their own), and a heartbeat delayed past a short
    # one on a loaded machine would drop an agent in the middle of a test.
    return lambda: RedisRouter(target, prefix, grace=0.3, ttl=10.0)


@pytest.fixture
async def routers(make_router: Callable[[], Router]) -> AsyncIterator[list[Router]]:
    made: list[Router] = []
    for _ in range(3):
        r = make_router()
        if r not in made:
            await r.start()
            made.append(r)
    yield [made[i % len(made)] for i in range(3)]
    for r in made:
        await r.close()


async def test_fifo_drain_respects_capacity(routers: list[Router]) -> None:
    r = routers[0]
    await r.agent_connected(agent(1, capacity=2), AgentStatus.ONLINE)
    for n in range(5):
        await r.submit(conv(n), None)
    assigned = await r.drain(SITE, 0.0)
    assert assigned == [("c000", "a1"), ("c001", "a1")]
    assert await r.queue(SITE) == ["c002", "c003", "c004"]
    assert await r.load("a1") == 2
    await r.remove("c000")
    assert await r.drain(SITE, 0.0) == [("c002", "a1")]


async def test_least_loaded_then_preferred(routers: list[Router]) -> None:
    r = routers[0]
    await r.agent_connected(agent(1, capacity=5), AgentStatus.ONLINE)
    await r.agent_connected(agent(2, capacity=5), AgentStatus.ONLINE)
    for n in range(4):
        await r.submit(conv(n), None)
    got = await r.drain(SITE, 0.0)
    loads = {a: sum(1 for _, x in got if x == a) for a in ("a1", "a2")}
    assert loads == {"a1": 2, "a2": 2}
    await r.submit(conv(9), "a1")
    assert await r.drain(SITE, 0.0) == [("c009", "a1")]


async def test_departments_exclusion_and_status(routers: list[Router]) -> None:
    r = routers[0]
    await r.agent_connected(agent(1, depts=("sales",)), AgentStatus.ONLINE)
    await r.agent_connected(agent(2, depts=("support",)), AgentStatus.AWAY)
    await r.submit(conv(1, dept="support"), None)
    await r.submit(conv(2, dept="sales"), None)
    # The support chat waits for an online support agent without blocking sales.
    assert await r.drain(SITE, 0.0) == [("c002", "a1")]
    assert await r.available_agents(SITE) == 1
    assert await r.available_agents(SITE, "sales") == 1
    assert await r.available_agents(SITE, "support") == 0  # a2 is away
    assert await r.available_agents(SITE, "billing") == 0
    await r.set_status("a2", AgentStatus.ONLINE)
    assert await r.available_agents(SITE, "support") == 1
    assert await r.drain(SITE, 0.0) == [("c001", "a2")]
    await r.detach("c001", "a2")  # a2 leaves it (Conversations.requeue): not given back
    assert await r.submit(conv(1, dept="support"), None, frozenset({"a2"})) is True
    assert await r.drain(SITE, 0.0) == []


async def test_attach_detach_and_gone(routers: list[Router]) -> None:
    r = routers[0]
    await r.agent_connected(agent(1, capacity=1), AgentStatus.ONLINE)
    await r.submit(conv(1), None)
    assert await r.attach("c001", "a1", 0.0) is True
    assert await r.queue(SITE) == []
    assert await r.attach("c002", "a1", 0.0) is False  # at capacity
    await r.agent_disconnected("a1")
    assert await r.available_agents(SITE) == 0
    assert await r.agent_gone("a1") == ["c001"]
    assert await r.load("a1") == 0


async def test_reconnect_within_grace_keeps_chats(routers: list[Router]) -> None:
    r = routers[0]
    await r.agent_connected(agent(1), AgentStatus.ONLINE)
    await r.attach("c001", "a1", 0.0)
    await r.agent_disconnected("a1")
    await r.agent_connected(agent(1), AgentStatus.ONLINE)
    assert await r.agent_gone("a1") == []
    assert await r.load("a1") == 1


async def test_chosen_status_is_the_agents_on_every_router(routers: list[Router]) -> None:
    """A status chosen through one process holds for the agent's connections on others."""
    a, b, c = routers
    assert await a.agent_connected(agent(1), None) is None  # nothing chosen yet: online
    assert await a.available_agents(SITE) == 1
    await a.set_status("a1", AgentStatus.AWAY)
    # Another tab on another process, without a status of its own: away.
    assert await b.agent_connected(agent(1), None) is AgentStatus.AWAY
    assert await c.available_agents(SITE) == 0
    await c.submit(conv(1), None)
    assert await c.drain(SITE, 0.0) == []
    # Both connections drop; back on a third process within the grace period.
    await a.agent_disconnected("a1")
    await b.agent_disconnected("a1")
    assert await c.agent_connected(agent(1), None) is AgentStatus.AWAY
    assert await a.drain(SITE, 0.0) == []
    # A connection that brings a status changes it for all; the router says what it was.
    assert await a.agent_connected(agent(1), AgentStatus.ONLINE) is AgentStatus.AWAY
    assert await b.available_agents(SITE) == 1
    assert await b.drain(SITE, 0.0) == [("c001", "a1")]


async def test_grace_over_forgets_the_chosen_status(routers: list[Router]) -> None:
    a, b, _ = routers
    await a.agent_connected(agent(1), AgentStatus.OFFLINE)
    await a.agent_disconnected("a1")
    assert await b.agent_gone("a1") == []
    assert await b.agent_connected(agent(1), None) is None  # online again
    assert await a.available_agents(SITE) == 1
    # An admin disabling the agent forgets it too: no chats, online if re-enabled.
    await b.set_status("a1", None)
    assert await a.available_agents(SITE) == 0
    assert await a.attach("c001", "a1", 0.0) is False
    assert await a.agent_connected(agent(1), None) is None
    assert await b.available_agents(SITE) == 1


async def test_concurrent_drains_never_exceed_capacity(routers: list[Router]) -> None:
    """Several processes submit and drain at once: capacity holds, FIFO holds."""
    for n in range(5):
        await routers[n % 3].agent_connected(agent(n, capacity=3), AgentStatus.ONLINE)

    async def arrive(n: int) -> list[tuple[str, str]]:
        r = routers[n % 3]
        await asyncio.sleep(random.random() * 0.01)
        await r.submit(conv(n, queued_at=float(n)), None)
        return await r.drain(SITE, 0.0)

    results = await asyncio.gather(*(arrive(n) for n in range(60)))
    assigned = [pair for batch in results for pair in batch]
    per_agent: dict[str, int] = {}
    for _, a in assigned:
        per_agent[a] = per_agent.get(a, 0) + 1
    assert len(assigned) == 15 and all(v == 3 for v in per_agent.values()), per_agent
    assert len({c for c, _ in assigned}) == 15
    waiting = await routers[1].queue(SITE)
    assert len(waiting) == 45 and waiting == sorted(waiting)
    assert set(waiting).isdisjoint(c for c, _ in assigned)


async def test_submit_leaves_a_chat_an_agent_took_to_them(routers: list[Router]) -> None:
    """The join window: a chat's ``queued`` record is out before its submit, and an agent
    joins it (``attach``, here on another process) first.  The late submit must not queue
    it, give it to anyone else or release the joiner's place."""
    a, b, c = routers
    await a.agent_connected(agent(1, capacity=1), AgentStatus.ONLINE)
    await a.agent_connected(agent(2, capacity=1), AgentStatus.ONLINE)
    assert await b.attach("c001", "a1", 0.0) is True
    assert await c.submit(conv(1), None) is False
    assert await a.queue(SITE) == []
    assert await b.drain(SITE, 0.0) == []
    assert (await c.load("a1"), await c.load("a2")) == (1, 0)
    # The joiner's capacity is spent: the next chats go to a2, then wait.
    assert await a.submit(conv(2), "a1") is True
    assert await a.submit(conv(3), None) is True
    assert await b.drain(SITE, 0.0) == [("c002", "a2")]
    assert await c.queue(SITE) == ["c003"]


async def test_submit_takes_the_chat_from_no_agent(routers: list[Router]) -> None:
    """Not even from one it excludes: the agents who left a chat are detached before
    it is submitted (``Conversations.requeue``), so a hold of theirs now is a join
    back from the ``queued`` record, and the chat stays theirs."""
    a, b, _ = routers
    await a.agent_connected(agent(1), AgentStatus.ONLINE)
    await a.agent_connected(agent(2), AgentStatus.ONLINE)
    assert await a.attach("c001", "a1", 0.0)
    assert await b.submit(conv(1), None, frozenset({"a1"})) is False
    assert (await a.load("a1"), await a.load("a2")) == (1, 0)
    assert await a.queue(SITE) == []
    await b.detach("c001", "a1")  # a1 leaves it for good
    assert await a.submit(conv(1), None, frozenset({"a1"})) is True
    assert await b.queue(SITE) == ["c001"]
    assert await b.drain(SITE, 0.0) == [("c001", "a2")]  # not a1, who left it


async def test_submit_again_keeps_the_place_and_takes_the_new_department(
    routers: list[Router],
) -> None:
    """A waiting chat submitted again (its department renamed) is no agent's: it stays
    queued in its ``queued_at`` place, for the new department."""
    a, b, _ = routers
    for n in (1, 2, 3):
        assert await a.submit(conv(n), None) is True
    assert await b.submit(conv(2, dept="sales"), None) is True
    assert await a.queue(SITE) == ["c001", "c002", "c003"]
    await a.agent_connected(agent(1, capacity=5, depts=("support",)), AgentStatus.ONLINE)
    assert await b.drain(SITE, 0.0) == [("c001", "a1"), ("c003", "a1")]
    assert await a.queue(SITE) == ["c002"]


async def test_a_department_change_keeps_the_place_the_exclusions_and_the_preference(
    routers: list[Router],
) -> None:
    """A waiting chat's department renamed (or removed: ``None``) changes only who may
    take it: it keeps its ``queued_at`` place, the agents it excludes (who passed it
    on) and its preferred agent.  A chat that waits in no queue is left alone."""
    a, b, c = routers
    await a.agent_connected(agent(1, capacity=5, depts=("help",)), AgentStatus.ONLINE)
    assert await a.submit(conv(1, dept="support"), None, frozenset({"a1"})) is True
    assert await a.submit(conv(2, dept="support"), None) is True
    assert await a.submit(conv(3, dept="support"), None) is True
    assert await b.drain(SITE, 0.0) == []  # nobody serves support
    for n in (3, 1, 2):  # the order of the changes is not the queue's
        assert await b.change_department(conv(n, dept="help")) is True
    assert await c.queue(SITE) == ["c001", "c002", "c003"]
    # c001 is still not a1's: a1 passed it on.
    assert await c.drain(SITE, 0.0) == [("c002", "a1"), ("c003", "a1")]
    assert await a.queue(SITE) == ["c001"]
    # Held or gone: nothing to change, nothing queued.
    assert await b.change_department(conv(2, dept="sales")) is False
    assert await b.change_department(conv(9, dept="sales")) is False
    assert await a.queue(SITE) == ["c001"]
    assert await a.load("a1") == 2
    # A removed department: anyone may take it, but still not an agent it excludes.
    await a.agent_connected(agent(2, capacity=5), AgentStatus.ONLINE)
    assert await c.change_department(conv(1)) is True
    assert await b.drain(SITE, 0.0) == [("c001", "a2")]
    # The preferred agent is kept: a1 (load 2) over the less loaded a2 (load 1).
    assert await a.submit(conv(5, dept="old"), "a1") is True
    assert await b.change_department(conv(5)) is True
    assert await c.drain(SITE, 0.0) == [("c005", "a1")]


async def test_joins_racing_submits_end_held_never_queued(routers: list[Router]) -> None:
    """Joins and submits of the same chats at once, on different processes: whichever
    runs first, each chat ends held by its joiner and out of the queue."""
    await routers[0].agent_connected(agent(1, capacity=40), AgentStatus.ONLINE)
    await routers[0].agent_connected(agent(2, capacity=40), AgentStatus.ONLINE)

    async def race(n: int) -> tuple[bool, bool]:
        async def join() -> bool:
            await asyncio.sleep(random.random() * 0.005)
            return await routers[n % 3].attach(f"c{n:03d}", f"a{1 + n % 2}", 0.0)

        async def submit() -> bool:
            await asyncio.sleep(random.random() * 0.005)
            return await routers[(n + 1) % 3].submit(conv(n), None)

        joined, queued = await asyncio.gather(join(), submit())
        return joined, queued

    results = await asyncio.gather(*(race(n) for n in range(40)))
    assert all(joined for joined, _ in results)
    assert await routers[2].queue(SITE) == []
    assert (await routers[1].load("a1"), await routers[1].load("a2")) == (20, 20)
    assert await routers[0].drain(SITE, 0.0) == []


async def test_silent_process_agents_expire_and_their_chats_are_returned(
    redis_server: Any, redis_prefix: str
) -> None:
    """A process that dies stops heartbeating; another process's sweep requeues."""
    returned: list[tuple[str, list[tuple[str, str]]]] = []

    async def on_expired(site: str, pairs: list[tuple[str, str]]) -> None:
        returned.append((site, pairs))

    dead = RedisRouter(redis_server.url, redis_prefix, grace=0.3, ttl=0.3)
    alive = RedisRouter(redis_server.url, redis_prefix, grace=0.3, ttl=0.3)
    await dead.start()
    await alive.start(on_expired)
    try:
        await dead.agent_connected(agent(1), AgentStatus.ONLINE)
        await dead.attach("c001", "a1", 0.0)
        assert await alive.available_agents(SITE) == 1
        # "kill -9": the heartbeat stops and nothing says goodbye.
        assert dead._task is not None
        dead._task.cancel()
        deadline = asyncio.get_running_loop().time() + 5
        while not returned:
            assert asyncio.get_running_loop().time() < deadline, "never expired"
            await asyncio.sleep(0.05)
        assert returned == [(SITE, [("a1", "c001")])]
        assert await alive.available_agents(SITE) == 0
        assert await alive.load("a1") == 0
    finally:
        dead._local.clear()  # a dead process does not clean up
        await dead.close()
        await alive.close()


async def test_a_late_heartbeat_does_not_bring_a_disconnected_agent_back(
    redis_server: Any, redis_prefix: str
) -> None:
    """The heartbeat's list of agents is taken before its script runs, on another
    pooled connection than a disconnect: a disconnect that overtakes it wins.
    (Once, a late heartbeat re-registered the node, so the grace's ``gone`` kept
    the agent's chats and status: the cluster flake of
    ``test_grace_over_forgets_the_chosen_status``.)"""
    a = RedisRouter(redis_server.url, redis_prefix, grace=60.0, ttl=30.0)
    b = RedisRouter(redis_server.url, redis_prefix, grace=60.0, ttl=30.0)
    await a.start()
    await b.start()
    try:
        await a.agent_connected(agent(1), AgentStatus.AWAY)
        assert await a.attach("c001", "a1", 0.0)
        await a.agent_disconnected("a1")
        # The heartbeat that listed a1 just before the disconnect runs now.
        assert await a._run(SITE, "heartbeat", a.node, a.ttl, "a1") == [1]  # nobody back
        assert await b.agent_gone("a1") == ["c001"]
        assert await b.agent_connected(agent(1), None) is None
    finally:
        await a.close()
        await b.close()


async def test_a_late_heartbeat_has_the_queue_routed(redis_server: Any, redis_prefix: str) -> None:
    """A process whose heartbeat came late (a stalled loop, a loaded machine): its
    agent counted as gone meanwhile, so a chat that came then was queued for
    nobody.  The late heartbeat makes the agent available again and must have the
    site routed (``on_expired`` with no chats): nothing else would, until the next
    chat, close or agent."""
    routed: list[tuple[str, list[tuple[str, str]]]] = []

    async def on_expired(site: str, pairs: list[tuple[str, str]]) -> None:
        routed.append((site, pairs))

    stalled = RedisRouter(redis_server.url, redis_prefix, grace=60.0, ttl=0.3)
    await stalled.start(on_expired)
    try:
        assert stalled._task is not None
        stalled._task.cancel()  # the heartbeat is late from here on
        await stalled.agent_connected(agent(1), AgentStatus.ONLINE)
        await asyncio.sleep(0.4)  # past the ttl: a1 is connected nowhere
        await stalled.submit(conv(1), None)
        assert await stalled.drain(SITE, 0.0) == []
        await stalled.sweep()  # the late heartbeat
        assert routed == [(SITE, [])]
        assert await stalled.drain(SITE, 0.0) == [("c001", "a1")]
        await stalled.sweep()  # on time: nothing to route
        assert routed == [(SITE, [])]
    finally:
        await stalled.close()


async def test_a_stall_past_the_grace_registers_the_agents_again(
    redis_server: Any, redis_prefix: str
) -> None:
    """A process silent past the grace: another process's sweep takes its agent's chats
    and status, as for a dead one.  But it was only stalled and its agent is still
    connected there: its next heartbeat registers the agent again, with the status it
    holds, and has the site routed.  (Once, the heartbeat only renewed entries that
    still existed, so that agent took no chat until it reconnected.)"""
    requeued: list[tuple[str, list[tuple[str, str]]]] = []
    routed: list[tuple[str, list[tuple[str, str]]]] = []

    async def on_requeue(site: str, pairs: list[tuple[str, str]]) -> None:
        requeued.append((site, pairs))

    async def on_routed(site: str, pairs: list[tuple[str, str]]) -> None:
        routed.append((site, pairs))

    stalled = RedisRouter(redis_server.url, redis_prefix, grace=0.3, ttl=0.3)
    other = RedisRouter(redis_server.url, redis_prefix, grace=0.3, ttl=0.3)
    await stalled.start(on_routed)
    await other.start(on_requeue)
    try:
        await stalled.agent_connected(agent(1), AgentStatus.AWAY)
        assert await stalled.attach("c001", "a1", 0.0)
        assert stalled._task is not None
        stalled._task.cancel()
        deadline = asyncio.get_running_loop().time() + 5
        while not requeued:  # the other process's sweep: ttl + grace
            assert asyncio.get_running_loop().time() < deadline, "never expired"
            await asyncio.sleep(0.05)
        assert requeued == [(SITE, [("a1", "c001")])]
        assert await other.load("a1") == 0
        await stalled.sweep()  # the stalled process's heartbeat, at last
        assert routed == [(SITE, [])]
        # Back with the status it chose (held by the process), not "online".
        assert await other.agent_connected(agent(1), None) is AgentStatus.AWAY
        await other.agent_disconnected("a1")
        await stalled.set_status("a1", AgentStatus.ONLINE)
        await other.submit(conv(2), None)
        assert await other.drain(SITE, 0.0) == [("c002", "a1")]
    finally:
        await stalled.close()
        await other.close()


async def test_a_disconnect_clears_a_dropped_registration(
    redis_server: Any, redis_prefix: str
) -> None:
    """An agent the grace sweep dropped, then disconnected from the stalled process:
    that process's late heartbeat (listing it from before the disconnect) does not
    bring it back."""
    stalled = RedisRouter(redis_server.url, redis_prefix, grace=0.3, ttl=0.3)
    other = RedisRouter(redis_server.url, redis_prefix, grace=0.3, ttl=0.3)
    await stalled.start()
    await other.start()
    try:
        await stalled.agent_connected(agent(1), AgentStatus.ONLINE)
        assert stalled._task is not None
        stalled._task.cancel()
        await asyncio.sleep(0.7)  # past ttl + grace
        await other.sweep()  # drops a1's entry (and forgets its status)
        await stalled.agent_disconnected("a1")
        assert await stalled._run(SITE, "heartbeat", stalled.node, stalled.ttl, "a1") == [1]
        assert await other.available_agents(SITE) == 0
    finally:
        await stalled.close()
        await other.close()


async def test_silent_process_agents_lose_their_chosen_status(
    redis_server: Any, redis_prefix: str
) -> None:
    """An agent without chats whose process died: the sweep forgets the status too."""
    dead = RedisRouter(redis_server.url, redis_prefix, grace=2.0, ttl=0.3)
    alive = RedisRouter(redis_server.url, redis_prefix, grace=2.0, ttl=0.3)
    await dead.start()
    await alive.start()
    try:
        await dead.agent_connected(agent(1), AgentStatus.AWAY)
        assert dead._task is not None
        dead._task.cancel()
        await asyncio.sleep(0.4)  # the entry expires; a reconnect now keeps the status
        assert await alive.agent_connected(agent(1), None) is AgentStatus.AWAY
        await alive.agent_disconnected("a1")
        # Past the grace period, no connection anywhere.
        await asyncio.sleep(2.0 + 0.5)
        await alive.sweep()
        assert await alive.agent_connected(agent(1), None) is None
    finally:
        dead._local.clear()  # a dead process does not clean up
        await dead.close()
        await alive.close()

"""An agent's chosen status (online, away, offline) is the agent's, not a connection's.

It holds for every tab of the agent, on every process sharing one Redis, and
survives a reconnect to another process until the grace period after the
agent's last connection ends.  Checked end to end: real server processes, a
real redis-server, real WebSocket and HTTP clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from ..conftest import Client, Server, Shop, console_login, seed
from ..redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]


@pytest.fixture
async def procs(tmp_path: Path, redis: RedisServer) -> AsyncIterator[list[Server]]:
    # A grace period long enough for a test's reconnect on a loaded machine.
    servers = [Server(tmp_path / f"p{i}", "--redis", redis.url, grace=8.0) for i in range(3)]
    yield servers
    for s in servers:
        s.stop()


async def listed_status(server: Server, email: str, agent_id: str) -> str:
    """The agent's status in the console's colleague list served by ``server``."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await console_login(http, email)).status_code == 303
        r = await http.get("/console/api/agents", headers={"Accept": "application/json"})
        assert r.status_code == 200
        return str(next(a["status"] for a in r.json() if a["id"] == agent_id))


async def eventually_listed(server: Server, email: str, agent_id: str, want: str) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    while (got := await listed_status(server, email, agent_id)) != want:
        assert asyncio.get_running_loop().time() < deadline, f"listed {got!r}, not {want!r}"
        await asyncio.sleep(0.1)


async def assert_not_assigned(visitor: Client, conv: str, seconds: float = 1.0) -> None:
    await asyncio.sleep(seconds)
    active = [f for f in visitor.of("conv") if f["conv"]["state"] == "active"]
    assert not active, f"{conv} went to an agent who is away"


async def test_away_on_one_process_holds_on_every_process(
    procs: list[Server], redis: RedisServer
) -> None:
    shop = await seed(procs[0].data, redis_url=redis.url)
    for p in procs:
        p.start()
    a, b, c = procs
    ((email, agent_id),) = shop.agents.items()
    tab1 = await Client.agent(a, email)
    assert tab1.welcome["status"] == "online"
    assert (await tab1.request({"t": "status", "status": "away"}))["t"] == "ok"

    # A second tab on another process starts away, like the first.
    tab2 = await Client.agent(b, email)
    assert tab2.welcome["status"] == "away"
    # The site's colleague list says away on every process.
    for p in procs:
        await eventually_listed(p, email, agent_id, "away")
    # Visitors on any process count no agent; a new chat is not routed to them.
    visitor = await Client.visitor(c, shop.key)
    assert visitor.welcome["agents_online"] == 0
    conv = (await visitor.request({"t": "send", "cid": "1", "body": "anyone?"}))["conv"]
    queued = await visitor.expect("queue", lambda f: f["conv"] == conv)
    assert queued["agents_online"] == 0
    await assert_not_assigned(visitor, conv)

    # Both tabs close; the agent comes back on the third process within the grace period.
    await tab1.close()
    await tab2.close()
    await asyncio.sleep(0.5)
    back = await Client.agent(c, email)
    assert back.welcome["status"] == "away"
    await assert_not_assigned(visitor, conv, 0.5)
    assert await listed_status(a, email, agent_id) == "away"

    # Online again on C: every process sees it, and the waiting chat is routed.
    mark = len(visitor.frames)
    assert (await back.request({"t": "status", "status": "online"}))["t"] == "ok"
    await back.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    await visitor.expect("agents", lambda f: f["online"] == 1, after=mark)
    for p in procs:
        await eventually_listed(p, email, agent_id, "online")
    late = await Client.visitor(a, shop.key)
    assert late.welcome["agents_online"] == 1
    tab3 = await Client.agent(a, email)
    assert tab3.welcome["status"] == "online"


async def test_a_tab_choosing_a_status_at_hello_tells_the_other_tabs(
    procs: list[Server], redis: RedisServer
) -> None:
    shop = await seed(procs[0].data, redis_url=redis.url)
    for p in procs[:2]:
        p.start()
    a, b = procs[:2]
    (email,) = shop.agents
    tab1 = await Client.agent(a, email, status="away")
    assert tab1.welcome["status"] == "away"
    tab2 = await Client.agent(b, email, status="online")
    assert tab2.welcome["status"] == "online"
    await tab1.expect("status", lambda f: f["status"] == "online")


async def test_visitors_get_an_agents_frame_only_when_the_count_changes(
    procs: list[Server], redis: RedisServer
) -> None:
    """Every process announces the count it computes; each visitor gets each change once."""
    shop = await seed(procs[0].data, agents=2, redis_url=redis.url)
    for p in procs:
        p.start()
    a, b, c = procs
    anna, ben = shop.agents
    visitors = [await Client.visitor(p, shop.key) for p in procs]
    assert [v.welcome["agents_online"] for v in visitors] == [0, 0, 0]

    def told(visitor: Client) -> list[int]:
        return [f["online"] for f in visitor.of("agents")]

    async def all_told(want: list[int]) -> None:
        """Each visitor got ``len(want)`` ``agents`` frames, and they say ``want``.

        One Redis channel delivers in publish order, so a repeat published
        before the last change would have arrived before it.
        """
        deadline = asyncio.get_running_loop().time() + 5
        while any(len(told(v)) < len(want) for v in visitors):
            assert asyncio.get_running_loop().time() < deadline, [told(v) for v in visitors]
            await asyncio.sleep(0.02)
        assert [told(v) for v in visitors] == [want] * 3

    async def settled(*clients: Client) -> None:
        """The hellos (and their announcements) are done: a later request is answered."""
        for client in clients:
            assert (await client.request({"t": "ping"}))["t"] == "pong"

    # Anna connects on A: one frame each, on every process.
    on_a = await Client.agent(a, anna)
    await settled(on_a)
    # Her tabs on B and C, and Ben away on C, change nothing visitors see,
    # though B and C announce the count too.
    on_b, on_c = await Client.agent(b, anna), await Client.agent(c, anna)
    ben_on_c = await Client.agent(c, ben, status="away")
    await settled(on_b, on_c, ben_on_c)
    # Away from B's tab: nobody online.
    assert (await on_b.request({"t": "status", "status": "away"}))["t"] == "ok"
    await all_told([1, 0])
    # Online again from A's tab; A announced 1 before, B announced 0 since.
    assert (await on_a.request({"t": "status", "status": "online"}))["t"] == "ok"
    await all_told([1, 0, 1])
    assert (await ben_on_c.request({"t": "status", "status": "online"}))["t"] == "ok"
    await all_told([1, 0, 1, 2])
    # A visitor arriving now is told the count in its welcome, and no frame repeats it.
    late = await Client.visitor(b, shop.key)
    assert late.welcome["agents_online"] == 2
    third = await Client.agent(a, ben)  # Ben's second tab: still 2
    await settled(third)
    assert (await on_c.request({"t": "status", "status": "away"}))["t"] == "ok"
    await all_told([1, 0, 1, 2, 1])
    await late.expect("agents", lambda f: f["online"] == 1)
    assert told(late) == [1]


# -- the embedded backend (one process) ----------------------------------------------


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "server", grace=8.0)
    yield srv
    srv.stop()


async def test_embedded_status_is_the_agents(embedded: Server) -> None:
    shop: Shop = await seed(embedded.data)
    embedded.start()
    ((email, agent_id),) = shop.agents.items()
    tab1 = await Client.agent(embedded, email)
    await tab1.request({"t": "status", "status": "away"})
    tab2 = await Client.agent(embedded, email)
    assert tab2.welcome["status"] == "away"
    assert await listed_status(embedded, email, agent_id) == "away"
    visitor = await Client.visitor(embedded, shop.key)
    assert visitor.welcome["agents_online"] == 0
    conv = (await visitor.request({"t": "send", "cid": "1", "body": "anyone?"}))["conv"]
    await visitor.expect("queue", lambda f: f["conv"] == conv)
    await assert_not_assigned(visitor, conv)
    await tab1.close()
    await tab2.close()
    back = await Client.agent(embedded, email)
    assert back.welcome["status"] == "away"
    # A tab choosing a status at hello changes it for the agent's other tabs.
    other = await Client.agent(embedded, email, status="online")
    assert other.welcome["status"] == "online"
    await back.expect("status", lambda f: f["status"] == "online")
    await back.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    assert await listed_status(embedded, email, agent_id) == "online"


async def test_embedded_status_resets_after_the_grace_period(tmp_path: Path) -> None:
    srv = Server(tmp_path / "server", grace=0.5)
    try:
        shop = await seed(srv.data)
        srv.start()
        (email,) = shop.agents
        tab = await Client.agent(srv, email)
        await tab.request({"t": "status", "status": "away"})
        await tab.close()
        await asyncio.sleep(1.5)  # well past the grace period
        again = await Client.agent(srv, email)
        assert again.welcome["status"] == "online"
    finally:
        srv.stop()

"""Routing policy (``chatserver.routing.pick``) and the in-process ``MemoryRouter``."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

import pytest

from chatserver.routing import AgentSlot, pick
from chatserver.routing_memory import MemoryRouter
from chatserver.types import (
    Agent,
    AgentStatus,
    Conversation,
    ConversationId,
    ConvState,
)

ONLINE = AgentStatus.ONLINE
AWAY = AgentStatus.AWAY
OFFLINE = AgentStatus.OFFLINE


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ---------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------


def agent(
    agent_id: str, *, site: str = "s1", capacity: int = 3, departments: Iterable[str] = ()
) -> Agent:
    return Agent(
        id=agent_id,
        site_id=site,
        email=f"{agent_id}@example.com",
        name=agent_id.upper(),
        password_hash="x",
        capacity=capacity,
        departments=tuple(departments),
    )


def conv(
    conv_id: str,
    queued_at: float,
    *,
    site: str = "s1",
    department: str | None = None,
    state: ConvState = ConvState.QUEUED,
    agents: tuple[str, ...] = (),
) -> Conversation:
    return Conversation(
        id=conv_id,
        site_id=site,
        visitor_id=f"v_{conv_id}",
        epoch="e",
        state=state,
        created_at=queued_at,
        queued_at=queued_at,
        department=department,
        agents=agents,
    )


def slot(
    agent_id: str,
    *,
    load: int = 0,
    capacity: int = 3,
    departments: Iterable[str] = (),
    status: AgentStatus = ONLINE,
    connected: bool = True,
    last_assigned: float = 0.0,
) -> AgentSlot:
    return AgentSlot(
        id=agent_id,
        site_id="s1",
        capacity=capacity,
        departments=frozenset(departments),
        status=status,
        connected=connected,
        convs={f"held_{agent_id}_{i}" for i in range(load)},
        last_assigned=last_assigned,
    )


def ids(slot_: AgentSlot | None) -> str | None:
    return None if slot_ is None else slot_.id


# ---------------------------------------------------------------------------
# pick()
# ---------------------------------------------------------------------------


def test_pick_nobody() -> None:
    assert pick([], None, None) is None
    assert pick([], "sales", "a1") is None


@pytest.mark.parametrize(
    "candidate",
    [
        pytest.param(slot("a", connected=False), id="disconnected"),
        pytest.param(slot("a", status=AWAY), id="away"),
        pytest.param(slot("a", status=OFFLINE), id="offline"),
        pytest.param(slot("a", load=3, capacity=3), id="full"),
        pytest.param(slot("a", load=5, capacity=3), id="over-capacity"),
        pytest.param(slot("a", capacity=0), id="zero-capacity"),
        pytest.param(slot("a", departments=["support"]), id="other-department"),
        pytest.param(slot("a", departments=[]), id="no-department"),
    ],
)
def test_pick_skips_ineligible(candidate: AgentSlot) -> None:
    assert pick([candidate], "sales", None) is None
    # not even when preferred
    assert pick([candidate], "sales", "a") is None


def test_pick_department_rules() -> None:
    generalist = slot("gen")
    sales = slot("sales", departments=["sales", "billing"])
    # a conversation without department goes to anybody
    assert ids(pick([generalist], None, None)) == "gen"
    assert ids(pick([sales], None, None)) == "sales"
    # with a department only to those who list it
    assert ids(pick([generalist, sales], "billing", None)) == "sales"
    assert pick([generalist], "billing", None) is None


def test_pick_least_loaded() -> None:
    slots = [slot("a", load=2), slot("b", load=0), slot("c", load=1)]
    assert ids(pick(slots, None, None)) == "b"


def test_pick_load_beats_idle_time() -> None:
    slots = [slot("busy", load=1, last_assigned=1.0), slot("fresh", load=0, last_assigned=99.0)]
    assert ids(pick(slots, None, None)) == "fresh"


def test_pick_tie_goes_to_longest_since_last_assignment() -> None:
    slots = [
        slot("recent", load=1, last_assigned=30.0),
        slot("longest", load=1, last_assigned=10.0),
        slot("middle", load=1, last_assigned=20.0),
    ]
    for order in itertools.permutations(slots):
        assert ids(pick(order, None, None)) == "longest"


def test_pick_preferred_first_even_when_busier() -> None:
    slots = [slot("idle", load=0), slot("pref", load=2, last_assigned=1e9)]
    for order in itertools.permutations(slots):
        assert ids(pick(order, None, "pref")) == "pref"


@pytest.mark.parametrize(
    "preferred",
    [
        pytest.param(slot("pref", load=3), id="full"),
        pytest.param(slot("pref", status=AWAY), id="away"),
        pytest.param(slot("pref", connected=False), id="disconnected"),
        pytest.param(slot("pref", departments=["support"]), id="wrong-department"),
    ],
)
def test_pick_falls_back_when_preferred_unavailable(preferred: AgentSlot) -> None:
    slots = [preferred, slot("b", departments=["sales"], load=1), slot("c", departments=["sales"])]
    assert ids(pick(slots, "sales", "pref")) == "c"


def test_pick_unknown_preferred_is_ignored() -> None:
    assert ids(pick([slot("a", load=1), slot("b")], None, "ghost")) == "b"


def test_pick_does_not_mutate() -> None:
    slots = [slot("a", load=1), slot("b")]
    before = [(s.id, set(s.convs), s.last_assigned) for s in slots]
    pick(slots, None, None)
    assert [(s.id, set(s.convs), s.last_assigned) for s in slots] == before


# ---------------------------------------------------------------------------
# MemoryRouter
# ---------------------------------------------------------------------------


@pytest.fixture
def router() -> MemoryRouter:
    return MemoryRouter()


async def online(router: MemoryRouter, *agents: Agent, status: AgentStatus = ONLINE) -> None:
    for a in agents:
        await router.agent_connected(a, status)


@pytest.mark.anyio
async def test_submit_queues_fifo_by_queued_at(router: MemoryRouter) -> None:
    await router.submit(conv("c3", 30.0), None)
    await router.submit(conv("c1", 10.0), None)
    await router.submit(conv("c2", 20.0), None)
    await router.submit(conv("c2b", 20.0), None)  # equal times keep submission order
    await router.submit(conv("c0", 0.5), None)
    assert await router.queue("s1") == ["c0", "c1", "c2", "c2b", "c3"]
    assert await router.queue("other") == []


@pytest.mark.anyio
async def test_resubmit_does_not_duplicate_and_uses_new_time(router: MemoryRouter) -> None:
    await router.submit(conv("c1", 10.0), None)
    await router.submit(conv("c2", 20.0), None)
    await router.submit(conv("c1", 30.0), None)
    assert await router.queue("s1") == ["c2", "c1"]


@pytest.mark.anyio
async def test_queues_are_per_site(router: MemoryRouter) -> None:
    await router.submit(conv("a", 1.0, site="s1"), None)
    await router.submit(conv("b", 2.0, site="s2"), None)
    assert await router.queue("s1") == ["a"]
    assert await router.queue("s2") == ["b"]


@pytest.mark.anyio
async def test_drain_without_agents_assigns_nothing(router: MemoryRouter) -> None:
    await router.submit(conv("c1", 1.0), None)
    assert await router.drain("s1", now=5.0) == []
    assert await router.drain("empty-site", now=5.0) == []
    assert await router.queue("s1") == ["c1"]


@pytest.mark.anyio
async def test_drain_in_fifo_order_up_to_capacity(router: MemoryRouter) -> None:
    await online(router, agent("a1", capacity=2))
    for i, t in enumerate([3.0, 1.0, 2.0]):
        await router.submit(conv(f"c{i}", t), None)
    assert await router.drain("s1", now=100.0) == [("c1", "a1"), ("c2", "a1")]
    assert await router.queue("s1") == ["c0"]
    assert await router.load("a1") == 2
    # full: draining again changes nothing
    assert await router.drain("s1", now=101.0) == []
    assert await router.load("a1") == 2


@pytest.mark.anyio
async def test_drain_spreads_to_least_loaded(router: MemoryRouter) -> None:
    await online(router, agent("a1", capacity=3), agent("a2", capacity=3))
    for i in range(4):
        await router.submit(conv(f"c{i}", float(i)), None)
    done = await router.drain("s1", now=10.0)
    assert [c for c, _ in done] == ["c0", "c1", "c2", "c3"]
    assert await router.load("a1") == 2
    assert await router.load("a2") == 2
    # each assignment went to the agent with fewer chats at that moment
    assert {done[0][1], done[1][1]} == {"a1", "a2"}
    assert {done[2][1], done[3][1]} == {"a1", "a2"}


@pytest.mark.anyio
async def test_drain_stamps_last_assigned(router: MemoryRouter) -> None:
    await online(router, agent("a1"), agent("a2"))
    await router.submit(conv("c1", 1.0), None)
    [(_, first)] = await router.drain("s1", now=50.0)
    await router.detach("c1", first)  # both idle again; the other one waited longer
    await router.submit(conv("c2", 2.0), None)
    [(_, second)] = await router.drain("s1", now=60.0)
    assert second != first


@pytest.mark.anyio
async def test_drain_preferred_agent(router: MemoryRouter) -> None:
    await online(router, agent("a1"), agent("a2"))
    await router.submit(conv("x", 0.0), None)
    await router.attach("x", "a2", now=0.0)  # a2 busier than a1
    await router.submit(conv("c1", 1.0), "a2")
    assert await router.drain("s1", now=5.0) == [("c1", "a2")]


@pytest.mark.anyio
async def test_unservable_department_does_not_block_the_queue(router: MemoryRouter) -> None:
    await online(router, agent("gen", capacity=5), agent("sales", departments=["sales"]))
    await router.submit(conv("legal1", 1.0, department="legal"), None)
    await router.submit(conv("plain", 2.0), None)
    await router.submit(conv("legal2", 3.0, department="legal"), None)
    await router.submit(conv("sale", 4.0, department="sales"), None)
    done = dict(await router.drain("s1", now=10.0))
    assert done == {"plain": "gen", "sale": "sales"}
    assert await router.queue("s1") == ["legal1", "legal2"]


@pytest.mark.anyio
async def test_full_department_agent_does_not_block_others(router: MemoryRouter) -> None:
    await online(router, agent("sales", capacity=1, departments=["sales"]), agent("gen"))
    for i in range(3):
        await router.submit(conv(f"s{i}", float(i), department="sales"), None)
    await router.submit(conv("p", 9.0), None)
    done = await router.drain("s1", now=10.0)
    assert done == [("s0", "sales"), ("p", "gen")]
    assert await router.queue("s1") == ["s1", "s2"]


@pytest.mark.anyio
@pytest.mark.parametrize("status", [AWAY, OFFLINE])
async def test_not_online_agents_get_nothing(router: MemoryRouter, status: AgentStatus) -> None:
    await online(router, agent("a1"), status=status)
    await router.submit(conv("c1", 1.0), "a1")
    assert await router.drain("s1", now=2.0) == []
    await router.set_status("a1", ONLINE)
    assert await router.drain("s1", now=3.0) == [("c1", "a1")]


@pytest.mark.anyio
async def test_disconnected_agents_get_nothing(router: MemoryRouter) -> None:
    await online(router, agent("a1"))
    await router.agent_disconnected("a1")
    await router.submit(conv("c1", 1.0), "a1")
    assert await router.drain("s1", now=2.0) == []
    assert await router.available_agents("s1") == 0
    await online(router, agent("a1"))
    assert await router.drain("s1", now=3.0) == [("c1", "a1")]


@pytest.mark.anyio
async def test_tracked_but_never_connected_agent_gets_nothing(router: MemoryRouter) -> None:
    await router.track_agent(agent("a1"))
    await router.set_status("a1", ONLINE)  # online status alone is not a connection
    await router.submit(conv("c1", 1.0), None)
    assert await router.drain("s1", now=2.0) == []


@pytest.mark.anyio
async def test_drain_is_per_site(router: MemoryRouter) -> None:
    await online(router, agent("a1", site="s1"), agent("b1", site="s2"))
    await router.submit(conv("x1", 1.0, site="s1"), "b1")
    await router.submit(conv("y1", 1.0, site="s2"), None)
    assert await router.drain("s1", now=2.0) == [("x1", "a1")]
    assert await router.queue("s2") == ["y1"]
    assert await router.drain("s2", now=2.0) == [("y1", "b1")]


@pytest.mark.anyio
async def test_submit_takes_a_conversation_from_no_load(router: MemoryRouter) -> None:
    """Held by agents (a join that overtook the submit), it stays theirs; detached
    from every one (they left), it waits again."""
    await online(router, agent("a1"), agent("a2"))
    assert await router.submit(conv("c1", 1.0), None)
    assert await router.attach("c1", "a1", now=1.0)
    assert await router.attach("c1", "a2", now=1.0)
    assert not await router.submit(conv("c1", 5.0), None, frozenset({"a1"}))
    assert (await router.load("a1"), await router.load("a2")) == (1, 1)
    assert await router.queue("s1") == []
    await router.detach("c1", "a1")
    await router.detach("c1", "a2")
    assert await router.submit(conv("c1", 5.0), None, frozenset({"a1", "a2"}))
    assert (await router.load("a1"), await router.load("a2")) == (0, 0)
    assert await router.queue("s1") == ["c1"]


@pytest.mark.anyio
async def test_update_agent_changes_capacity_and_departments(router: MemoryRouter) -> None:
    await online(router, agent("a1", capacity=1))
    for i in range(3):
        await router.submit(conv(f"c{i}", float(i), department="vip" if i else None), None)
    assert await router.drain("s1", now=1.0) == [("c0", "a1")]
    await router.update_agent(agent("a1", capacity=3, departments=["vip"]))
    assert await router.drain("s1", now=2.0) == [("c1", "a1"), ("c2", "a1")]
    # unknown agents are ignored
    await router.update_agent(agent("ghost"))
    assert await router.load("ghost") == 0


@pytest.mark.anyio
async def test_reconnect_updates_capacity(router: MemoryRouter) -> None:
    await online(router, agent("a1", capacity=1))
    await router.submit(conv("c1", 1.0), None)
    await router.submit(conv("c2", 2.0), None)
    assert len(await router.drain("s1", now=1.0)) == 1
    await router.agent_disconnected("a1")
    await online(router, agent("a1", capacity=2))
    assert await router.drain("s1", now=2.0) == [("c2", "a1")]


# -- attach / detach / remove -------------------------------------------------


@pytest.mark.anyio
async def test_attach_takes_conversation_out_of_queue(router: MemoryRouter) -> None:
    await online(router, agent("a1"))
    await router.submit(conv("c1", 1.0), None)
    await router.submit(conv("c2", 2.0), None)
    assert await router.attach("c2", "a1", now=3.0)
    assert await router.queue("s1") == ["c1"]
    assert await router.load("a1") == 1


@pytest.mark.anyio
async def test_attach_refusals(router: MemoryRouter) -> None:
    assert not await router.attach("c1", "ghost", now=1.0)
    await online(router, agent("full", capacity=1), agent("off"))
    await router.set_status("off", OFFLINE)
    await router.track_agent(agent("never"))
    await online(router, agent("gone"))
    await router.agent_disconnected("gone")
    await router.submit(conv("c0", 0.0), None)
    await router.submit(conv("c1", 1.0), None)
    assert await router.attach("c0", "full", now=1.0)
    for who in ("full", "off", "never", "gone"):
        assert not await router.attach("c1", who, now=1.0), who
    assert await router.queue("s1") == ["c1"]
    assert await router.load("full") == 1


@pytest.mark.anyio
async def test_attach_is_idempotent_even_at_capacity(router: MemoryRouter) -> None:
    await online(router, agent("a1", capacity=1))
    await router.submit(conv("c1", 1.0), None)
    assert await router.attach("c1", "a1", now=1.0)
    assert await router.attach("c1", "a1", now=2.0)
    assert await router.load("a1") == 1


@pytest.mark.anyio
async def test_away_agent_may_take_a_chat_by_hand(router: MemoryRouter) -> None:
    # "away" stops automatic routing only; joining (hub: 'join'/'transfer') still works
    await online(router, agent("a1"), status=AWAY)
    await router.submit(conv("c1", 1.0), None)
    assert await router.drain("s1", now=1.0) == []
    assert await router.attach("c1", "a1", now=2.0)
    assert await router.queue("s1") == []


@pytest.mark.anyio
async def test_several_agents_in_one_conversation(router: MemoryRouter) -> None:
    await online(router, agent("a1"), agent("a2"))
    await router.submit(conv("c1", 1.0), None)
    assert await router.drain("s1", now=1.0) == [("c1", "a1")]
    assert await router.attach("c1", "a2", now=2.0)
    assert (await router.load("a1"), await router.load("a2")) == (1, 1)
    await router.detach("c1", "a1")
    assert (await router.load("a1"), await router.load("a2")) == (0, 1)
    assert await router.queue("s1") == []


@pytest.mark.anyio
async def test_detach_unknown_is_harmless(router: MemoryRouter) -> None:
    await router.detach("c1", "ghost")
    await online(router, agent("a1"))
    await router.detach("nope", "a1")
    assert await router.load("a1") == 0


@pytest.mark.anyio
async def test_remove(router: MemoryRouter) -> None:
    await online(router, agent("a1"), agent("a2"))
    for i in range(3):
        await router.submit(conv(f"c{i}", float(i)), None)
    await router.attach("c0", "a1", now=1.0)
    await router.attach("c0", "a2", now=1.0)
    await router.remove("c0")  # held
    await router.remove("c1")  # queued
    await router.remove("zz")  # unknown
    assert await router.queue("s1") == ["c2"]
    assert (await router.load("a1"), await router.load("a2")) == (0, 0)


# -- disconnect / gone ----------------------------------------------------------


@pytest.mark.anyio
async def test_agent_disconnected_keeps_chats(router: MemoryRouter) -> None:
    await online(router, agent("a1"))
    for i in range(2):
        await router.submit(conv(f"c{i}", float(i)), None)
    await router.drain("s1", now=1.0)
    await router.agent_disconnected("a1")
    assert await router.load("a1") == 2
    await router.agent_disconnected("ghost")  # unknown: nothing happens


@pytest.mark.anyio
async def test_agent_gone_returns_chats_when_still_disconnected(router: MemoryRouter) -> None:
    await online(router, agent("a1"))
    for name in ("cb", "ca"):
        await router.submit(conv(name, 1.0), None)
    await router.drain("s1", now=1.0)
    await router.agent_disconnected("a1")
    assert await router.agent_gone("a1") == ["ca", "cb"]
    assert await router.load("a1") == 0
    assert await router.agent_gone("a1") == []
    assert await router.available_agents("s1") == 0


@pytest.mark.anyio
async def test_agent_gone_after_reconnect_keeps_everything(router: MemoryRouter) -> None:
    await online(router, agent("a1"))
    await router.submit(conv("c1", 1.0), None)
    await router.drain("s1", now=1.0)
    await router.agent_disconnected("a1")
    await online(router, agent("a1"))  # back within the grace period
    assert await router.agent_gone("a1") == []
    assert await router.load("a1") == 1
    assert await router.available_agents("s1") == 1


@pytest.mark.anyio
async def test_agent_gone_unknown(router: MemoryRouter) -> None:
    assert await router.agent_gone("ghost") == []


@pytest.mark.anyio
async def test_gone_agent_is_offline_until_it_says_otherwise(router: MemoryRouter) -> None:
    await online(router, agent("a1"))
    await router.agent_disconnected("a1")
    await router.agent_gone("a1")
    await router.submit(conv("c1", 1.0), None)
    assert await router.drain("s1", now=1.0) == []
    await online(router, agent("a1"))
    assert await router.drain("s1", now=2.0) == [("c1", "a1")]


# -- restore ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_restore_rebuilds_queue_and_loads(router: MemoryRouter) -> None:
    await router.track_agent(agent("a1", capacity=2))
    await router.track_agent(agent("a2", capacity=2))
    await router.restore(conv("q2", 20.0))
    await router.restore(conv("act", 1.0, state=ConvState.ACTIVE, agents=("a1", "ghost")))
    await router.restore(conv("q1", 10.0, department="sales"))
    await router.restore(conv("both", 2.0, state=ConvState.ACTIVE, agents=("a1", "a2")))
    await router.restore(conv("old", 0.0, state=ConvState.CLOSED, agents=("a2",)))
    assert await router.queue("s1") == ["q1", "q2"]
    assert await router.load("a1") == 2
    assert await router.load("a2") == 1
    assert await router.load("ghost") == 0
    # loads survive the agents connecting, and capacity is respected afterwards
    await online(router, agent("a1", capacity=2), agent("a2", capacity=2, departments=["sales"]))
    assert await router.load("a1") == 2
    assert await router.drain("s1", now=30.0) == [("q1", "a2")]
    assert await router.queue("s1") == ["q2"]


@pytest.mark.anyio
async def test_restore_untracked_agent_is_ignored(router: MemoryRouter) -> None:
    await router.restore(conv("act", 1.0, state=ConvState.ACTIVE, agents=("a1",)))
    await online(router, agent("a1"))
    assert await router.load("a1") == 0
    assert await router.queue("s1") == []


# -- available_agents -------------------------------------------------------------


@pytest.mark.anyio
async def test_available_agents(router: MemoryRouter) -> None:
    assert await router.available_agents("s1") == 0
    await online(router, agent("on1"), agent("on2", capacity=0))
    await online(router, agent("away"), status=AWAY)
    await online(router, agent("off"), status=OFFLINE)
    await online(router, agent("dc"))
    await router.agent_disconnected("dc")
    await router.track_agent(agent("tracked"))
    await online(router, agent("elsewhere", site="s2"))
    # "available" means connected and online, whatever the load or capacity
    assert await router.available_agents("s1") == 2
    assert await router.available_agents("s2") == 1
    await router.set_status("away", ONLINE)
    await router.set_status("on1", AWAY)
    await router.set_status("ghost", ONLINE)
    assert await router.available_agents("s1") == 2


# ---------------------------------------------------------------------------
# randomized property test
# ---------------------------------------------------------------------------

SITES = ("s1", "s2")
DEPARTMENTS = (None, "sales", "support")


class Model:
    """Drives a MemoryRouter like the hub does and checks its invariants."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.router = MemoryRouter()
        self.agents: dict[str, Agent] = {}
        self.connected: set[str] = set()
        self.convs: dict[ConversationId, Conversation] = {}  # live (not removed) conversations
        self.clock = 0.0
        self.serial = 0

    def tick(self) -> float:
        # coarse steps so that equal queued_at values happen too
        self.clock += self.rng.choice([0.0, 0.5, 1.0])
        return self.clock

    async def step(self) -> None:
        rng = self.rng
        op = rng.choices(
            [
                "connect",
                "disconnect",
                "gone",
                "status",
                "submit",
                "resubmit",
                "drain",
                "attach",
                "detach",
                "remove",
            ],
            weights=[3, 2, 2, 2, 6, 1, 4, 2, 1, 2],
        )[0]
        if op == "connect":
            agent_id = f"a{rng.randrange(8)}"
            known = self.agents.get(agent_id)
            if known is None:  # each agent keeps the capacity it was created with
                known = agent(
                    agent_id,
                    site=rng.choice(SITES),
                    capacity=rng.randrange(0, 4),
                    departments=rng.sample(["sales", "support"], rng.randrange(3)),
                )
                self.agents[agent_id] = known
            await self.router.agent_connected(
                known, rng.choice([ONLINE, ONLINE, AWAY, OFFLINE, None])
            )
            self.connected.add(agent_id)
        elif op == "disconnect" and self.connected:
            agent_id = rng.choice(sorted(self.connected))
            await self.router.agent_disconnected(agent_id)
            self.connected.discard(agent_id)
        elif op == "gone" and self.agents:
            agent_id = rng.choice(sorted(self.agents))
            returned = await self.router.agent_gone(agent_id)
            if agent_id in self.connected:
                assert returned == []
            for conv_id in returned:  # the hub requeues chats nobody else holds
                assert conv_id in self.convs
                await self.requeue(conv_id)
        elif op == "status" and self.agents:
            agent_id = rng.choice(sorted(self.agents))
            await self.router.set_status(agent_id, rng.choice([*AgentStatus, None]))
        elif op == "submit":
            self.serial += 1
            new = conv(
                f"c{self.serial}",
                self.tick() - rng.choice([0.0, 0.0, 0.5, 3.0]),  # may predate queued ones
                site=rng.choice(SITES),
                department=rng.choice(DEPARTMENTS),
            )
            self.convs[new.id] = new
            await self.router.submit(new, rng.choice([None, *sorted(self.agents)]))
        elif op == "resubmit" and self.convs:
            conv_id = rng.choice(sorted(self.convs))
            keep_place = rng.random() < 0.5
            self.convs[conv_id] = conv(
                conv_id,
                self.convs[conv_id].queued_at if keep_place else self.tick(),
                site=self.convs[conv_id].site_id,
                department=self.convs[conv_id].department,
            )
            await self.router.submit(self.convs[conv_id], None)
        elif op == "drain":
            await self.drain(rng.choice(SITES))
        elif op == "attach" and self.convs:
            conv_id = rng.choice(sorted(self.convs))
            # the hub only lets an agent join conversations of their own site
            site_agents = sorted(
                a.id for a in self.agents.values() if a.site_id == self.convs[conv_id].site_id
            )
            if not site_agents:
                return
            agent_id = rng.choice(site_agents)
            before = await self.router.load(agent_id)
            held = conv_id in self.holding(agent_id)
            ok = await self.router.attach(conv_id, agent_id, self.tick())
            if ok:
                assert conv_id in self.holding(agent_id)
                assert await self.router.load(agent_id) == before + (0 if held else 1)
            else:
                assert await self.router.load(agent_id) == before
        elif op == "detach" and self.convs and self.agents:
            conv_id = rng.choice(sorted(self.convs))
            agent_id = rng.choice(sorted(self.agents))
            if conv_id in self.holding(agent_id):
                await self.router.detach(conv_id, agent_id)
                await self.requeue(conv_id)
        elif op == "remove" and self.convs:
            conv_id = rng.choice(sorted(self.convs))
            del self.convs[conv_id]
            await self.router.remove(conv_id)

    def holding(self, agent_id: str) -> set[ConversationId]:
        return (
            set(self.router._agents[agent_id].convs) if agent_id in self.router._agents else set()
        )

    async def requeue(self, conv_id: ConversationId) -> None:
        """What ``Conversations.requeue`` does: back to the queue if nobody holds it."""
        if not any(conv_id in self.holding(a) for a in self.agents):
            old = self.convs[conv_id]
            self.convs[conv_id] = conv(
                conv_id, self.tick(), site=old.site_id, department=old.department
            )
            await self.router.submit(self.convs[conv_id], None)

    async def drain(self, site_id: str) -> None:
        before = {a: self.holding(a) for a in self.agents}
        queue_before = await self.router.queue(site_id)
        done = await self.router.drain(site_id, self.tick())
        assigned = [c for c, _ in done]
        # assignments follow the queue order, each conversation once
        assert assigned == [c for c in queue_before if c in set(assigned)]
        for conv_id, agent_id in done:
            a = self.agents[agent_id]
            c = self.convs[conv_id]
            assert a.site_id == site_id == c.site_id
            assert agent_id in self.connected
            assert c.department is None or c.department in a.departments
            assert conv_id not in before[agent_id]
        # nothing left in the queue that a free agent could take
        slots = [s for s in self.router._agents.values() if s.site_id == site_id]
        for conv_id in await self.router.queue(site_id):
            assert pick(slots, self.convs[conv_id].department, None) is None

    async def check(self) -> None:
        loads: dict[str, set[ConversationId]] = {a: self.holding(a) for a in self.agents}
        for agent_id, held in loads.items():
            assert len(held) <= self.agents[agent_id].capacity, agent_id
            assert await self.router.load(agent_id) == len(held)
            assert held <= set(self.convs), "an agent holds a removed conversation"
            for conv_id in held:
                assert self.convs[conv_id].site_id == self.agents[agent_id].site_id
        queued: list[ConversationId] = []
        for site_id in SITES:
            queue = await self.router.queue(site_id)
            times = [self.convs[c].queued_at for c in queue]
            assert times == sorted(times), f"queue of {site_id} out of order"
            assert all(self.convs[c].site_id == site_id for c in queue)
            queued += queue
        for conv_id in self.convs:
            holders = [a for a, held in loads.items() if conv_id in held]
            n_queued = queued.count(conv_id)
            if holders:
                assert n_queued == 0, f"{conv_id} both held by {holders} and queued"
            else:
                assert n_queued == 1, f"{conv_id} queued {n_queued} times, held by nobody"
        assert len(queued) == len(set(queued)) == len(set(queued) & set(self.convs))
        for site_id in SITES:
            expected = sum(
                1
                for a in self.agents.values()
                if a.site_id == site_id
                and a.id in self.connected
                and self.router._agents[a.id].status is ONLINE
            )
            assert await self.router.available_agents(site_id) == expected


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(12))
async def test_random_operations_keep_invariants(seed: int) -> None:
    model = Model(random.Random(seed))
    for _ in range(300):
        await model.step()
        await model.check()
    # the run exercised real routing, not an empty router
    assert model.serial > 20

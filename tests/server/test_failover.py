"""Failures on PostgreSQL + Redis + S3 with three chatserver processes (issue #17, step 6).

One rig for the module (``tests/failover_rig.py``): its own PostgreSQL with
``fsync=on``, its own redis-server with ``appendfsync always``, the session's
SeaweedFS, three chatserver processes on all three.  Each phase seeds a site
of its own, puts an agent on every process and widget-like writers on all of
them, injects one fault while they write, then checks and reports:
acknowledged messages lost, gaps in offsets and duplicate cids (all 0), and
the seconds until routing works again.  The figures go to stdout as one JSON
line per phase (``pytest -s``) and to ``CHATSERVER_FAILOVER_REPORT`` if set;
docs/scaling.md ("Failures and recovery") quotes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from chatserver.types import Role, SiteSettings

from ..conftest import Client, Server, Shop, agent_token, seed_store
from ..failover_rig import Rig, Writers, audit, holding, probes, report
from ..postgres_server import PostgresServer, pg_bin
from ..redis_server import RedisServer
from ..s3_server import S3Server
from .test_recordings_protocol import events

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

WRITERS = 6  # two per process
CAPACITY = 10  # an agent takes the dead colleague's chats and the probes' too


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Rig]:
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL initdb binary: run scripts/setup --system")
    tmp = tmp_path_factory.mktemp("failover")
    pg = PostgresServer(bindir)  # fsync on: a crash must not lose a commit
    redis = RedisServer(tmp / "redis")  # appendfsync always
    made = Rig(tmp, pg, redis, s3_server)
    try:
        pg.start()
        made.wait_pg()
        redis.start()
        for p in made.procs:
            p.start()
        yield made
    finally:
        made.stop()
        redis.stop()
        pg.stop()


@pytest.fixture
async def shop(rig: Rig) -> AsyncIterator[Shop]:
    """A site of the phase's own: three agents and an analyst; every process up."""
    rig.ensure_up()
    store = await rig.store()
    try:
        yield await seed_store(
            store, 4, CAPACITY, SiteSettings(recording=True), roles={3: Role.ANALYST}
        )
    finally:
        await store.close()


async def agents_on_every_process(rig: Rig, shop: Shop) -> list[Client]:
    emails = [e for e in shop.agents if not e.startswith("agent3-")]
    return [await Client.agent(rig.procs[i], e) for i, e in enumerate(emails)]


async def all_assigned(
    agents: list[Client], convs: list[str], timeout: float = 30, rig: Rig | None = None
) -> None:
    """Every chat is some agent's (30 s: CI runs this beside browser tests on 2 cores;
    on failure the processes' warnings say why)."""
    deadline = time.monotonic() + timeout
    while {c for held in holding(agents).values() for c in held} < set(convs):
        if time.monotonic() >= deadline:
            logs = []
            for i, p in enumerate(rig.procs if rig else []):
                lines = p.log.read_text(errors="replace").splitlines()
                logs += [f"p{i}: {x}" for x in lines if "WARNING" in x or "ERROR" in x][-10:]
            raise AssertionError(
                f"{holding(agents)} of {convs}; not held: {last_seen(agents, convs)}; logs: {logs}"
            )
        await asyncio.sleep(0.05)


def last_seen(agents: list[Client], convs: list[str]) -> dict[str, list[list[str]]]:
    """The chats no agent holds, with the ``state@offset`` of each ``conv`` frame each
    agent got for it, in order (``[]``: none came), to tell "never routed" (queued
    only) from "a stale record came last" (``queued@1`` after ``active@2``) and from
    "frame missed"."""
    held = {c for chats in holding(agents).values() for c in chats}
    return {
        c: [
            [
                f"{f['conv']['state']}@{f['conv']['offset']}"
                for f in a.of("conv")
                if f["conv"]["id"] == c
            ]
            for a in agents
        ]
        for c in convs
        if c not in held
    }


async def test_kill_9_one_process(rig: Rig, shop: Shop) -> None:
    agents = await agents_on_every_process(rig, shop)
    writers = Writers(rig, shop.key, WRITERS)
    await writers.start()
    await all_assigned(agents, writers.convs(), rig=rig)
    doomed = agents[0].welcome["agent"]["id"]
    its_chats = holding(agents[:1]).get(doomed, set())
    assert its_chats, holding(agents)  # the kill takes chats with it
    live = {a.welcome["agent"]["id"] for a in agents[1:]}

    t0 = time.monotonic()
    rig.procs[0].kill()  # its visitors and its agent lose their sockets; no shutdown runs

    async def moved() -> float:
        deadline = t0 + 30
        while True:
            now_held = holding(agents[1:])
            if its_chats <= {c for who in live for c in now_held.get(who, set())}:
                return round(time.monotonic() - t0, 2)
            assert time.monotonic() < deadline, now_held
            await asyncio.sleep(0.05)

    routed, chats_moved = await asyncio.gather(probes(rig, shop.key, live, t0), moved())
    await asyncio.sleep(0.5)
    await writers.stop()
    found = await audit(rig, writers.all)
    report(
        "kill -9 one of three processes",
        {
            **writers.figures(),
            **found,
            "writes_resumed_s": writers.resumed(t0),
            "new_visitors_routed_s": routed,
            "dead_agents_chats": len(its_chats),
            "chats_moved_s": chats_moved,
        },
    )
    assert (found["lost"], found["gaps"], found["duplicate_cids"]) == (0, 0, 0), found
    assert writers.figures()["reconnects"] >= 2  # the killed process's visitors moved


async def test_postgres_crash_restart(rig: Rig, shop: Shop) -> None:
    agents = await agents_on_every_process(rig, shop)
    writers = Writers(rig, shop.key, WRITERS)
    await writers.start()
    await all_assigned(agents, writers.convs(), rig=rig)
    live = {a.welcome["agent"]["id"] for a in agents}

    t0 = time.monotonic()
    restart = asyncio.ensure_future(asyncio.to_thread(rig.pg.crash_restart))
    await asyncio.sleep(0.05)  # the probe starts while the record is down
    routed = await probes(rig, shop.key, live, t0)
    down = await restart
    up = t0 + down
    await asyncio.sleep(0.5)
    await writers.stop()
    found = await audit(rig, writers.all)
    report(
        "PostgreSQL crash (pg_ctl stop -m immediate) and restart",
        {
            **writers.figures(),
            **found,
            "postgres_down_s": round(down, 2),
            "writes_resumed_after_restart_s": writers.resumed(up),
            "new_visitors_routed_s": routed,
        },
    )
    assert (found["lost"], found["gaps"], found["duplicate_cids"]) == (0, 0, 0), found
    assert all(rig.alive(i) for i in range(3))  # the processes rode it out
    await reaches_its_agent(writers, agents, "after the PostgreSQL restart")


async def reaches_its_agent(writers: Writers, agents: list[Client], body: str) -> None:
    """Each writer's next message reaches the agent who holds its chat (fan-out works)."""
    for w in writers.all:
        assert w.client is not None and w.conv is not None
        ack = await w.client.request({"t": "send", "cid": f"{w.name}-{body}", "body": body}, 10)
        assert ack["t"] == "ack", ack
        held = holding(agents)
        holder = next(a for a in agents if w.conv in held.get(a.welcome["agent"]["id"], ()))
        await holder.expect("msg", lambda f, c=w.conv: f["conv"] == c and f["body"] == body, 10)


async def redis_phase(rig: Rig, shop: Shop, phase: str, fault: Callable[[], float]) -> None:
    """Writers and an agent per process; ``fault`` (in a thread) loses Redis's data."""
    agents = await agents_on_every_process(rig, shop)
    writers = Writers(rig, shop.key, WRITERS)
    await writers.start()
    await all_assigned(agents, writers.convs(), rig=rig)
    live = {a.welcome["agent"]["id"] for a in agents}
    before = [rebuilds(p) for p in rig.procs]
    t0 = time.monotonic()
    down = await asyncio.to_thread(fault)
    routed = await probes(rig, shop.key, live, t0)
    # every process noticed the loss and rebuilt routing from the record (within 20 s:
    # one took just over 10 s on a machine loaded by parallel browser tests)
    for _ in range(400):
        rebuilt = sum(rebuilds(p) > n for p, n in zip(rig.procs, before, strict=True))
        if rebuilt == len(rig.procs):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    await writers.stop()
    found = await audit(rig, writers.all)
    report(
        phase,
        {
            **writers.figures(),
            **found,
            "redis_down_s": round(down, 2),
            "writes_resumed_s": writers.resumed(t0 + down),
            "new_visitors_routed_s": routed,
            "processes_rebuilt": rebuilt,
        },
    )
    assert (found["lost"], found["gaps"], found["duplicate_cids"]) == (0, 0, 0), found
    assert all(rig.alive(i) for i in range(3))
    assert rebuilt == len(rig.procs)
    # the chats held before the loss are still theirs, and messages reach them
    assert {c for held in holding(agents).values() for c in held} >= set(writers.convs())
    await reaches_its_agent(writers, agents, f"after {phase}")


def rebuilds(server: Server) -> int:
    """How many times the process logged a rebuild of routing (chatserver/rebuild.py)."""
    return server.log.read_text(errors="replace").count("routing state rebuilt from the record")


async def test_redis_flushall(rig: Rig, shop: Shop) -> None:
    def flush() -> float:
        with redis.Redis(port=rig.redis.port) as client:
            client.flushall()
        return 0.0

    await redis_phase(rig, shop, "Redis FLUSHALL", flush)


async def test_redis_restarts_empty(rig: Rig, shop: Shop) -> None:
    def replace() -> float:
        began = time.monotonic()
        rig.redis.kill()
        shutil.rmtree(rig.redis.dir)  # its AOF too: a new, empty Redis on the same address
        rig.redis.start()
        return time.monotonic() - began

    await redis_phase(rig, shop, "Redis kill -9, restarted empty", replace)


async def test_a_recording_spans_a_kill(rig: Rig, shop: Shop) -> None:
    a, b, c = rig.procs
    session = f"rec_fail_{secrets.token_hex(6)}"
    visitor = await Client.visitor(a, shop.key)
    sent: list[list[dict[str, object]]] = []
    for seq in range(5):
        batch = events(20, starts(seq)) if seq == 0 else events(10, starts(seq), snapshot=False)
        reply = await visitor.request({"t": "rec", "session": session, "seq": seq, "events": batch})
        assert reply["t"] == "recorded" and reply["duplicate"] is False, reply
        sent.append(batch)
    # seq 5 is stored and answered, but its answer is lost with the socket (the
    # widget sends it again); seq 6 is on its way to A when A is killed -9.
    fifth = events(10, starts(5), snapshot=False)
    reply = await visitor.request({"t": "rec", "session": session, "seq": 5, "events": fifth})
    assert reply["t"] == "recorded", reply
    sixth = events(10, starts(6), snapshot=False)
    sent += [fifth, sixth]
    await visitor.send({"t": "rec", "session": session, "seq": 6, "events": sixth, "id": 6})
    a.kill()
    # The widget reconnects to B with its token and sends the batches it holds unanswered.
    back = await Client.visitor(b, shop.key, token=visitor.welcome["token"], codec="msgpack")
    resent = await back.request({"t": "rec", "session": session, "seq": 5, "events": fifth})
    assert resent["t"] == "recorded" and resent["duplicate"] is True, resent
    again = await back.request({"t": "rec", "session": session, "seq": 6, "events": sixth})
    assert again["t"] == "recorded", again
    for seq in range(7, 10):
        batch = events(10, starts(seq), snapshot=False)
        reply = await back.request({"t": "rec", "session": session, "seq": seq, "events": batch})
        assert reply["t"] == "recorded" and reply["duplicate"] is False, reply
        sent.append(batch)
    # The replay, read through the third process, page by page
    analyst = next(e for e in shop.agents if e.startswith("agent3-"))
    token = await agent_token(c, analyst)
    replayed: list[dict[str, object]] = []
    pages = 0
    async with httpx.AsyncClient(
        base_url=f"{c.url}/console/api/recordings",
        headers={"Authorization": f"Bearer {token}"},
    ) as api:
        after: int | None = None
        for _ in range(100):
            params = {} if after is None else {"after_seq": after}
            got = (await api.get(f"/{session}/events", params=params)).json()
            replayed += got["events"]
            pages += 1
            after = got["last_seq"]
            if not got["more"]:
                break
    expected = [e for batch in sent for e in batch]
    keys = [(e["timestamp"], str(e["data"])) for e in replayed]
    report(
        "recording across a kill -9",
        {
            "batches": len(sent),
            "events_sent": len(expected),
            "events_replayed": len(replayed),
            "repeated": len(keys) - len(set(keys)),
            "missing": sum(1 for e in expected if e not in replayed),
            "in_flight_batch_stored_before_kill": again["duplicate"],
            "replay_pages": pages,
        },
    )
    assert replayed == expected  # every event once, in order
    assert after == 9


def starts(seq: int) -> float:
    """The first timestamp of batch ``seq``."""
    return 1_700_000_000_000.0 + seq * 1000


async def test_no_secret_in_any_log(rig: Rig) -> None:
    for p in rig.procs:
        with contextlib.suppress(FileNotFoundError):
            text = Path(p.log).read_text()
            assert rig.pg.password not in text
            assert rig.s3["secret_key"] not in text

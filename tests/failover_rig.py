"""The failure tests' rig: real servers, widget-like writers, the audit (issue #17, step 6).

``Rig`` holds a PostgreSQL of its own with ``fsync=on`` (the record), a
redis-server of its own with ``appendfsync always`` (coordination and
fan-out), a prefix in the session's SeaweedFS bucket (blobs, recordings as
chunks) and three chatserver processes on all three.  ``Writer`` is a visitor
that sends numbered messages, each with its own ``cid``, and retries the same
``cid`` after an error, a lost reply or a closed socket (then on the next
process, with its token), as the widget does.  ``audit`` reads what the
record holds for every writer's conversation and counts acknowledged
messages lost, gaps in offsets and duplicate cids.  ``probe_routing`` times
how long until a new visitor gets an agent that is still alive.  ``report``
prints one JSON line per phase and appends it to the file named by
``CHATSERVER_FAILOVER_REPORT``.  Used by ``tests/server/test_failover.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from chatserver.store.postgres import PostgresStore

from .conftest import Client, Server
from .postgres_server import PostgresServer
from .redis_server import RedisServer
from .s3_server import S3Server

# What a client sees of a process that is down or restarting: a refused or
# cut connection, a handshake refused, no reply in time (AssertionError from
# ``Client.expect``/``request``).
CONNECT_ERRORS = (AssertionError, OSError, websockets.WebSocketException, TimeoutError)


class Rig:
    """PostgreSQL + Redis + S3 and three chatserver processes (see the module docstring)."""

    def __init__(self, tmp: Path, pg: PostgresServer, redis: RedisServer, s3: S3Server) -> None:
        self.pg = pg
        self.redis = redis
        self.s3 = s3.settings(f"failover-{time.monotonic_ns()}")
        self.url = pg.url()
        args = [
            *("--database", self.url, "--redis", redis.url),
            *("--blobs", self.s3["url"], "--s3-endpoint", self.s3["endpoint"]),
            *("--s3-region", self.s3["region"], "--s3-access-key", self.s3["access_key"]),
            *("--log-level", "info"),
        ]
        secret = {"CHATSERVER_S3_SECRET_KEY": self.s3["secret_key"]}
        self.procs = [Server(tmp / f"p{i}", *args, grace=1.0, env=secret) for i in range(3)]

    def alive(self, i: int) -> bool:
        proc = self.procs[i].proc
        return proc is not None and proc.poll() is None

    def ensure_up(self) -> None:
        """Start every process that is not running (after an earlier phase killed one)."""
        for i, p in enumerate(self.procs):
            if not self.alive(i):
                p.start()

    def stop(self) -> None:
        for p in self.procs:
            p.stop()

    def wait_pg(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.pg.psql("SELECT 1")
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    async def store(self) -> PostgresStore:
        s = PostgresStore(self.url)
        await s.start()
        return s


@dataclass
class Writer:
    """A widget-like visitor: numbered sends, each cid retried until acknowledged."""

    rig: Rig
    key: str
    name: str
    where: int  # index of the process it is connected to
    client: Client | None = None
    token: str | None = None
    conv: str | None = None
    acked: dict[str, int] = field(default_factory=dict)  # cid -> offset of its ack
    acked_at: list[float] = field(default_factory=list)  # monotonic time of each ack
    retries: int = 0
    duplicate_acks: int = 0  # a resent cid the record already had: acked with its offset
    moves: int = 0  # reconnections (to the next process)

    async def connect(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for attempt in range(1000):
            i = (self.where + attempt) % len(self.rig.procs)
            if self.rig.alive(i):
                try:
                    self.client = await Client.visitor(self.rig.procs[i], self.key, self.token)
                except CONNECT_ERRORS:
                    pass
                else:
                    self.token = self.client.welcome["token"]
                    self.where = i
                    return
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} could not reconnect in {timeout} s")

    async def send(self, n: int, timeout: float = 30.0) -> None:
        cid = f"{self.name}-{n}"
        deadline = time.monotonic() + timeout
        cut = False  # the socket failed under a send (before the reader saw it close)
        while time.monotonic() < deadline:
            if self.client is None or self.client.closed.done() or cut:
                if self.client is not None:
                    self.moves += 1
                    self.where += 1  # as a widget behind a load balancer: another process
                await self.connect()
                cut = False
            assert self.client is not None
            try:
                reply = await self.client.request({"t": "send", "cid": cid, "body": cid}, 3.0)
            except websockets.ConnectionClosed:
                self.retries += 1
                cut = True
                continue
            except AssertionError:  # no reply: the socket closed or the server is stuck
                self.retries += 1
                continue
            if reply["t"] == "ack":
                self.acked[cid] = reply["offset"]
                self.duplicate_acks += bool(reply["duplicate"])
                self.acked_at.append(time.monotonic())
                self.conv = reply["conv"]
                return
            self.retries += 1  # an error (the record unreachable a moment): same cid again
            await asyncio.sleep(0.1)
        raise AssertionError(f"{cid} not acknowledged in {timeout} s")

    async def run(self, stop: asyncio.Event) -> None:
        for n in range(1, 100_000):
            if stop.is_set():
                return
            await self.send(n)
            await asyncio.sleep(0.02)


class Writers:
    """Several writers running until ``stop``."""

    def __init__(self, rig: Rig, key: str, count: int) -> None:
        self.all = [Writer(rig, key, f"w{i}", i % len(rig.procs)) for i in range(count)]
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, first: int = 3) -> None:
        """Connect every writer, have each acknowledged ``first`` times, keep them writing."""
        for w in self.all:
            await w.connect()
        self.tasks = [asyncio.ensure_future(w.run(self.stopping)) for w in self.all]
        deadline = time.monotonic() + 20
        while min(len(w.acked) for w in self.all) < first:
            assert time.monotonic() < deadline, [len(w.acked) for w in self.all]
            assert not any(t.done() for t in self.tasks), [t.exception() for t in self.tasks]
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 40)

    def convs(self) -> list[str]:
        return [w.conv for w in self.all if w.conv]

    def resumed(self, after: float) -> float:
        """Seconds from ``after`` until every writer had an acknowledgement again."""
        firsts = [min((t for t in w.acked_at if t > after), default=float("inf")) for w in self.all]
        return round(max(firsts) - after, 2)

    def figures(self) -> dict[str, int]:
        return {
            "writers": len(self.all),
            "acked": sum(len(w.acked) for w in self.all),
            "retries": sum(w.retries for w in self.all),
            "duplicate_acks": sum(w.duplicate_acks for w in self.all),
            "reconnects": sum(w.moves for w in self.all),
        }


async def audit(rig: Rig, writers: Iterable[Writer]) -> dict[str, int]:
    """What the record holds against what was acknowledged, over every writer's conversation."""
    store = await rig.store()
    lost = gaps = duplicates = entries = 0
    try:
        for w in writers:
            assert w.conv is not None
            rows = []
            after = 0
            for _ in range(1000):  # pages of 500
                page = await store.entries(w.conv, after=after, limit=500)
                if not page:
                    break
                rows += page
                after = page[-1].offset
            entries += len(rows)
            offsets = [e.offset for e in rows]
            gaps += len(set(range(1, max(offsets, default=0) + 1)) - set(offsets))
            gaps += len(offsets) - len(set(offsets))  # an offset twice is as bad
            cids = Counter(e.cid for e in rows if e.cid)
            duplicates += sum(c - 1 for c in cids.values())
            stored = {e.cid: e.offset for e in rows if e.cid}
            # lost: not there, or not at the offset its ack announced
            lost += sum(1 for cid, off in w.acked.items() if stored.get(cid) != off)
    finally:
        await store.close()
    return {"entries": entries, "lost": lost, "gaps": gaps, "duplicate_cids": duplicates}


async def probe_routing(
    rig: Rig, key: str, live_agents: set[str], since: float, start: int = 0, timeout: float = 30.0
) -> float:
    """Seconds from ``since`` until a new visitor's chat is active with a live agent.

    New visitors are tried on the live processes in turn until one is
    acknowledged; then its chat must reach a live agent (a chat first given
    to a dead agent counts only once it has moved)."""
    deadline = since + timeout
    for attempt in range(1000):
        i = (start + attempt) % len(rig.procs)
        if not rig.alive(i):
            continue
        with contextlib.suppress(*CONNECT_ERRORS):
            v = await Client.visitor(rig.procs[i], key)
            ack = await v.request({"t": "send", "cid": "probe", "body": "anyone there?"}, 3.0)
            if ack["t"] == "ack":

                def served(f: dict[str, Any]) -> bool:
                    ids = {a["id"] for a in f["conv"]["agents"]}
                    return f["conv"]["state"] == "active" and bool(ids) and ids <= live_agents

                left = max(deadline - time.monotonic(), 0.1)
                await v.expect("conv", served, timeout=left)
                return round(time.monotonic() - since, 2)
        assert time.monotonic() < deadline, "no new visitor was routed to a live agent"
        await asyncio.sleep(0.1)
    raise AssertionError("routing probe gave up")


async def probes(rig: Rig, key: str, live_agents: set[str], since: float) -> list[float]:
    """Three new visitors at once, starting on different processes: their ``probe_routing``."""
    return list(
        await asyncio.gather(*(probe_routing(rig, key, live_agents, since, i) for i in range(3)))
    )


def holding(agents: Iterable[Client]) -> dict[str, set[str]]:
    """Agent id -> the chats it holds, from the newest ``conv`` frame any agent saw."""
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


def report(phase: str, figures: dict[str, Any]) -> None:
    """One JSON line on stdout and, if ``CHATSERVER_FAILOVER_REPORT`` names a file, there."""
    line = json.dumps({"phase": phase, **figures})
    print(line)
    path = os.environ.get("CHATSERVER_FAILOVER_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(line + "\n")

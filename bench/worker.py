"""One load-generator process.

The coordinator (``bench.runner``) starts one or more workers with
``multiprocessing`` (spawn), pins each to a generator core, and drives them
through a ``Pipe`` with small command dicts:

``{"op": "setup"}``
    connect this worker's agents and visitors, open one conversation per
    visitor, wait until each has its agents (fan-out: the extra agents
    ``join``).  Replies with timings.
``{"op": "idle", "n": N}``
    connect visitors (``hello`` only) until this worker holds ``N``.
``{"op": "run", "t0": T}``
    start every open-loop stream at ``T`` (a ``time.monotonic()`` value,
    shared by all processes), run the storm or stall events of the spec,
    stop sending at ``T + warmup + measure``, drain, reply with the
    ``Recorder`` export and the worker's CPU use.
``{"op": "verify"}``
    fetch every conversation's full history and compare with the copy.
``{"op": "stop"}``
    drop every connection and exit.

All participants of one conversation live in the same worker, so a worker
can tell by itself when everything it sent has arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import resource
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from .chat import Agent, Context, Participant, Visitor
from .links import Link, MsgpackLink, SocketIOLink


def raise_nofile() -> int:
    """Raise the open-file limit to the hard limit (10k connections need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def link_factory(target: dict[str, Any]) -> Callable[..., Any]:
    url, wire = target["url"], target["wire"]
    if wire == "socketio":

        async def sio(url: str = url, **kw: Any) -> Link:
            return await SocketIOLink.connect(url, **kw)

        return sio
    sub = target.get("subprotocol")

    async def mp(url: str = url, **kw: Any) -> Link:
        return await MsgpackLink.connect(url, sub, **kw)

    return mp


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Worker:
    def __init__(self, conn: Connection, spec: dict[str, Any]) -> None:
        self.conn = conn
        self.spec = spec
        self.ctx = Context(link_factory(spec["target"]))
        self.rec = self.ctx.rec
        self.visitors: list[Visitor] = []
        self.agents: list[Agent] = []
        self.groups: list[tuple[list[Agent], list[Visitor], int]] = []
        self.idle: list[Visitor] = []
        self.stall_agent: Agent | None = None
        random.seed(spec.get("seed", 0) * 1000 + spec.get("index", 0))
        for g in spec.get("groups", []):
            agents = [
                Agent(self.ctx, a["tag"], g["site"], a.get("token"), a["capacity"])
                for a in g["agents"]
            ]
            visitors = [Visitor(self.ctx, tag, g["site"]) for tag in g["visitors"]]
            self.groups.append((agents, visitors, g.get("fanout", 1)))
            self.agents += agents
            self.visitors += visitors
        # Several server processes (bench.backing): visitors and agents take them in
        # turn by their number in the group, so about half of the chats cross processes.
        urls = spec["target"].get("urls") or []
        if len(urls) > 1:
            for p in self.everyone:
                p.url = urls[int(p.tag.rsplit(".", 1)[-1]) % len(urls)]
        stall = spec.get("stall")
        if stall:
            for a in self.agents:
                if a.tag == stall["agent"]:
                    self.stall_agent = a
                    a.rcvbuf = stall.get("rcvbuf", 4096)

    @property
    def everyone(self) -> list[Participant]:
        return [*self.agents, *self.visitors]

    # -- commands ----------------------------------------------------------

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, self.conn.recv)
            op = cmd["op"]
            # No cyclic GC while measuring: a full collection over this many
            # live objects stalls the loop for tens of milliseconds, which
            # would show up as latency.  Collect between commands instead.
            gc.collect()
            gc.freeze()
            gc.disable()
            try:
                if op == "stop":
                    self.drop_all()
                    await asyncio.sleep(0.2)
                    self.conn.send({"ok": True})
                    return
                handler = getattr(self, f"op_{op}")
                reply = await handler(cmd)
                reply.setdefault("ok", True)
            except Exception as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self.conn.send(reply)

    async def _connect_all(self, people: list[Participant], concurrency: int) -> int:
        sem = asyncio.Semaphore(concurrency)
        failures = 0

        async def one(p: Participant) -> None:
            nonlocal failures
            async with sem:
                for attempt in range(5):
                    try:
                        await p.connect()
                        return
                    except Exception:
                        failures += 1
                        await asyncio.sleep(0.2 * (attempt + 1))
                raise ConnectionError(f"{p.tag} could not connect")

        await asyncio.gather(*(one(p) for p in people))
        return failures

    async def op_setup(self, cmd: dict[str, Any]) -> dict[str, Any]:
        t = time.monotonic()
        conc = self.spec.get("concurrency", 100)
        fails = await self._connect_all(list(self.agents), conc)
        t_agents = time.monotonic() - t
        fails += await self._connect_all(list(self.visitors), conc)
        t_visitors = time.monotonic() - t - t_agents
        for v in self.visitors:
            v.open()
        # A burst of opens may meet `101 unavailable` (a backend slower than its
        # timeout: Redis alone on a loaded machine); the widget tries again, so
        # does the setup (not measured), at most 3 times, for visitors whose open
        # made no conversation.  The count is in the result (`open_retries`).
        reopened = 0
        # a server opens a few hundred conversations a second on a busy 2-core machine:
        # 10,000 (the `many` scenario) take far longer than 1,000
        wait = max(20.0, len(self.visitors) / 100)
        try:
            for attempt in range(4):
                try:
                    await until(
                        lambda: all(v.conv is not None and v.conv.agents for v in self.visitors),
                        3 * wait if attempt == 3 else wait,
                        "every conversation to get an agent",
                    )
                    break
                except TimeoutError:
                    again = [v for v in self.visitors if v.conv is None]
                    if attempt == 3 or not again or not self.rec.errors.get("101"):
                        raise
                    for v in again:
                        v.open()
                    reopened += len(again)
        except TimeoutError:
            alone = [v for v in self.visitors if v.conv is None or not v.conv.agents]
            nothing = sum(1 for v in alone if v.conv is None)
            raise TimeoutError(
                f"timed out waiting for every conversation to get an agent: {len(alone)} of "
                f"{len(self.visitors)} visitors without one ({nothing} without a conversation); "
                f"errors {dict(self.rec.errors)}"
            ) from None
        # Fan-out groups: every agent of the group is in every conversation of
        # the group; routing gave each conversation one, the others join.
        for agents, visitors, fanout in self.groups:
            if fanout <= 1:
                continue
            for v in visitors:
                conv = v.conv
                assert conv is not None
                for a in agents:
                    if a.id not in conv.agents:
                        a.send({"t": "join", "id": a.next_rid(), "conv": conv.id})
        await until(
            lambda: all(
                v.conv is not None and len(v.conv.agents) >= f
                for _, vs, f in self.groups
                for v in vs
            ),
            60,
            "every conversation to get all its agents",
        )
        expect = sum(len(vs) * f for _, vs, f in self.groups)
        await until(
            lambda: sum(len(a.mine) for a in self.agents) >= expect,
            60,
            "agents to see their conversations",
        )
        # Let the setup traffic (conv frames, events) settle before measuring.
        await asyncio.sleep(0.3)
        return {
            "connect_agents_s": t_agents,
            "connect_visitors_s": t_visitors,
            "ready_s": time.monotonic() - t,
            "connect_retries": fails,
            "open_retries": reopened,
            "errors": dict(self.rec.errors),
        }

    async def op_idle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Connect idle visitors (hello only) until this worker holds ``cmd['n']``."""
        t = time.monotonic()
        site = self.spec["idle_site"]
        new = [
            Visitor(self.ctx, f"i{self.spec['index']}.{i}", site)
            for i in range(len(self.idle), cmd["n"])
        ]
        fails = await self._connect_all(list(new), self.spec.get("concurrency", 100))
        self.idle += new
        return {
            "connected": sum(1 for v in self.idle if v.link and v.link.open),
            "connect_s": time.monotonic() - t,
            "connect_retries": fails,
        }

    async def op_run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        spec = {**self.spec, **cmd.get("override", {})}
        t0 = cmd["t0"]
        warm, measure = spec["warmup"], spec["measure"]
        stop = t0 + warm + measure
        rates = spec["rates"]
        pad = "x" * spec.get("pad", 0)
        self.rec.reset()  # fresh samples for every run
        for v in self.visitors:
            v.start(t0, stop, rates["visitor_msg"], rates["visitor_typing"], pad)
        for a in self.agents:
            a.start(t0, stop, rates["agent_msg"], pad)
        cpu: dict[str, float] = {}

        def mark(name: str) -> None:
            cpu[name] = cpu_seconds()
            cpu[name + "_t"] = loop.time()

        loop.call_at(t0 + warm, mark, "start")
        loop.call_at(stop, mark, "end")
        storm = spec.get("storm")
        tasks: list[asyncio.Task[None]] = []
        if storm:
            loop.call_at(t0 + storm["at"], lambda: tasks.extend(self.storm(storm["jitter"])))
        stall = spec.get("stall")
        if stall and self.stall_agent is not None:
            loop.call_at(t0 + stall["at"], self.stall)
        await asyncio.sleep(max(0.0, stop - loop.time()) + 0.05)
        drained = await self.drain(t0 + warm, stop, spec.get("drain", 5.0))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        extra: dict[str, Any] = {}
        if self.stall_agent is not None:
            extra["stall"] = await self.unstall()
        self.rec.counts["pending_unacked"] = sum(len(p.pending) for p in self.everyone)
        return {
            "rec": self.rec.export(),
            "cpu": cpu,
            "drained": drained,
            "participants": len(self.everyone),
            **extra,
        }

    async def drain(self, start: float, stop: float, timeout: float) -> bool:
        """Wait until every message sent in the window has reached its recipients."""
        rec = self.rec

        def done() -> bool:
            expected = sum(
                n for t, n in zip(rec.msg_sent_t, rec.msg_rcpt, strict=True) if start <= t < stop
            )
            got = sum(1 for t in rec.msg_dlv_t if start <= t < stop)
            return got >= expected and not any(p.pending for p in self.everyone if not p.stalled)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                await asyncio.sleep(0.1)  # a little longer for stragglers and previews
                return True
            await asyncio.sleep(0.1)
        return done()

    # -- storm -------------------------------------------------------------------

    def drop_all(self) -> None:
        for p in [*self.everyone, *self.idle]:
            p.dropping = True
            if p.link is not None:
                p.link.abort()

    def storm(self, jitter: float) -> list[asyncio.Task[None]]:
        """Drop every connection at once; each reconnects after a random delay."""
        loop = asyncio.get_running_loop()
        t_drop = loop.time()
        self.drop_all()
        return [
            asyncio.ensure_future(self.reconnect(p, t_drop, random.random() * jitter))
            for p in self.everyone
        ]

    async def reconnect(self, p: Participant, t_drop: float, delay: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(delay)
        backoff = 0.1
        deadline = loop.time() + 60
        while True:
            p.dropping = False
            try:
                await p.connect(timeout=15)
                break
            except Exception:
                self.rec.counts["reconnect_failures"] += 1
                if loop.time() > deadline:
                    return
                p.dropping = True
                await asyncio.sleep(backoff * (1 + random.random()))
                backoff = min(backoff * 2, 2.0)
        self.rec.reconnect.append(loop.time() - t_drop)
        p.resend_pending()
        wanted = p.mine if isinstance(p, Agent) else [p.conv_id] if isinstance(p, Visitor) else []
        with contextlib.suppress(TimeoutError):
            await until(
                lambda: all(
                    c in p.convs and p.convs[c].live_max is not None and not p.convs[c].recovering
                    for c in wanted
                ),
                30,
                "recovery",
            )
            self.rec.recovered.append(loop.time() - t_drop)

    # -- slow consumer -------------------------------------------------------------

    def stall(self) -> None:
        a = self.stall_agent
        assert a is not None and a.link is not None and a.id is not None
        a.stalled = True
        self.ctx.stalled_ids.add(a.id)
        a.stop_streams()
        a.link.ws.pause_reading()
        self.rec.counts["stalled_agent_conversations"] = len(a.mine)

    async def unstall(self) -> dict[str, Any]:
        """Read again and see what the server did with the stalled connection."""
        a = self.stall_agent
        assert a is not None and a.link is not None
        was_closed = a.link.ws.closed
        a.link.ws.resume_reading()
        with contextlib.suppress(TimeoutError):
            await until(lambda: a.link is not None and a.link.ws.closed, 3, "stalled close")
        return {
            "closed_while_stalled": was_closed,
            "close_code": a.close_code if a.link.ws.closed else None,
            "still_open": not a.link.ws.closed,
        }

    # -- verification ----------------------------------------------------------------

    async def op_verify(self, cmd: dict[str, Any]) -> dict[str, Any]:
        asked = sum(p.request_verify() for p in self.everyone if not p.stalled)
        with contextlib.suppress(TimeoutError):
            await until(
                lambda: sum(p.verify["replies"] for p in self.everyone) >= asked, 30, "verify"
            )
        total: Counter[str] = Counter()
        for p in self.everyone:
            total.update(p.verify)
        return {"asked": asked, "verify": dict(total)}


def worker_main(conn: Connection, spec: dict[str, Any], cores: list[int] | None) -> None:
    """``multiprocessing`` entry point."""
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    raise_nofile()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(Worker(conn, spec).serve())


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (the ``bench`` extra), else asyncio's.

    Only the generator runs on it, to stay cheaper than the servers it
    measures; every server runs on the stock asyncio loop, so that they are
    compared on equal terms.
    """
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    return "uvloop" if loop_factory() is not None else "asyncio"

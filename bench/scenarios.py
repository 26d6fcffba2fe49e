"""The scenarios: what each one sets up, drives and reports.

Every scenario starts a fresh server (fresh data directory) for each target,
so runs do not influence each other.

``idle``        visitors that connect, say ``hello`` and stay silent; server
                RSS growth divided by connections at each level.
``pairs``       N visitor/agent pairs exchanging messages and typing previews
                at fixed open-loop rates; latency percentiles, delivered/sent.
``fanout``      conversations with K agents each (K-1 of them ``join``).
``throughput``  pairs with visitor messages only, stepping the offered rate
                up until the server stops keeping up; the highest step where
                ≥ 99.9 % arrived with p99 under the SLO is the throughput.
``storm``       pairs running; every connection dropped at once (TCP abort),
                each client reconnects after a random delay and recovers as
                ``docs/protocol.md`` §7 says; gaps and duplicates counted.
``slow``        pairs running; one agent stops reading; everyone else's p99
                before and during the stall, and the server's memory.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .backing import (
    Backing,
    ServerGroup,
    backing_cpu,
    process_health,
    start_chatserver,
    store_urls,
)
from .generator import Generator
from .ingest import Ingest
from .seed import login_all, seed
from .servers import Cores, ServerProcess, Target
from .stats import (
    FOREIGN_CPU_MAX,
    Samples,
    generator_check,
    summary_ms,
    system_busy_seconds,
)

Log = Callable[[str], None]


@dataclass
class Env:
    cores: Cores
    workers: int
    tmp: Path
    log: Log
    seed: int = 1
    jitter_p99_ms: float = 0.0  # the machine's idle timer jitter (stats.calibrate_jitter)
    server_root: Path | None = None  # run chatserver from this checkout (bench.probe)
    instrument: dict[str, str] | None = None  # run it under bench.instrument
    server_prefix: list[str] | None = None  # run it under this command (valgrind)
    backing: Backing | None = None  # Redis and PostgreSQL for the backend targets
    max_workers: int = 0  # generator processes a saturated ramp may grow to (0: workers)


@dataclass
class Traffic:
    """One traffic workload (see the module docstring)."""

    chats: int
    capacity: int = 20  # conversations per agent
    agents_per_site: int = 10
    fanout: int = 1  # agents per conversation
    visitor_msg: float = 0.5  # messages per second per visitor
    visitor_typing: float = 2.0  # typing previews per second per visitor
    agent_msg: float = 0.5  # messages per second per conversation, from its agents
    warmup: float = 2.0
    measure: float = 10.0
    drain: float = 5.0
    pad: int = 40  # characters of padding in each body and draft
    storm: dict[str, float] | None = None  # {"at": s, "jitter": s}
    stall: dict[str, float] | None = None  # {"at": s}
    verify: bool = False


@dataclass
class Group:
    agents: int
    capacity: int
    visitors: int
    fanout: int


def plan_groups(t: Traffic) -> list[Group]:
    """Split the chats into sites ("pair groups")."""
    groups = []
    if t.fanout > 1:
        # Each group: `fanout` agents who are all in each of its conversations.
        per = max(1, t.capacity)
        left = t.chats
        while left > 0:
            n = min(per, left)
            groups.append(Group(t.fanout, per, n, t.fanout))
            left -= n
        return groups
    agents = math.ceil(t.chats / t.capacity)
    left = t.chats
    while agents > 0:
        a = min(t.agents_per_site, agents)
        v = min(left, a * t.capacity)
        groups.append(Group(a, t.capacity, v, 1))
        agents -= a
        left -= v
    return groups


class ServerMonitor:
    """Samples the server's RSS and CPU time in the background."""

    def __init__(self, server: ServerProcess | ServerGroup, every: float = 0.25) -> None:
        self.server = server
        self.every = every
        self.samples: list[tuple[float, int, float, float]] = []  # t, rss, cpu, machine busy
        self.backing: list[tuple[float, float]] = []  # t, CPU of Redis and PostgreSQL
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                s = (
                    time.monotonic(),
                    self.server.rss(),
                    self.server.cpu_seconds(),
                    system_busy_seconds(),
                )
            except (OSError, ValueError, IndexError):
                return
            self.samples.append(s)
            extra = backing_cpu(self.server)
            if extra is not None:
                self.backing.append((s[0], extra))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def between(self, a: float, b: float) -> list[tuple[float, int, float, float]]:
        return [s for s in self.samples if a <= s[0] <= b]

    def cpu(self, a: float, b: float) -> float | None:
        inside = self.between(a, b)
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        return round((inside[-1][2] - inside[0][2]) / (inside[-1][0] - inside[0][0]), 3)

    def backing_cpu(self, a: float, b: float) -> float | None:
        """Cores Redis and PostgreSQL kept busy on average in ``[a, b]``."""
        inside = [s for s in self.backing if a <= s[0] <= b]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        return round((inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]), 3)

    def machine_busy(self, a: float, b: float) -> float | None:
        """Cores the whole machine kept busy on average in ``[a, b]``."""
        inside = self.between(a, b)
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        return (inside[-1][3] - inside[0][3]) / (inside[-1][0] - inside[0][0])

    def rss_mb(self, a: float, b: float) -> dict[str, float] | None:
        inside = self.between(a, b)
        if not inside:
            return None
        return {
            "first": round(inside[0][1] / 2**20, 1),
            "max": round(max(s[1] for s in inside) / 2**20, 1),
            "last": round(inside[-1][1] / 2**20, 1),
        }


class Stage:
    """A target's server plus the generator connected to it, for one scenario."""

    def __init__(
        self, env: Env, target: Target, name: str, t: Traffic | None, workers: int = 0
    ) -> None:
        self.env = env
        self.workers = workers or env.workers  # generator processes
        self.target = target
        self.name = name
        self.traffic = t
        self.data = env.tmp / f"{target.name}-{name}"
        shutil.rmtree(self.data, ignore_errors=True)
        self.server: ServerProcess | ServerGroup | None = None
        self.gen: Generator | None = None
        self.monitor: ServerMonitor | None = None
        self.groups: list[dict[str, Any]] = []
        self.idle_site = "idle"
        self.stall_agent: str | None = None

    def start(self) -> Stage:
        env, target, t = self.env, self.target, self.traffic
        plan = plan_groups(t) if t else []
        seeded = []
        urls = store_urls(target, env.backing)
        if target.chatserver:
            sites = [(g.agents, g.capacity) for g in plan] or [(0, 1)]
            seeded = seed(self.data, sites, **urls, root=env.server_root)
            if not plan:
                self.idle_site = seeded[0].key
        if target.chatserver:
            self.server = start_chatserver(env, target, self.data, urls)
        else:
            self.server = ServerProcess(
                target, self.data, env.cores, env.server_root, env.instrument, env.server_prefix
            ).start()
        tokens: dict[str, str] = {}
        if seeded and plan:
            t_login = time.monotonic()
            tokens = login_all(self.server.http, [e for s in seeded for e in s.agents])
            env.log(f"    {len(tokens)} agent logins in {time.monotonic() - t_login:.1f}s")
        for i, g in enumerate(plan):
            site = seeded[i].key if seeded else f"site{i}"
            emails = seeded[i].agents if seeded else [None] * g.agents
            self.groups.append(
                {
                    "site": site,
                    "agents": [
                        {"tag": f"a{i}.{j}", "token": tokens.get(e or ""), "capacity": g.capacity}
                        for j, e in enumerate(emails)
                    ],
                    "visitors": [f"v{i}.{j}" for j in range(g.visitors)],
                    "fanout": g.fanout,
                }
            )
        spec: dict[str, Any] = {
            "target": {
                "url": self.server.url,
                "urls": self.server.urls,
                "wire": target.wire,
                "subprotocol": target.subprotocol(),
            },
            "idle_site": self.idle_site,
            "seed": env.seed,
        }
        if t is not None:
            spec.update(
                warmup=t.warmup,
                measure=t.measure,
                drain=t.drain,
                pad=t.pad,
                rates={
                    "visitor_msg": t.visitor_msg,
                    "visitor_typing": t.visitor_typing,
                    "agent_msg": t.agent_msg,
                },
                storm=t.storm,
            )
            if t.stall is not None and self.groups:
                self.stall_agent = self.groups[0]["agents"][0]["tag"]
                spec["stall"] = {**t.stall, "agent": self.stall_agent}
        workers = self.workers if self.groups else 1
        self.gen = Generator(spec, self.groups, workers, env.cores.generator)
        self.monitor = ServerMonitor(self.server)
        return self

    def setup(self) -> dict[str, Any]:
        assert self.gen is not None
        t = time.monotonic()
        # every visitor connects and opens a chat; 10,000 take minutes on a busy machine
        chats = sum(len(g["visitors"]) for g in self.groups)
        replies = self.gen.command({"op": "setup"}, 180 + chats / 25)
        return {
            "ready_s": round(time.monotonic() - t, 2),
            "connect_retries": sum(r["connect_retries"] for r in replies),
            "open_retries": sum(r.get("open_retries", 0) for r in replies),
            "errors": _sum_dicts([r.get("errors", {}) for r in replies]),
        }

    def run(self, override: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], float]:
        assert self.gen is not None
        t0 = time.monotonic() + 0.5
        cmd: dict[str, Any] = {"op": "run", "t0": t0}
        if override:
            cmd["override"] = override
        return self.gen.command(cmd, 600), t0

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        if self.gen is not None:
            self.gen.close()
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.data, ignore_errors=True)


def _machine(stage: Stage, replies: list[dict[str, Any]], a: float, b: float) -> dict[str, Any]:
    """How busy the machine was, and how much of that was neither server nor generator."""
    assert stage.monitor is not None
    busy = stage.monitor.machine_busy(a, b)
    server = (stage.monitor.cpu(a, b) or 0.0) + (stage.monitor.backing_cpu(a, b) or 0.0)
    gen = 0.0
    for r in replies:
        c = r.get("cpu", {})
        if "start" in c and "end" in c and c["end_t"] > c["start_t"]:
            gen += (c["end"] - c["start"]) / (c["end_t"] - c["start_t"])
    if busy is None:
        return {"busy_cores": None, "foreign_cores": None, "contended": False}
    foreign = max(0.0, busy - server - gen)
    return {
        "busy_cores": round(busy, 2),
        "foreign_cores": round(foreign, 2),
        "contended": foreign > FOREIGN_CPU_MAX,
    }


def _window_result(
    stage: Stage, t: Traffic, replies: list[dict[str, Any]], t0: float
) -> dict[str, Any]:
    a, b = t0 + t.warmup, t0 + t.warmup + t.measure
    samples = Samples([r["rec"] for r in replies])
    window = samples.window(a, b)
    assert stage.monitor is not None
    return {
        **window,
        "generator": generator_check(replies, window, stage.env.jitter_p99_ms),
        "machine": _machine(stage, replies, a, b),
        "server_cpu": stage.monitor.cpu(a, b),
        "backing_cpu": stage.monitor.backing_cpu(a, b),
        "server_rss_mb": stage.monitor.rss_mb(a, b),
        "drained": all(r["drained"] for r in replies),
        "errors": samples.errors,
        "unexpected_closes": samples.closes,
        "counts": samples.counts,
    }


# -- scenarios -----------------------------------------------------------------


def idle(env: Env, target: Target, levels: list[int], warm: int = 100) -> dict[str, Any]:
    """Server memory per idle visitor connection."""
    stage = Stage(env, target, "idle", None)
    try:
        stage.start()
        assert stage.gen is not None and stage.server is not None
        stage.gen.command({"op": "idle", "n": warm}, 120)
        time.sleep(0.5)
        base = stage.server.rss()
        out = []
        for n in levels:
            t = time.monotonic()
            reply = stage.gen.command({"op": "idle", "n": n}, 600)[0]
            took = time.monotonic() - t
            time.sleep(1.0)
            rss = stage.server.rss()
            per = (rss - base) / max(1, n - warm)
            out.append(
                {
                    "connections": reply["connected"],
                    "rss_mb": round(rss / 2**20, 1),
                    "per_connection_kb": round(per / 1024, 2),
                    "connect_s": round(took, 1),
                }
            )
            env.log(
                f"    {target.name}: {reply['connected']} idle visitors, RSS {rss / 2**20:.0f} MB, "
                f"{per / 1024:.1f} KB each"
            )
        return {"base_rss_mb": round(base / 2**20, 1), "warm_connections": warm, "levels": out}
    finally:
        stage.close()


def traffic(env: Env, target: Target, name: str, t: Traffic) -> dict[str, Any]:
    """Pairs or fan-out at fixed rates."""
    stage = Stage(env, target, name, t)
    try:
        stage.start()
        setup = stage.setup()
        if target.chatserver and stage.server is not None:
            setup["processes"] = process_health(stage.server)
        replies, t0 = stage.run()
        result = _window_result(stage, t, replies, t0)
        if t.verify and target.chatserver:
            assert stage.gen is not None
            v = stage.gen.command({"op": "verify"}, 120)
            result["verify"] = _sum_dicts([r["verify"] for r in v])
        result["setup"] = setup
        result["config"] = asdict(t)
        return result
    finally:
        stage.close()


def repeat_summary(r: dict[str, Any]) -> dict[str, Any]:
    """What one run of a repeated scenario adds to the list of runs."""
    gen, machine = r.get("generator") or {}, r.get("machine") or {}
    return {
        "p50": r.get("latency_ms", {}).get("p50"),
        "p99": r.get("latency_ms", {}).get("p99"),
        "p999": r.get("latency_ms", {}).get("p999"),
        "preview_p99": r.get("preview_latency_ms", {}).get("p99"),
        "ack_p99": r.get("ack_latency_ms", {}).get("p99"),
        "server_cpu": r.get("server_cpu"),
        "valid": gen.get("valid", True),
        "contended": machine.get("contended", False),
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose message p99 is the median of ``runs``, with every run's summary.

    Runs that failed or were INVALID (the generator was the bottleneck) are
    left out when any valid run exists; with an even number the higher of
    the two middle runs is taken.
    """
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[-1]
    valid = [r for r in ok if (r.get("generator") or {}).get("valid", True)] or ok
    ordered = sorted(valid, key=lambda r: r.get("latency_ms", {}).get("p99") or float("inf"))
    chosen = dict(ordered[len(ordered) // 2])
    chosen["repeats"] = [repeat_summary(r) if "error" not in r else r for r in runs]
    return chosen


def storm(env: Env, target: Target, t: Traffic) -> dict[str, Any]:
    """Every connection dropped at once; reconnect with jitter; count gaps and duplicates."""
    assert t.storm is not None
    stage = Stage(env, target, "storm", t)
    try:
        stage.start()
        setup = stage.setup()
        replies, t0 = stage.run()
        samples = Samples([r["rec"] for r in replies])
        a, b = t0 + t.warmup, t0 + t.warmup + t.measure
        assert stage.gen is not None
        v = _sum_dicts([r["verify"] for r in stage.gen.command({"op": "verify"}, 120)])
        whole = samples.window(a, b)
        c = samples.counts
        gaps = v.get("gaps", 0) + c.get("live_gaps", 0)
        dups = v.get("stored_duplicates", 0) + c.get("stored_duplicates", 0)
        dups += c.get("live_duplicates", 0)
        return {
            "clients": sum(r["participants"] for r in replies),
            "reconnected": len(samples.reconnect),
            "reconnect_s": summary_s(samples.reconnect),
            "recovered": len(samples.recovered),
            "recovered_s": summary_s(samples.recovered),
            "gaps": gaps,
            "duplicates": dups,
            "lost": v.get("lost", 0),
            "messages_sent": whole["messages_sent"],
            "deliveries_expected": whole["deliveries_expected"],
            "deliveries": whole["deliveries"],
            "delivered_ratio": whole["delivered_ratio"],
            "delivered_by_history": c.get("delivered_by_history", 0),
            "resent": c.get("resent", 0),
            "duplicate_acks": c.get("duplicate_acks", 0),
            "recovery_incomplete": c.get("recovery_incomplete", 0),
            "reconnect_failures": c.get("reconnect_failures", 0),
            "pending_unacked": c.get("pending_unacked", 0),
            "verify": v,
            "counts": c,
            "errors": samples.errors,
            "unexpected_closes": samples.closes,
            "generator": generator_check(replies, whole, env.jitter_p99_ms),
            "machine": _machine(stage, replies, a, b),
            "setup": setup,
            "config": asdict(t),
        }
    finally:
        stage.close()


def slow(env: Env, target: Target, t: Traffic) -> dict[str, Any]:
    """One agent stops reading: everyone else's p99 before/during, and server memory."""
    assert t.stall is not None
    stage = Stage(env, target, "slow", t)
    try:
        stage.start()
        setup = stage.setup()
        replies, t0 = stage.run()
        samples = Samples([r["rec"] for r in replies])
        stall_at = t0 + t.stall["at"]
        end = t0 + t.warmup + t.measure
        before = samples.window(t0 + t.warmup, stall_at - 0.5)
        during = samples.window(stall_at + 1.0, end)
        assert stage.monitor is not None
        rss_before = stage.monitor.rss_mb(t0 + t.warmup, stall_at)
        rss_during = stage.monitor.rss_mb(stall_at, end)
        stall: dict[str, Any] = next((r["stall"] for r in replies if "stall" in r), {})
        b99 = before["latency_ms"].get("p99")
        d99 = during["latency_ms"].get("p99")
        growth = (
            round(rss_during["max"] - rss_before["last"], 1) if rss_before and rss_during else None
        )
        pb99 = before["preview_latency_ms"].get("p99")
        pd99 = during["preview_latency_ms"].get("p99")
        return {
            "stalled_agent_conversations": samples.counts.get("stalled_agent_conversations"),
            "p99_before_ms": b99,
            "p99_during_ms": d99,
            "p99_ratio": round(d99 / b99, 2) if b99 and d99 else None,
            "preview_p99_before_ms": pb99,
            "preview_p99_during_ms": pd99,
            "preview_p99_ratio": round(pd99 / pb99, 2) if pb99 and pd99 else None,
            "delivered_ratio_others": during["delivered_ratio"],
            "rss_before_mb": rss_before,
            "rss_during_mb": rss_during,
            "rss_growth_mb": growth,
            "stalled_connection": stall,
            "before": before,
            "during": during,
            "generator": _both(
                generator_check(replies, before, env.jitter_p99_ms),
                generator_check(replies, during, env.jitter_p99_ms),
            ),
            "machine": _machine(stage, replies, t0 + t.warmup, end),
            "server_cpu": stage.monitor.cpu(stall_at, end),
            "errors": samples.errors,
            "unexpected_closes": samples.closes,
            "setup": setup,
            "config": asdict(t),
        }
    finally:
        stage.close()


def _generator_us_per_msg(replies: list[dict[str, Any]], window: dict[str, Any]) -> float | None:
    """Generator CPU µs per message it handled in the window: messages sent plus delivered."""
    cpu = 0.0
    for r in replies:
        c = r.get("cpu", {})
        if "start" not in c or "end" not in c:
            return None
        cpu += c["end"] - c["start"]
    handled = window["messages_sent"] + window["deliveries"]
    return round(cpu / handled * 1e6, 1) if handled else None


def _both(before: dict[str, Any], during: dict[str, Any]) -> dict[str, Any]:
    """One generator verdict for two windows: valid only if both were."""
    return {
        **during,
        "valid": before["valid"] and during["valid"],
        "reasons": [f"before: {r}" for r in before["reasons"]]
        + [f"during: {r}" for r in during["reasons"]],
        "before": before,
    }


def summary_s(values: list[float]) -> dict[str, Any]:
    s = summary_ms(values)
    return {k: (round(v / 1000, 3) if k != "n" else v) for k, v in s.items()}


def _sum_dicts(ds: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in ds:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    return total


@dataclass
class Plan:
    """Which scenarios and sizes one invocation runs."""

    name: str
    idle_levels: list[int]
    pairs: Traffic
    fanout: Traffic | None
    throughput: Traffic | None
    throughput_steps: list[float] = field(default_factory=list)
    throughput_bisect: int = 2
    throughput_retries: int = 2  # repeats of a contended or generator-limited step
    throughput_extend: int = 0  # doublings past the steps while every step passes (ramp.py)
    throughput_budget_s: float = 600.0  # one server's ramp, wall time at most
    storm: Traffic | None = None
    slow: Traffic | None = None
    slo_p99_ms: float = 50.0
    fanout_targets: list[str] | None = None  # None: every target
    ingest: Ingest | None = None  # session recording batches (bench/ingest.py)
    ingest_dense: Ingest | None = None  # the same with a busy visitor's full batches
    # Runs of the pairs scenario per server, interleaved across servers (A, B, C,
    # A, B, C, ...): one run's p99 swings with whatever else the machine (a VM)
    # does for a second; the median of several, each shown, does much less.
    pairs_repeats: int = 1
    # ``many``: the pairs workload at 10,000 active chats on one server process,
    # for its p99 and memory (chatserver, and the bare relay beside it)
    many: Traffic | None = None
    pairs_sync_normal: bool = False  # pairs also on chatserver with --sqlite-sync normal

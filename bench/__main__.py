"""``python -m bench``: run the benchmark suite, print a table, write a JSON result.

    python -m bench            full run (the issue's sizes; ~10 minutes)
    python -m bench --quick    every scenario, small (~2 minutes)
    python -m bench --smoke    a few pairs for a second, chatserver only (CI)
    python -m bench --profile  profile chatserver's hot paths with py-spy
    python -m bench --backends [--quick|--smoke]
                               relay and ingest on SQLite, Redis, PostgreSQL + Redis
                               (one and two processes; bench/backing.py)

Options: ``--only pairs,idle`` to pick scenarios, ``--targets chatserver`` to
pick servers, ``--workers N`` generator processes (default: one per
generator core), ``--out FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from . import plans
from .backends_report import render_backends
from .backing import Backing, backing_versions
from .ingest import ingest
from .ramp import Ramp, throughput
from .report import checks, render
from .scenarios import Env, Plan, idle, median_run, slow, storm, traffic
from .servers import (
    ALL_TARGETS,
    BACKEND_TARGETS,
    DURABLE_RELAY,
    INGEST_FLOOR,
    ROOT,
    SYNC_NORMAL,
    TARGETS,
    Cores,
)
from .stats import calibrate_jitter
from .worker import loop_name, raise_nofile

SCENARIOS = ("idle", "pairs", "many", "fanout", "throughput", "storm", "slow", "ingest")
MANY_TARGETS = ("chatserver", "ws-relay")  # 10,000 chats: chatserver, the bare relay beside it
RESULTS = Path(__file__).resolve().parent / "results"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _git() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("chatserver", "uvicorn", "starlette", "websockets", "python-socketio", "msgpack"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_plan(plan: Plan, only: set[str], targets: list[str], env: Env) -> dict[str, Any]:
    log = env.log
    results: dict[str, Any] = {}

    def attempt(scenario: str, target: str, fn: Any, *args: Any) -> dict[str, Any]:
        log(f"  {scenario} / {target}")
        t = time.monotonic()
        try:
            r: dict[str, Any] = fn(env, ALL_TARGETS[target], *args)
        except Exception as exc:
            log(f"    failed: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
            r = {"error": f"{type(exc).__name__}: {exc}"}
        r["elapsed_s"] = round(time.monotonic() - t, 1)
        results.setdefault(scenario, {})[target] = r
        return r

    if "idle" in only and plan.idle_levels:
        for target in targets:
            attempt("idle", target, idle, plan.idle_levels)
    if "pairs" in only:
        # with chatserver, its --sqlite-sync normal twin too (what the fsync tail costs)
        paired = [*targets, SYNC_NORMAL.name] if plan.pairs_sync_normal else targets
        if "chatserver" not in targets:
            paired = targets
        elif plan.pairs_sync_normal and "ws-relay" in targets and DURABLE_RELAY.name not in paired:
            # and the bare relay made durable: the p99 this disk's fsync allows any
            # server that syncs each message before its ack (bench.baseline_durable)
            paired = [*paired, DURABLE_RELAY.name]
        runs: dict[str, list[dict[str, Any]]] = {t: [] for t in paired}
        for i in range(plan.pairs_repeats):
            if plan.pairs_repeats > 1:
                log(f"  pairs: run {i + 1} of {plan.pairs_repeats}")
            for target in paired:
                runs[target].append(attempt("pairs", target, traffic, "pairs", plan.pairs))
        if plan.pairs_repeats > 1:
            results["pairs"] = {t: median_run(rs) for t, rs in runs.items()}
    if "many" in only and plan.many is not None:
        for target in targets:
            if target in MANY_TARGETS:
                attempt("many", target, traffic, "many", plan.many)
    if "fanout" in only and plan.fanout is not None:
        for target in targets:
            if plan.fanout_targets is None or target in plan.fanout_targets:
                attempt("fanout", target, traffic, "fanout", plan.fanout)
    if "throughput" in only and plan.throughput is not None:
        ramp = Ramp(
            tuple(plan.throughput_steps),
            plan.slo_p99_ms,
            plan.throughput_bisect,
            plan.throughput_retries,
            plan.throughput_extend,
            plan.throughput_budget_s,
            max_workers=max(env.workers, env.max_workers),
        )
        # Beside the bare relay, the same relay made durable (bench.baseline_durable):
        # what the durable append alone costs, the floor for any durable server.
        floor = [DURABLE_RELAY.name] if "ws-relay" in targets else []
        for target in [*targets, *(t for t in floor if t not in targets)]:
            attempt("throughput", target, throughput, plan.throughput, ramp)
    # Storm and slow consumer exercise recovery and outbox bounds, which the
    # baselines do not implement: chatserver only.
    if "storm" in only and plan.storm is not None and "chatserver" in targets:
        attempt("storm", "chatserver", storm, plan.storm)
    if "slow" in only and plan.slow is not None and "chatserver" in targets:
        attempt("slow", "chatserver", slow, plan.slow)
    # Session recording ingest: a chatserver feature; beside chatserver its floor
    # (bench.baseline_ingest: compress, append, fdatasync, reply; nothing else).
    ingesting = [t for t in targets if ALL_TARGETS[t].chatserver or t == INGEST_FLOOR.name]
    if "chatserver" in ingesting and INGEST_FLOOR.name not in ingesting:
        ingesting.append(INGEST_FLOOR.name)
    for target in ingesting:
        if "ingest" in only and plan.ingest is not None:
            attempt("ingest", target, ingest, plan.ingest)
            if plan.ingest_dense is not None:
                attempt("ingest_dense", target, ingest, plan.ingest_dense)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="every scenario, small (~2 min)")
    size.add_argument("--smoke", action="store_true", help="a few pairs, chatserver only")
    size.add_argument("--profile", action="store_true", help="py-spy profile of chatserver")
    p.add_argument(
        "--backends",
        action="store_true",
        help="relay and ingest on SQLite, Redis and PostgreSQL + Redis, 1 and 2 processes",
    )
    p.add_argument("--only", default="", help=f"comma-separated scenarios of {SCENARIOS}")
    p.add_argument("--targets", default="", help=f"comma-separated servers of {list(ALL_TARGETS)}")
    p.add_argument("--workers", type=int, default=0, help="generator processes")
    p.add_argument(
        "--max-workers",
        type=int,
        default=0,
        help="generator processes a throughput ramp may grow to when the generator "
        "saturates (default: one per generator core, at least --workers)",
    )
    p.add_argument("--out", type=Path, help="JSON result file (default bench/results/...)")
    p.add_argument("--seconds", type=float, default=10.0, help="profile duration")
    args = p.parse_args(argv)

    cores = Cores.plan()
    nofile = raise_nofile()
    if cores.generator and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores.generator)  # the coordinator stays off the server's core
    workers = args.workers or (len(cores.generator) if cores.generator else 1)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    jitter = calibrate_jitter()
    log(f"cores: {cores.describe()}; timer jitter p99 {jitter['p99_ms']} ms; nofile {nofile}")

    if args.profile:
        from .profile import profile_run

        with tempfile.TemporaryDirectory(prefix="chatbench-") as tmp:
            env = Env(cores, workers, Path(tmp), log, jitter_p99_ms=jitter["p99_ms"])
            return profile_run(env, args.seconds, args.out)

    if args.backends:
        plan = plans.backends("smoke" if args.smoke else "quick" if args.quick else "full")
    else:
        plan = plans.smoke() if args.smoke else plans.quick() if args.quick else plans.full()
    relay = {"pairs", "throughput", "ingest"}
    only = set(filter(None, args.only.split(","))) or (relay if args.backends else set(SCENARIOS))
    unknown = only - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {sorted(unknown)}")
    default_targets = ["chatserver"] if args.smoke else list(TARGETS)
    if args.backends:
        default_targets = ["chatserver", *BACKEND_TARGETS]
    targets = [t for t in args.targets.split(",") if t] or default_targets
    for t in targets:
        if t not in ALL_TARGETS:
            p.error(f"unknown target {t!r}")

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t_start = time.monotonic()
    log(f"bench {plan.name}: scenarios {sorted(only)}, servers {targets}")
    with tempfile.TemporaryDirectory(prefix="chatbench-") as tmp:
        backing = Backing(Path(tmp), cores)
        env = Env(
            cores,
            workers,
            Path(tmp),
            log,
            jitter_p99_ms=jitter["p99_ms"],
            backing=backing,
            max_workers=args.max_workers or max(workers, len(cores.generator or ())),
        )
        try:
            scenarios = run_plan(plan, only, targets, env)
        finally:
            backing.close()
    results: dict[str, Any] = {
        "meta": {
            "plan": plan.name,
            "started": started,
            "elapsed_s": round(time.monotonic() - t_start, 1),
            "command": " ".join(["python -m bench", *(argv or sys.argv[1:])]),
            "git": _git(),
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "versions": _versions(),
            "pinning": cores.describe(),
            "generator_workers": workers,
            "generator_loop": loop_name(),
            "timer_jitter": jitter,
            "nofile": nofile,
            "load_average": os.getloadavg(),
            "max_rss_coordinator_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
        },
        "scenarios": scenarios,
    }
    if args.backends:
        results["meta"]["backing_versions"] = backing_versions()
    results["checks"] = checks(results)
    out = args.out
    if out is None:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{plan.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    print(render(results))
    if any(t in BACKEND_TARGETS for t in targets):
        print(render_backends(results))
    print(f"\nresults: {out}  ({results['meta']['elapsed_s']} s)")
    failed = [f"{s}/{t}" for s, by in scenarios.items() for t, r in by.items() if "error" in r]
    if failed:
        print(f"scenarios that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

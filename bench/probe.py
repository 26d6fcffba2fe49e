"""``python -m bench.probe``: measurements that a busy machine does not spoil.

The main suite measures latency and throughput, which need a quiet machine.
These probes measure what changes in the server move, with figures that other
processes on the machine barely touch, and compare two checkouts run
alternately (A, B, A, B, ...) on the same machine in the same minutes:

``memory``  idle visitor connections: server RSS growth per connection,
            objects the cyclic GC tracks per connection, and with
            ``--breakdown`` where the bytes are (``tracemalloc``, by package
            and by line)
``cpu``     a fixed visitor message rate (no previews or replies): server
            CPU time per message (all threads) and context switches per
            message, with p50 / p99 for reference; ``--strace`` also counts
            syscalls per message (exact, but the CPU figure of that run is not)
``gc``      the 1000-chat pairs workload (previews and replies): every cyclic
            GC pause in the window, by generation
``instructions``  the ``cpu`` workload at a low rate with the server under
            ``valgrind --tool=callgrind``: instructions per message, exact
            and immune to other load (a run takes a few minutes)
``calls``   the ``cpu`` workload at a low rate with ``cProfile`` on the
            event loop's thread: Python calls per message, by function
            (exact; compare trees with ``--base`` to see what a change added)
``ingest``  session recording batches (``bench/ingest.py``): events stored per
            second of server CPU and stored bytes per event, with the
            visit's batches as recorded or (``--dense``) a busy visitor's;
            ``--visits N`` makes it a fixed amount of work (each recorder
            sends the whole visit N times) so the mix of batches measured
            does not depend on how fast the server is

``--base REV`` (a git revision) runs the same probe on that revision's
server packages (``chatserver/``, ``recordings/``, ``agent_console/``,
``archive/``) too, alternately (the base first in the first round, the
working tree first in the second, and so on), and prints both with their
ratio (``--work REV`` measures a revision instead of the working tree); the
copies are made with ``git archive`` in a temporary directory.  Examples::

    python -m bench.probe memory --connections 2000 --breakdown
    python -m bench.probe cpu --base HEAD~1 --rate 1200 --rounds 3
    python -m bench.probe gc --chats 1000
    python -m bench.probe instructions --base HEAD~1 --chats 10 --rate 20
    python -m bench.probe ingest --base main --rounds 3 --dense
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from .ingest import Ingest, ingest
from .plans import ACTIVE
from .scenarios import Env, Stage, Traffic, _window_result
from .servers import ROOT, SYNC_NORMAL, TARGETS, Cores, thread_stats
from .stats import calibrate_jitter
from .worker import raise_nofile

# -- the server's own report (bench.instrument) ---------------------------------


def _report(stage: Stage, path: Path, n: int) -> dict[str, Any]:
    """Ask the instrumented server for report number ``n`` and wait for it."""
    assert stage.server is not None
    os.kill(stage.server.pid, signal.SIGUSR1)
    return _wait_report(path, n)


def _wait_report(path: Path, n: int) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            if data["n"] == n:
                return data
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise TimeoutError("the server wrote no report")


def _owner(filename: str) -> str:
    """The package a source file belongs to (``chatserver``, ``asyncio``, ...)."""
    parts = Path(filename).parts
    for marker in ("site-packages", "python3.11"):
        if marker in parts:
            rest = parts[parts.index(marker) + 1 :]
            if rest:
                name = rest[0]
                return name[:-3] if name.endswith(".py") else name
    for name in ("chatserver", "bench"):
        if name in parts:
            return name
    return Path(filename).name


_LAYERS = ("chatserver", "starlette", "uvicorn", "websockets")


def breakdown(before: str, after: str, per: int, top: int = 40) -> dict[str, Any]:
    """Bytes per connection allocated between two snapshots, by package and line.

    ``by_package`` charges each block to the package of the line that
    allocated it; ``by_layer`` to the innermost of our framework layers on its
    traceback (so an ``asyncio.Queue`` made by uvicorn counts as uvicorn's).
    """
    a = tracemalloc.Snapshot.load(before)
    b = tracemalloc.Snapshot.load(after)
    stats = b.compare_to(a, "traceback")
    package: dict[str, float] = defaultdict(float)
    layer: dict[str, float] = defaultdict(float)
    lines: dict[str, float] = defaultdict(float)
    for s in stats:
        frames = list(reversed(s.traceback))  # innermost first
        if not frames:
            continue
        inner = frames[0]
        package[_owner(inner.filename)] += s.size_diff
        owner = next(
            (o for f in frames if (o := _owner(f.filename)) in _LAYERS), _owner(inner.filename)
        )
        layer[owner] += s.size_diff
        where = f"{_owner(inner.filename)}:{Path(inner.filename).name}:{inner.lineno}"
        lines[where] += s.size_diff

    def table(d: dict[str, float], n: int) -> list[tuple[str, float]]:
        items = sorted(d.items(), key=lambda kv: -kv[1])[:n]
        return [(k, round(v / per, 1)) for k, v in items if abs(v / per) >= 1]

    total = sum(s.size_diff for s in stats)
    return {
        "bytes_per_connection": round(total / per, 1),
        "by_layer": table(layer, top),
        "by_package": table(package, top),
        "by_line": table(lines, top),
    }


# -- probes ---------------------------------------------------------------------


def probe_memory(env: Env, args: argparse.Namespace) -> dict[str, Any]:
    warm, n = 100, args.connections
    report = env.tmp / "report.json"
    env.instrument = {"CHATBENCH_REPORT": str(report)}
    if args.gc:
        env.instrument["CHATBENCH_GC"] = args.gc
    if args.garbage:
        env.instrument["CHATBENCH_GARBAGE"] = "1"
        env.instrument["CHATBENCH_CENSUS"] = "1"
    if args.breakdown:
        env.instrument["CHATBENCH_TRACEMALLOC"] = "25"
    stage = Stage(env, TARGETS["chatserver"], "probe-memory", None)
    try:
        stage.start()
        assert stage.gen is not None and stage.server is not None
        stage.gen.command({"op": "idle", "n": warm}, 120)
        time.sleep(0.5)
        first = _report(stage, report, 1)
        os.kill(stage.server.pid, signal.SIGUSR2)  # GC pauses from here on
        rss0 = stage.server.rss()
        reply = stage.gen.command({"op": "idle", "n": warm + n}, 600)[0]
        time.sleep(1.0)
        second = _report(stage, report, 2)
        rss1 = stage.server.rss()
        # Every client leaves: what do the closed connections leave behind
        # (cyclic garbage waits for a collection of its generation)?
        stage.gen.close()
        stage.gen = None
        time.sleep(2.0)
        third = _report(stage, report, 3)
        if args.garbage:
            census = Counter(second["census"])
            census.subtract(first["census"])
            per = [(k, round(v / n, 2)) for k, v in census.most_common(25)]
            env.log(f"    GC-tracked objects per open connection, by type: {per}")
            env.log(f"    cyclic garbage of {n} closed connections: {third['garbage']}")
    finally:
        stage.close()
    out: dict[str, Any] = {
        "connections": reply["connected"] - warm,
        "rss_kb_per_connection": round((rss1 - rss0) / n / 1024, 2),
        "gc_objects_per_connection": round((second["gc_tracked"] - first["gc_tracked"]) / n, 1),
        "gc_tracked_at_start": first["gc_tracked"],
        "gc_frozen": first["gc_frozen"],
        "gc_while_connecting": _pauses(second["gc_pauses"]),
        "gc_objects_left_per_closed_connection": round(
            (third["gc_tracked"] - first["gc_tracked"]) / n, 1
        ),
    }
    if args.breakdown:
        out["note"] = "RSS includes tracemalloc's own overhead in this run"
        out["breakdown"] = breakdown(first["snapshot"], second["snapshot"], n)
    return out


# The server's own latency histograms (/metrics) read at both ends of the window.
TAILS = {
    "ack": "chatserver_frame_to_ack_seconds",
    "commit": "chatserver_store_commit_seconds",
    "loop_lag": "chatserver_event_loop_lag_seconds",
}


def _scrape(http: str) -> str:
    """The server's ``/metrics`` text."""
    import urllib.request

    with urllib.request.urlopen(f"{http}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def _histograms(text: str) -> dict[str, dict[float, int]]:
    """Cumulative bucket counts (``le`` → count) of the ``TAILS`` histograms."""
    out: dict[str, dict[float, int]] = {name: {} for name in TAILS}
    wanted = {metric + "_bucket": name for name, metric in TAILS.items()}
    for line in text.splitlines():
        metric, _, rest = line.partition("{")
        if metric in wanted and 'le="' in rest:
            le = rest.split('le="', 1)[1].split('"', 1)[0]
            out[wanted[metric]][float(le)] = int(float(line.rsplit(" ", 1)[1]))
    return out


def _archive_skipped(text: str) -> int:
    """``chatserver_archive_skipped_total``: events the archive's listener skipped
    while its index was behind (indexed later from the record)."""
    for line in text.splitlines():
        if line.startswith("chatserver_archive_skipped_total "):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def _tails(
    before: dict[str, dict[float, int]], after: dict[str, dict[float, int]]
) -> dict[str, dict[str, float]]:
    """Per histogram, the window's count and the share of it above 2.5, 5 and 10 ms
    (the buckets are coarse: this says which stage holds the tail, not its p99)."""
    out: dict[str, dict[str, float]] = {}
    for name, counts in after.items():
        window = {le: n - before[name].get(le, 0) for le, n in counts.items()}
        total = window.get(float("inf"), 0)
        row: dict[str, float] = {"n": total}
        for ms in (2.5, 5.0, 10.0):
            under = window.get(ms / 1000, 0)
            row[f">{ms:g}ms"] = round((total - under) / total, 4) if total else 0.0
        out[name] = row
    return out


def _switches(pid: int) -> dict[str, int]:
    """Context switches of every thread of ``pid``: voluntary, and preemptions."""
    total = {"voluntary": 0, "preempted": 0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total["voluntary"] += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                total["preempted"] += int(line.split()[1])
    return total


def _io(pid: int) -> dict[str, int]:
    """``/proc/<pid>/io``: bytes the process sent to storage (``write_bytes``: the
    page cache pages it dirtied, WAL and checkpoint alike), bytes passed to write
    calls of any kind (``wchar``: sockets too) and the write calls (``syscw``)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("write_bytes", "wchar", "syscw"):
                out[key] = int(value)
    return out


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of every thread of ``pid``, user and system apart
    (``/proc/<pid>/task/*/stat``): ``main``, then each thread by the name it
    gave the OS (chatserver's: ``sqlite``, ``archive``, ...; ``chatserver/threads.py``),
    or ``thread1``, ``thread2``, ... in the order they were started when it gave
    none (a tree from before the names: the SQLite writer is its first)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for n, (tid, comm, fields) in enumerate(thread_stats(pid)):
        name = "main" if tid == pid else (f"thread{n}" if comm == "python" else comm)
        out[f"{name} user"] = int(fields[11]) / tick
        out[f"{name} sys"] = int(fields[12]) / tick
        out[f"{name} minflt"] = float(fields[7])
    return out


def _strace(pid: int, seconds: float = 4.0) -> str:
    proc = subprocess.run(
        ["timeout", str(seconds), "strace", "-c", "-f", "-p", str(pid)],
        capture_output=True,
        text=True,
    )
    return proc.stderr


def _syscalls(report: str) -> dict[str, int]:
    """``strace -c`` summary → calls per syscall."""
    calls = {}
    for line in report.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].replace(".", "").isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3])
    return calls


def _spy(pid: int, env: Env, args: argparse.Namespace, seconds: float) -> list[Any]:
    """Start py-spy on ``pid`` for ``seconds``: ``<spy>/<run>-gil.txt`` and ``-threads.txt``."""
    from .profile import _py_spy

    spy = _py_spy()
    if spy is None:
        raise SystemExit("py-spy is not installed: scripts/setup --bench")
    args.spy.mkdir(parents=True, exist_ok=True)
    common = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    # Without pausing the process (``--native`` would pause it at every
    # sample, which stalls a server at these rates).
    common += ["--rate", "250", "--format", "raw", "--nonblocking"]
    runs = {"gil": ["--gil"], "threads": ["--threads"]}
    return [
        subprocess.Popen(
            [*common, *flags, "--output", str(args.spy / f"{env.tmp.name}-{kind}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for kind, flags in runs.items()
    ]


# The servers ``cpu`` may measure (``--target``): the default, and the same with
# ``--sqlite-sync normal`` (commits that do not wait for the disk).
CPU_TARGETS = {"chatserver": TARGETS["chatserver"], SYNC_NORMAL.name: SYNC_NORMAL}


def probe_cpu(env: Env, args: argparse.Namespace) -> dict[str, Any]:
    t = Traffic(chats=args.chats, warmup=1.0, measure=args.seconds, drain=3.0)
    stage = Stage(env, CPU_TARGETS[args.target], "probe-cpu", t)
    marks: list[dict[str, int]] = []
    threads: list[dict[str, float]] = []
    written: list[dict[str, int]] = []
    hists: list[dict[str, dict[float, int]]] = []
    skipped: list[int] = []
    try:
        stage.start()
        stage.setup()
        assert stage.server is not None and stage.gen is not None
        pid = stage.server.pid
        http = stage.server.http
        rates = (
            dict(ACTIVE)  # the full run's pairs: messages both ways and typing previews
            if args.pairs
            else {"visitor_msg": args.rate / args.chats, "visitor_typing": 0.0, "agent_msg": 0.0}
        )
        override = {"rates": rates}
        t0 = time.monotonic() + 0.5
        a, b = t0 + t.warmup, t0 + t.warmup + t.measure

        def mark() -> None:
            marks.append(_switches(pid))
            threads.append(_thread_cpu(pid))
            written.append(_io(pid))
            # the tail figures are extra; the run stands without them
            with contextlib.suppress(OSError):
                text = _scrape(http)
                hists.append(_histograms(text))
                skipped.append(_archive_skipped(text))

        timers = [threading.Timer(at - time.monotonic(), mark) for at in (a, b)]
        traced: list[str] = []
        spies: list[subprocess.Popen[bytes]] = []
        if args.spy:
            # py-spy over the window (sampling without pausing: the CPU figure
            # stays roughly comparable); one file with only the samples that
            # hold the GIL, one with every busy thread.
            timers.append(
                threading.Timer(
                    a - time.monotonic(), lambda: spies.extend(_spy(pid, env, args, t.measure))
                )
            )
        if args.strace:
            # Syscalls in the middle of the window (strace slows the server:
            # the CPU figures of such a run are not comparable, the counts are).
            timers.append(
                threading.Timer(a + 1.0 - time.monotonic(), lambda: traced.append(_strace(pid)))
            )
        for timer in timers:
            timer.start()
        replies = stage.gen.command({"op": "run", "t0": t0, "override": override}, 600)
        for timer in timers:
            timer.join()
        for spy in spies:
            spy.wait(t.measure + 60)
        r = _window_result(stage, t, replies, t0)
    finally:
        stage.close()
    cpu = r["server_cpu"] or 0.0
    rate = r["messages_per_s"] or 1.0
    sent = max(1, r["messages_sent"])
    switches = {k: round((marks[1][k] - marks[0][k]) / sent, 2) for k in marks[0]}
    # µs of CPU per message by thread and user/system (clock ticks: rough at
    # short windows), and minor page faults per message
    by_thread = {
        k: round((threads[1].get(k, 0.0) - v) / sent * (1 if k.endswith("minflt") else 1e6), 2)
        for k, v in threads[0].items()
        if threads[1].get(k, 0.0) - v > 0
    }
    out: dict[str, Any] = {}
    if len(written) == 2 and written[0] and written[1]:
        out["io_per_message"] = {
            k: round((written[1][k] - v) / sent, 1) for k, v in written[0].items()
        }
    if len(hists) == 2:
        out["server_tails"] = _tails(hists[0], hists[1])
    if len(skipped) == 2:  # the archive's index fell behind in the window (its thread: spare CPU)
        out["archive_skipped"] = skipped[1] - skipped[0]
    if traced:
        calls = _syscalls(traced[0])
        received = calls.get("recvfrom", 0) or 1  # one read per message at this rate
        out["syscalls_per_message"] = {
            k: round(v / received, 2) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])
        }
    return {
        **out,
        "switches_per_message": switches,
        "thread_us_per_message": by_thread,
        "messages_per_s": rate,
        "delivered_ratio": r["delivered_ratio"],
        "server_cpu": cpu,
        "cpu_us_per_message": round(cpu / rate * 1e6, 1),
        "p50_ms": r["latency_ms"].get("p50"),
        "p99_ms": r["latency_ms"].get("p99"),
        "contended": r["machine"]["contended"],
        "generator_valid": r["generator"]["valid"],
    }


def _reported_window(
    env: Env, t: Traffic, name: str, report: Path, command: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``command`` on chatserver under ``bench.instrument``, its measuring
    window opened with ``SIGUSR2`` and reported with ``SIGUSR1``; the window's
    result and the server's report."""
    stage = Stage(env, TARGETS["chatserver"], name, t)
    try:
        stage.start()
        stage.setup()
        assert stage.server is not None and stage.gen is not None
        pid = stage.server.pid
        t0 = time.monotonic() + 0.5
        a, b = t0 + t.warmup, t0 + t.warmup + t.measure
        timers = [
            threading.Timer(a - time.monotonic(), os.kill, (pid, signal.SIGUSR2)),
            threading.Timer(b - time.monotonic(), os.kill, (pid, signal.SIGUSR1)),
        ]
        for timer in timers:
            timer.start()
        replies = stage.gen.command({**command, "t0": t0}, 600)
        for timer in timers:
            timer.join()
        return _window_result(stage, t, replies, t0), _wait_report(report, 1)
    finally:
        stage.close()


def probe_gc(env: Env, args: argparse.Namespace) -> dict[str, Any]:
    report = env.tmp / "report.json"
    env.instrument = {"CHATBENCH_REPORT": str(report)}
    if args.gc:
        env.instrument["CHATBENCH_GC"] = args.gc
    t = Traffic(chats=args.chats, warmup=2.0, measure=args.seconds, drain=5.0, **ACTIVE)
    r, data = _reported_window(env, t, "probe-gc", report, {"op": "run"})
    gens = _pauses(data["gc_pauses"])
    return {
        "window_s": t.measure,
        "gc_tracked_objects": data["gc_tracked"],
        "gc_threshold": data["gc_threshold"],
        **gens,
        "paused_ms_per_s": round(sum(p[1] for p in data["gc_pauses"]) / t.measure, 2),
        "server_cpu": r["server_cpu"],
        "p50_ms": r["latency_ms"].get("p50"),
        "p99_ms": r["latency_ms"].get("p99"),
        "p999_ms": r["latency_ms"].get("p999"),
        "contended": r["machine"]["contended"],
    }


def probe_calls(env: Env, args: argparse.Namespace) -> dict[str, Any]:
    """Python calls per visitor message on the event loop's thread, by function.

    The ``cpu`` workload at ``--rate`` (at most 200 msg/s: the profiler slows
    the server) with ``cProfile`` on the main thread over the window
    (``bench.instrument``).  Exact counts, not times: what runs per message,
    and since when (``--base``).  The SQLite writer's thread is not profiled.
    """
    report = env.tmp / "report.json"
    env.instrument = {"CHATBENCH_REPORT": str(report), "CHATBENCH_CALLS": "1"}
    rate = min(args.rate, 200.0)
    t = Traffic(chats=args.chats, warmup=2.0, measure=args.seconds, drain=10.0)
    override = {"rates": {"visitor_msg": rate / t.chats, "visitor_typing": 0.0, "agent_msg": 0.0}}
    r, data = _reported_window(env, t, "probe-calls", report, {"op": "run", "override": override})
    sent = max(1, r["messages_sent"])
    calls: dict[str, int] = data["calls"]
    per = sorted(((n / sent, f) for f, n in calls.items()), reverse=True)
    return {
        "messages": sent,
        "delivered_ratio": r["delivered_ratio"],
        "calls_per_message": round(sum(calls.values()) / sent, 1),
        "by_function": {_where(f): round(n, 2) for n, f in per[: args.top]},
    }


def _print_calls(tables: list[dict[str, float]], labels: list[str]) -> None:
    """Calls per message by function, one column per tree, the largest
    differences first (a function renamed between trees shows on both sides)."""
    names = set().union(*tables)
    rows = sorted(
        names,
        key=lambda f: (
            -max(abs(t.get(f, 0.0) - tables[0].get(f, 0.0)) or t.get(f, 0.0) for t in tables)
        ),
    )
    print("\n" + "".join(f"{label.split()[0]:>10}" for label in labels) + "  function")
    for f in rows:
        print("".join(f"{t.get(f, 0.0):10.2f}" for t in tables) + f"  {f}")


def _where(func: str) -> str:
    """``/long/path/site-packages/pkg/mod.py:12(name)`` → ``pkg/mod.py:12(name)``."""
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in func:
            return func.split(marker, 1)[1]
    root = str(ROOT) + "/"
    return (
        func.split("/chatprobe-", 1)[-1].split("/", 2)[-1]
        if "/chatprobe-" in func
        else func.replace(root, "")
    )


def probe_ingest(env: Env, args: argparse.Namespace) -> dict[str, Any]:
    conf = Ingest(
        connections=args.connections if args.connections != 2000 else (200 if args.dense else 600),
        warmup=2.0,
        measure=args.seconds,
        dense=args.dense,
        visits=args.visits,
    )
    r = ingest(env, TARGETS["chatserver"], conf)
    keep = (
        "events_per_cpu_s",
        "events_per_s",
        "batches_per_s",
        "server_cpu",
        "cpu_us_per_batch",
        "loop_cpu_us_per_batch",
        "thread_us_per_batch",
        "errors",
        "stored_bytes_per_event",
        "raw_bytes_per_event",
        "load_average",
    )
    return {k: r[k] for k in keep}


def _spoiled(r: dict[str, Any]) -> bool:
    return bool(r.get("contended")) or r.get("generator_valid") is False


def _print_breakdown(b: dict[str, Any]) -> None:
    print(f"    tracemalloc: {b['bytes_per_connection']} bytes per connection")
    for title in ("by_layer", "by_package", "by_line"):
        print(f"    {title.replace('_', ' ')}:")
        for name, size in b[title]:
            print(f"      {size:8.1f}  {name}")


def _pauses(pauses: list[list[float]]) -> dict[str, Any]:
    """GC pauses by generation: count, median, max and total milliseconds."""
    gens: dict[str, Any] = {}
    for g in (0, 1, 2):
        ms = sorted(p[1] for p in pauses if p[0] == g)
        gens[f"gen{g}"] = (
            {
                "count": len(ms),
                "p50_ms": round(ms[len(ms) // 2], 2),
                "max_ms": round(ms[-1], 2),
                "total_ms": round(sum(ms), 1),
            }
            if ms
            else {"count": 0}
        )
    return gens


def _callgrind(pid: int, command: str) -> None:
    subprocess.run(["callgrind_control", command, str(pid)], capture_output=True, check=True)


def probe_instructions(env: Env, args: argparse.Namespace) -> dict[str, Any]:
    """Instructions per visitor message (all threads), counted by callgrind.

    The server runs under ``valgrind --tool=callgrind`` (about 50 times
    slower), so the rate is low; the counters are zeroed at the start of the
    window and dumped at its end.  The cyclic GC is off (its pauses come at
    arbitrary moments and are measured by the ``gc`` probe).  The count does
    not depend on what else the machine does.
    """
    out = env.tmp / "callgrind"
    out.mkdir(parents=True, exist_ok=True)
    env.instrument = {"CHATBENCH_GC": "off"}  # the collector's work is measured by ``gc``
    env.server_prefix = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}/cg.%p",
        "--separate-threads=yes",
    ]
    rate = min(args.rate, 40.0)
    t = Traffic(chats=args.chats, warmup=2.0, measure=args.seconds, drain=30.0)
    stage = Stage(env, TARGETS["chatserver"], "probe-ir", t)
    try:
        stage.start()
        stage.setup()
        assert stage.server is not None and stage.gen is not None
        pid = stage.server.pid
        t0 = time.monotonic() + 0.5
        a, b = t0 + t.warmup, t0 + t.warmup + t.measure
        timers = [
            threading.Timer(a - time.monotonic(), _callgrind, (pid, "-z")),
            threading.Timer(b - time.monotonic(), _callgrind, (pid, "-d")),
        ]
        for timer in timers:
            timer.start()
        override = {
            "rates": {"visitor_msg": rate / t.chats, "visitor_typing": 0.0, "agent_msg": 0.0}
        }
        replies = stage.gen.command({"op": "run", "t0": t0, "override": override}, 900)
        for timer in timers:
            timer.join()
        r = _window_result(stage, t, replies, t0)
        # One dump (``-d``) with a file per thread: cg.<pid>.1-01, -02, ...
        dumps = sorted(out.glob(f"cg.{pid}.1*"))
        assert dumps, "callgrind wrote no dump"
        threads = [
            next(
                int(line.split()[1])
                for line in dump.read_text().splitlines()
                if line.startswith("summary:")
            )
            for dump in dumps
        ]
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for dump in dumps:
                shutil.copy(dump, args.keep / f"{env.tmp.name}-{dump.name}")
    finally:
        stage.close()
    sent = r["messages_sent"]
    return {
        "messages": sent,
        "delivered_ratio": r["delivered_ratio"],
        "instructions": sum(threads),
        "instructions_per_message": round(sum(threads) / max(1, sent)),
        "per_thread": [round(n / max(1, sent)) for n in threads],
    }


PROBES = {
    "memory": probe_memory,
    "cpu": probe_cpu,
    "gc": probe_gc,
    "instructions": probe_instructions,
    "calls": probe_calls,
    "ingest": probe_ingest,
}
HEADLINE = {
    "memory": "rss_kb_per_connection",
    "cpu": "cpu_us_per_message",
    "gc": "paused_ms_per_s",
    "instructions": "instructions_per_message",
    "calls": "calls_per_message",
    "ingest": "events_per_cpu_s",
}


# What a server of another revision is made of (the rest comes from this tree).
SERVER_PACKAGES = ("chatserver", "recordings", "agent_console", "archive")


def checkout(rev: str, into: Path) -> Path:
    """The server's packages of git revision ``rev`` in a directory of its own (the
    console's and the archive's too: they import the server's modules, so they
    must be of the same revision; a revision without ``archive/`` has none)."""
    into.mkdir(parents=True)
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", rev],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split()
    packages = [p for p in SERVER_PACKAGES if p in listed]
    archive = subprocess.run(
        ["git", "archive", rev, *packages],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.probe", description=__doc__.split("\n")[0])
    p.add_argument("probe", choices=sorted(PROBES))
    p.add_argument("--base", help="git revision to compare with (run alternately)")
    p.add_argument("--work", help="git revision to measure instead of the working tree")
    p.add_argument("--rounds", type=int, default=1, help="runs per checkout (default 1)")
    p.add_argument(
        "--connections",
        type=int,
        default=2000,
        help="memory: idle visitors; ingest: recorders (default 600, --dense 200)",
    )
    p.add_argument("--dense", action="store_true", help="ingest: a busy visitor's full batches")
    p.add_argument(
        "--visits",
        type=int,
        default=0,
        help="ingest: a fixed amount of work, each recorder sending the visit this many times",
    )
    p.add_argument("--breakdown", action="store_true", help="memory: tracemalloc breakdown")
    p.add_argument(
        "--rate", type=float, default=1000.0, help="cpu: visitor messages/s (instructions: <= 40)"
    )
    p.add_argument(
        "--pairs",
        action="store_true",
        help="cpu: the full run's pairs mix (per chat 0.1 visitor and 0.1 agent messages/s, "
        "1 typing preview/s) instead of --rate",
    )
    p.add_argument("--chats", type=int, default=200, help="cpu / gc: conversations")
    p.add_argument("--seconds", type=float, default=8.0, help="cpu / gc: measured seconds")
    p.add_argument("--top", type=int, default=60, help="calls: functions listed")
    p.add_argument("--out", type=Path, help="write every result as JSON here")
    p.add_argument("--keep", type=Path, help="instructions: copy callgrind's dumps here")
    p.add_argument(
        "--strace", action="store_true", help="cpu: count syscalls per message (strace -c)"
    )
    p.add_argument(
        "--spy",
        type=Path,
        help="cpu: py-spy profiles of the window into this folder (the CPU figure is then rough)",
    )
    p.add_argument(
        "--target", choices=sorted(CPU_TARGETS), default="chatserver", help="cpu: the server"
    )
    p.add_argument("--gc", help="memory / gc: the server's gc thresholds, e.g. 700,10,50")
    p.add_argument(
        "--garbage",
        action="store_true",
        help="memory: GC-tracked objects per connection by type, and the cyclic garbage left",
    )
    args = p.parse_args(argv)

    cores = Cores.plan()
    raise_nofile()
    if cores.generator and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores.generator)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    jitter = calibrate_jitter()
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="chatprobe-") as tmp_name:
        tmp = Path(tmp_name)
        trees: list[tuple[str, Path | None]] = [("work", None)]
        if args.work:
            trees = [(f"work {args.work}", checkout(args.work, tmp / "work"))]
        if args.base:
            trees.insert(0, (f"base {args.base}", checkout(args.base, tmp / "base")))
        for round_ in range(args.rounds):
            # Each side first in every other round: a run's place in the round
            # (after a pause, or after the other side's run) must not side with
            # either tree (docs/performance.md, part ten).
            for label, root in trees if round_ % 2 == 0 else trees[::-1]:
                env = Env(
                    cores,
                    1,
                    tmp / f"{label.split()[0]}{round_}",
                    log,
                    jitter_p99_ms=jitter["p99_ms"],
                )
                env.server_root = root
                log(f"{args.probe} {label} round {round_ + 1}/{args.rounds}")
                r = PROBES[args.probe](env, args)
                brief = {k: v for k, v in r.items() if k not in ("breakdown", "by_function")}
                log("  " + json.dumps(brief))
                results.setdefault(label, []).append(r)
    key = HEADLINE[args.probe]
    print(f"\n{args.probe}: {key} (median of the clean runs; * contended or generator-limited)")
    medians = {}
    for label, rs in results.items():
        # Runs where other processes were busy, or the generator lagged, are
        # shown (marked *) but left out of the median unless all were.
        clean = [r for r in rs if not _spoiled(r)] or rs
        values = [r[key] for r in clean if r.get(key) is not None]
        medians[label] = statistics.median(values) if values else None
        shown = [f"{r.get(key)}{'*' if _spoiled(r) else ''}" for r in rs]
        print(f"  {label:>24}: {medians[label]}   runs: {', '.join(shown)}")
        for r in rs:
            if "breakdown" in r:
                _print_breakdown(r["breakdown"])
    if args.base:
        base, work = medians.values()
        if base and work:
            print(f"  work / base: {work / base:.3f}")
    if args.probe == "calls":
        _print_calls([rs[0]["by_function"] for rs in results.values()], list(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

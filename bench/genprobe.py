"""``python bench/genprobe.py``: what the load generator costs per message, A/B.

``bench.probe`` compares servers; this compares *generators*: two checkouts
of the whole tree (``bench/`` included) driving the same server at a fixed
offered rate, alternately (A, B, A, B, ...), each figure taken from the
generator worker itself over the measured window:

* ``gen_us_per_msg``: worker CPU seconds (user + system, ``getrusage``) ÷
  messages it handled (sent + delivered to it), in µs;
* ``gen_sys_share``: the kernel's part of that (from ``/proc/<pid>/stat``);
* with ``--callgrind``, ``gen_instr_per_msg``: user-space instructions per
  message with the worker under ``valgrind --tool=callgrind`` (run it at a
  low rate, e.g. ``--rate 40 --chats 40``): exact and immune to other load.

CPU per message moves with load even so: a starved worker finds several
frames per read and its cost per message falls.  Alternate, and read the
ratios of the same rounds.

Run it as a script, so that each round imports ``bench`` from the checkout
it measures (``PYTHONPATH``)::

    python bench/genprobe.py --base main --rounds 3 --targets ws-relay,chatserver
    python bench/genprobe.py --base main --callgrind --rate 40 --chats 40 --rounds 1

``--base REV`` is a ``git archive`` of that revision in a temporary
directory; the other side is this working tree (``--work REV`` for a
revision instead).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
# Run as a script, Python put bench/ itself first on the path (its profile.py
# would shadow the standard library's): import ``bench`` from PYTHONPATH only.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]


def _user_sys_ticks(pid: int) -> tuple[int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def one(args: argparse.Namespace) -> dict[str, Any]:
    """One run of the checkout on ``sys.path`` (``bench`` imported from there)."""
    import multiprocessing

    from bench.scenarios import Env, Stage, Traffic, _window_result
    from bench.servers import TARGETS, Cores
    from bench.stats import calibrate_jitter
    from bench.worker import raise_nofile

    out_file: Path | None = None
    if args.callgrind:
        out_dir = Path(tempfile.mkdtemp(prefix="genprobe-cg-"))
        wrapper = out_dir / "python"
        wrapper.write_text(
            "#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no "
            f'--callgrind-out-file={out_dir}/cg.%p.out {sys.executable} "$@"\n'
        )
        wrapper.chmod(0o755)
        multiprocessing.get_context("spawn").set_executable(str(wrapper))
    cores = Cores.plan()
    raise_nofile()
    if cores.generator and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores.generator)
    jitter = calibrate_jitter(0.3)
    t = Traffic(chats=args.chats, warmup=1.0, measure=args.seconds, drain=3.0)
    with tempfile.TemporaryDirectory(prefix="genprobe-") as tmp:
        env = Env(
            cores,
            1,
            Path(tmp),
            lambda m: print(m, file=sys.stderr),
            jitter_p99_ms=jitter["p99_ms"],
        )
        stage = Stage(env, TARGETS[args.target], "genprobe", t)
        try:
            stage.start()
            stage.setup()
            assert stage.gen is not None
            pid = stage.gen.procs[0].pid
            rate = args.rate / args.chats
            override = {"rates": {"visitor_msg": rate, "visitor_typing": 0.0, "agent_msg": 0.0}}
            t0 = time.monotonic() + 0.5
            switches = []
            if args.callgrind:
                for at, what in ((t0 + t.warmup, "on"), (t0 + t.warmup + t.measure, "off")):
                    th = threading.Timer(
                        at - time.monotonic(),
                        subprocess.run,
                        (["callgrind_control", "-i", what, str(pid)],),
                        {"capture_output": True},
                    )
                    th.start()
                    switches.append(th)
            ticks0 = _user_sys_ticks(pid)
            replies = stage.gen.command({"op": "run", "t0": t0, "override": override}, 900)
            ticks1 = _user_sys_ticks(pid)
            for th in switches:
                th.join()
            r = _window_result(stage, t, replies, t0)
        finally:
            stage.close()
    if args.callgrind:
        out_file = out_dir / f"cg.{pid}.out"
    cpu = replies[0]["cpu"]
    gen_cpu = cpu["end"] - cpu["start"]
    handled = max(1, r["messages_sent"] + r["deliveries"])
    user, system = (b - a for a, b in zip(ticks0, ticks1, strict=True))
    result = {
        "target": args.target,
        "rate": args.rate,
        "messages_sent": r["messages_sent"],
        "deliveries": r["deliveries"],
        "delivered_ratio": r["delivered_ratio"],
        "gen_us_per_msg": round(gen_cpu / handled * 1e6, 1),
        "gen_core_share": round(gen_cpu / (cpu["end_t"] - cpu["start_t"]), 3),
        "gen_sys_share": round(system / max(1, user + system), 3),
        "server_cpu": r["server_cpu"],
        "foreign_cores": r["machine"]["foreign_cores"],
    }
    if out_file is not None:
        for line in out_file.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                result["gen_instr_per_msg"] = round(int(line.split()[1]) / handled)
        for f in out_dir.iterdir():
            f.unlink()
        out_dir.rmdir()
    return result


def checkout(rev: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", help="git revision to compare with (run alternately)")
    p.add_argument("--work", help="git revision to measure instead of the working tree")
    p.add_argument("--targets", default="ws-relay", help="comma-separated servers")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", type=float, default=1600.0, help="visitor messages/s")
    p.add_argument("--chats", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=6.0, help="measured window")
    p.add_argument("--callgrind", action="store_true", help="instructions per message")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: one run of this target
    p.add_argument("--out", type=Path, help="write every result as JSON here")
    args = p.parse_args()
    if args.one:
        args.target = args.one
        print(json.dumps(one(args)))
        return 0
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="genprobe-trees-") as tmp:
        trees = [("work", ROOT)]
        if args.work:
            trees = [(f"work {args.work}", checkout(args.work, Path(tmp) / "work"))]
        if args.base:
            trees.insert(0, (f"base {args.base}", checkout(args.base, Path(tmp) / "base")))
        for round_ in range(args.rounds):
            for target in args.targets.split(","):
                for label, tree in trees:
                    cmd = [sys.executable, str(HERE), "--one", target]
                    for flag in ("rate", "chats", "seconds"):
                        cmd += [f"--{flag}", str(getattr(args, flag))]
                    if args.callgrind:
                        cmd.append("--callgrind")
                    env = {**os.environ, "PYTHONPATH": str(tree)}
                    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
                    lines = proc.stdout.strip().splitlines()
                    try:
                        r = json.loads(lines[-1])
                    except (IndexError, ValueError):
                        r = {"error": proc.stderr[-1500:]}
                    print(f"round {round_ + 1} {target} {label}: {json.dumps(r)}", flush=True)
                    results.setdefault(f"{target} {label}", []).append(r)
    print("\nmedians (all rounds)")
    for key in ("gen_us_per_msg", "gen_instr_per_msg"):
        for label, rs in results.items():
            values = [r[key] for r in rs if r.get(key)]
            if values:
                print(f"  {key:>18} {label:>24}: {statistics.median(values)}  runs: {values}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

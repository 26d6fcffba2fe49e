"""``python -m bench --profile``: where chatserver spends its time under load.

Runs the pairs workload at a rate that keeps chatserver busy (1000 chats,
0.3 msg/s per side, one preview per second per visitor) and records the
server with ``py-spy record --nonblocking`` (sampling without pausing the
process, so the run is not slowed down), twice over the same window:

* ``--gil``: only samples where a thread holds the GIL, i.e. where Python
  code runs; this is the CPU profile of the interpreter.
* all non-idle threads with ``--threads``: also shows the SQLite writer
  thread while it waits for ``COMMIT`` (fsync) outside the GIL.

Both collapsed-stack files go to ``bench/results/`` and the top functions
(self and inclusive, overall and inside ``chatserver/``) are printed.  The
latency figures of a profiled run are not reported: sampling costs CPU.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .scenarios import Env, Stage, Traffic
from .servers import TARGETS

RESULTS = Path(__file__).resolve().parent / "results"


def _py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else None


def summarize(collapsed: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from a py-spy raw file."""
    self_n: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n_text = line.rpartition(" ")
        if not stack or not n_text.isdigit():
            continue
        n = int(n_text)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        if frames and frames[0].startswith("thread ("):
            threads[frames[0]] += n
            frames = frames[1:]
        if not frames:
            continue
        self_n[frames[-1]] += n
        for f in set(frames):
            incl[f] += n

    def pct(c: Counter[str], only_chatserver: bool = False) -> list[tuple[str, float]]:
        items = [(f, n) for f, n in c.most_common() if not only_chatserver or "chatserver/" in f]
        return [(f, round(100 * n / total, 1)) for f, n in items[:top]]

    return {
        "samples": total,
        "threads": pct(threads),
        "self": pct(self_n),
        "inclusive_chatserver": pct(incl, only_chatserver=True),
        "inclusive": pct(incl),
    }


def _short(frame: str) -> str:
    """``func (path/to/site-packages/pkg/mod.py:12)`` → ``func (pkg/mod.py:12)``."""
    if "(" not in frame:
        return frame
    name, _, where = frame.partition(" (")
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where}"


def profile_run(env: Env, seconds: float, out: Path | None) -> int:
    spy = _py_spy()
    if spy is None:
        print("py-spy is not installed: scripts/setup --bench", file=sys.stderr)
        return 2
    t = Traffic(
        chats=1000,
        visitor_msg=0.3,
        agent_msg=0.3,
        visitor_typing=1.0,
        warmup=1.0,
        measure=seconds + 2.0,
        drain=5.0,
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    files = {
        "gil": RESULTS / f"profile-{stamp}-gil.txt",
        "threads": RESULTS / f"profile-{stamp}-threads.txt",
    }
    stage = Stage(env, TARGETS["chatserver"], "profile", t)
    try:
        stage.start()
        stage.setup()
        assert stage.server is not None
        common = [spy, "record", "--pid", str(stage.server.pid), "--duration", str(int(seconds))]
        common += ["--rate", "200", "--nonblocking", "--format", "raw"]
        procs = [
            subprocess.Popen(
                [*common, "--gil", "--output", str(files["gil"])],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [*common, "--threads", "--output", str(files["threads"])],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        time.sleep(0.2)
        _replies, t0 = stage.run()
        for proc in procs:
            proc.wait(seconds + 30)
        assert stage.monitor is not None
        server_cpu = stage.monitor.cpu(t0 + t.warmup, t0 + t.warmup + t.measure)
    finally:
        stage.close()
    report: dict[str, Any] = {
        "workload": {
            "chats": t.chats,
            "visitor_msg": t.visitor_msg,
            "agent_msg": t.agent_msg,
            "visitor_typing": t.visitor_typing,
        },
        "server_cpu": server_cpu,
        "files": {k: str(v) for k, v in files.items()},
    }
    for kind, path in files.items():
        if not path.exists():
            print(f"py-spy wrote no {kind} profile (ptrace not permitted?)", file=sys.stderr)
            return 2
        report[kind] = summarize(path)
    target = out or RESULTS / f"profile-{stamp}.json"
    target.write_text(json.dumps(report, indent=1))
    print(f"chatserver profile: {t.chats} chats, server CPU {server_cpu}")
    for kind, title in (("gil", "holding the GIL (Python CPU)"), ("threads", "all busy threads")):
        r = report[kind]
        print(f"\n== {title}: {r['samples']} samples")
        if r["threads"]:
            print("threads: " + ", ".join(f"{n} {p}%" for n, p in r["threads"]))
        print("-- self")
        for f, p in r["self"][:20]:
            print(f"{p:5.1f}%  {f}")
        print("-- inclusive, chatserver/")
        for f, p in r["inclusive_chatserver"][:20]:
            print(f"{p:5.1f}%  {f}")
    print(f"\nprofile: {target}")
    return 0

"""Run a server module with measurement hooks: ``python -m bench.instrument MODULE ARGS...``.

Used by ``bench.probe`` to look inside the server under test without
changing it.  Configured by environment variables:

``CHATBENCH_REPORT``       file the report is written to, as JSON, on ``SIGUSR1``
``CHATBENCH_TRACEMALLOC``  frames per traceback; when set, ``tracemalloc`` runs
                           and each report also dumps a snapshot to
                           ``<report>.<n>.snap``
``CHATBENCH_GC=off``       no cyclic GC at all (``gc.disable()``), for counting
                           the instructions of a code path without the
                           collector's, which come at arbitrary moments
``CHATBENCH_GC=A,B,C``     ``gc.set_threshold(A, B, C)`` before the server starts
``CHATBENCH_GARBAGE=1``    each report runs a full collection and lists what it
                           freed, by type (cyclic garbage)
``CHATBENCH_CENSUS=1``     each report counts the objects the GC tracks, by type
``CHATBENCH_CALLS=1``      ``SIGUSR2`` starts ``cProfile`` on the main thread (the
                           event loop's) and each report lists the calls made
                           since, by function: exact counts (the profiler slows
                           the server, so its times are not reported)

On ``SIGUSR1`` (and nothing else) the launcher writes: every cyclic GC pause
since the last ``SIGUSR2`` (generation, milliseconds, objects collected),
the number of objects the collector tracks, and ``gc.get_stats()``.
``SIGUSR2`` clears the recorded pauses (the start of a measuring window).
Recording a pause costs two clock reads per collection.
"""

from __future__ import annotations

import cProfile
import gc
import json
import os
import pstats
import runpy
import signal
import sys
import time
import tracemalloc
from collections import Counter
from types import FrameType
from typing import Any

_pauses: list[tuple[int, float, int]] = []  # generation, ms, collected
_started: list[float] = [0.0]
_reports: list[int] = [0]
_profiler: list[cProfile.Profile] = []


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _pauses.append(
            (info["generation"], (time.perf_counter() - _started[0]) * 1000, info["collected"])
        )


def _report(signum: int, frame: FrameType | None) -> None:
    path = os.environ.get("CHATBENCH_REPORT")
    if not path:
        return
    n = _reports[0] = _reports[0] + 1
    out: dict[str, Any] = {
        "n": n,
        "gc_pauses": list(_pauses),
        "gc_tracked": len(gc.get_objects()),
        "gc_frozen": gc.get_freeze_count(),
        "gc_stats": gc.get_stats(),
        "gc_threshold": gc.get_threshold(),
    }
    if os.environ.get("CHATBENCH_CENSUS"):
        out["census"] = Counter(type(o).__qualname__ for o in gc.get_objects())
    if os.environ.get("CHATBENCH_GARBAGE"):
        # What a full collection would free, by type (then freed for real).
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        gc.set_debug(0)
        kinds = Counter(type(o).__qualname__ for o in gc.garbage)
        gc.garbage.clear()
        out["garbage"] = kinds.most_common(40)
    if _profiler:
        _profiler[0].disable()
        stats = pstats.Stats(_profiler[0])
        out["calls"] = {
            f"{file}:{line}({name})": counts[1]  # primitive and recursive calls alike
            for (file, line, name), counts in stats.stats.items()  # type: ignore[attr-defined]
        }
    if tracemalloc.is_tracing():
        snap = f"{path}.{n}.snap"
        tracemalloc.take_snapshot().dump(snap)
        out["snapshot"] = snap
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(out, fh)
    os.replace(tmp, path)


def _reset(signum: int, frame: FrameType | None) -> None:
    _pauses.clear()
    if os.environ.get("CHATBENCH_CALLS"):
        # Called on the main thread (signal handlers run there): the event loop's.
        _profiler[:] = [cProfile.Profile()]
        _profiler[0].enable()


def main() -> None:
    frames = os.environ.get("CHATBENCH_TRACEMALLOC")
    if frames:
        tracemalloc.start(int(frames))
    setting = os.environ.get("CHATBENCH_GC")
    if setting == "off":
        gc.disable()
    elif setting:
        gc.set_threshold(*(int(n) for n in setting.split(",")))
    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR1, _report)
    signal.signal(signal.SIGUSR2, _reset)
    module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

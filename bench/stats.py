"""Turning the workers' raw samples into figures, and judging a run's validity.

Percentiles are exact (nearest rank over every sample), in milliseconds.
``Samples`` merges the ``Recorder`` exports of all workers and answers
questions about any time window of scheduled send times, so one run can be
cut into phases (before and during a stall, for example).

A run is **invalid** when the generator, not the server, limited it:

* a worker used more than ``GEN_CPU_MAX`` of its core during the window, or
* the generator's own timers ran late: p99 lateness over the larger of
  ``GEN_LATE_FLOOR`` and twice the machine's idle timer jitter (measured at
  start, ``calibrate_jitter``), and over ``GEN_LATE_SHARE`` of the measured
  latency p99.  A late timer means the worker's event loop was busy, so
  arrival times it records carry about that much extra delay: acceptable
  when it is small next to what is measured, not otherwise.

A run is **contended** (reported, not invalid) when processes other than the
server and the generator used more than ``FOREIGN_CPU_MAX`` cores during it:
the machine was not quiet and figures are less repeatable.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

GEN_CPU_MAX = 0.90  # of one core, per worker process
GEN_LATE_FLOOR = 0.005  # seconds
GEN_LATE_SHARE = 0.25  # of the measured latency p99
FOREIGN_CPU_MAX = 0.25  # cores used by other processes during a run


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values: list[float]) -> dict[str, Any]:
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 50) * 1000, 3),
        "p99": round(percentile(ordered, 99) * 1000, 3),
        "p999": round(percentile(ordered, 99.9) * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
        "mean": round(sum(ordered) / len(ordered) * 1000, 3),
    }


class Samples:
    """All workers' samples of one run."""

    def __init__(self, exports: list[dict[str, Any]]) -> None:
        self.arrays: dict[str, array[float]] = {}
        names = (
            "msg_sent_t",
            "msg_rcpt",
            "msg_dlv_t",
            "msg_dlv_lat",
            "prev_sent_t",
            "prev_rcpt",
            "prev_dlv_t",
            "prev_dlv_lat",
            "ack_t",
            "ack_lat",
            "late_t",
            "late",
        )
        for name in names:
            merged = array("d")
            for e in exports:
                part = array("d")
                part.frombytes(e[name])
                merged.extend(part)
            self.arrays[name] = merged
        self.counts: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.closes: dict[str, int] = {}
        self.reconnect: list[float] = []
        self.recovered: list[float] = []
        for e in exports:
            for key, target in (
                ("counts", self.counts),
                ("errors", self.errors),
                ("closes", self.closes),
            ):
                for k, v in e[key].items():
                    target[k] = target.get(k, 0) + v
            self.reconnect += e["reconnect"]
            self.recovered += e["recovered"]

    def _pairs(self, t_name: str, v_name: str, a: float, b: float) -> list[float]:
        return [
            v for t, v in zip(self.arrays[t_name], self.arrays[v_name], strict=True) if a <= t < b
        ]

    def window(self, a: float, b: float) -> dict[str, Any]:
        """Figures for everything *scheduled* in ``[a, b)``."""
        seconds = b - a
        rcpt = self._pairs("msg_sent_t", "msg_rcpt", a, b)
        dlv = self._pairs("msg_dlv_t", "msg_dlv_lat", a, b)
        prcpt = self._pairs("prev_sent_t", "prev_rcpt", a, b)
        pdlv = self._pairs("prev_dlv_t", "prev_dlv_lat", a, b)
        expected = int(sum(rcpt))
        pexpected = int(sum(prcpt))
        return {
            "seconds": round(seconds, 3),
            "messages_sent": len(rcpt),
            "messages_per_s": round(len(rcpt) / seconds, 1) if seconds else 0,
            "deliveries_expected": expected,
            "deliveries": len(dlv),
            "delivered_ratio": round(len(dlv) / expected, 6) if expected else None,
            "deliveries_per_s": round(len(dlv) / seconds, 1) if seconds else 0,
            "latency_ms": summary_ms(dlv),
            "previews_sent": len(prcpt),
            "previews_expected": pexpected,
            "previews_delivered": len(pdlv),
            "preview_latency_ms": summary_ms(pdlv),
            "ack_latency_ms": summary_ms(self._pairs("ack_t", "ack_lat", a, b)),
            "generator_late_ms": summary_ms(self._pairs("late_t", "late", a, b)),
        }


def cpu_us_per_message(cpu_share: float | None, messages_per_s: float | None) -> float | None:
    """CPU microseconds per message from a core share (CPU s per s) and a message rate.

    ``1e6 / cpu_us_per_message`` is the rate one fully busy core would carry
    if the cost per message stayed the same: an estimate of capacity, not a
    measurement.  The cost falls as the load grows (more frames per read and
    per loop wake-up: the bare relay's went from 300 to 135 µs between 400
    and 3200 msg/s), so a server measured far below a full core is estimated
    short of its capacity.
    """
    if not cpu_share or not messages_per_s:
        return None
    return round(cpu_share / messages_per_s * 1e6, 1)


def generator_check(
    replies: list[dict[str, Any]], window: dict[str, Any], jitter_p99_ms: float = 0.0
) -> dict[str, Any]:
    """Was the generator the bottleneck?  See the module docstring."""
    cpu = []
    for r in replies:
        c = r.get("cpu", {})
        if "start" in c and "end" in c and c["end_t"] > c["start_t"]:
            cpu.append(round((c["end"] - c["start"]) / (c["end_t"] - c["start_t"]), 3))
    late = window.get("generator_late_ms", {})
    reasons = []
    if cpu and max(cpu) > GEN_CPU_MAX:
        reasons.append(f"generator worker CPU {max(cpu):.0%} > {GEN_CPU_MAX:.0%} of a core")
    late_p99 = late.get("p99", 0.0)
    measured_p99 = window.get("latency_ms", {}).get("p99") or 0.0
    allowed = max(GEN_LATE_FLOOR * 1000, 2 * jitter_p99_ms, GEN_LATE_SHARE * measured_p99)
    if late_p99 > allowed:
        reasons.append(f"generator timers p99 {late_p99:.1f} ms late (allowed {allowed:.1f} ms)")
    return {
        "valid": not reasons,
        "reasons": reasons,
        "worker_cpu": cpu,
        "late_p99_ms": late_p99,
        "late_allowed_ms": round(allowed, 2),
        "late_max_ms": late.get("max"),
    }


def calibrate_jitter(seconds: float = 1.0, period: float = 0.002) -> dict[str, float]:
    """Timer wake-up lateness of this machine when idle (``time.sleep``), in ms."""
    import time

    late = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        time.sleep(period)
        late.append(time.monotonic() - t - period)
    ordered = sorted(late)
    return {
        "p50_ms": round(percentile(ordered, 50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def system_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (``/proc/stat``)."""
    import os

    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

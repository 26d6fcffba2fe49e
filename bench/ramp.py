"""The throughput ramp: the offered message rate stepped up until the server fails.

``throughput`` drives visitor messages only (no replies, no previews) at
each step's total rate and judges the step by the SLO: at least 99.9 % of
the messages delivered and the p99 under ``Ramp.slo_p99_ms``.  The rate
goes through ``Ramp.steps``, then keeps doubling (``extend`` times at
most) while every step passes, so each server is driven until it fails and
its ratio to another is measured, not estimated; ``bisect`` steps then
narrow the gap between the last pass and the first failure.

When the generator is the bottleneck (a worker above 90 % of its core, or
its timers late; ``stats.py``), the step is run again with one more
generator process, up to ``max_workers``, on a fresh stage (a server
restarted and every client connected again: the workers' groups are dealt
out at start).  Only when no more processes are allowed does the ramp end
with ``limited_by = "generator"``.  Every ramp is bounded: by the steps, the
doublings and ``budget_s`` seconds of wall time (``"time budget"``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from .scenarios import Env, Stage, Traffic, _generator_us_per_msg, _window_result
from .servers import Target
from .stats import cpu_us_per_message


@dataclass(frozen=True)
class Ramp:
    """How one throughput ramp steps (``Plan`` holds one per plan)."""

    steps: tuple[float, ...]
    slo_p99_ms: float = 50.0
    bisect: int = 2
    retries: int = 2  # repeats of a contended or generator-limited step
    extend: int = 0  # doublings past the last step while every step passes
    budget_s: float = 600.0  # one server's ramp, wall time at most
    max_workers: int = 1  # generator processes when one saturates

    def rates(self) -> list[float]:
        """The rates tried while every step passes (bisection aside)."""
        out = list(self.steps)
        for _ in range(self.extend):
            out.append(out[-1] * 2)
        return out


def throughput(env: Env, target: Target, t: Traffic, ramp: Ramp) -> dict[str, Any]:
    """Step the offered visitor message rate up until ``target`` fails (module docstring)."""
    started = time.monotonic()
    workers = max(1, min(env.workers, ramp.max_workers))
    stage = Stage(env, target, "throughput", t, workers=workers)
    out: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    limited_by = "steps exhausted"

    def cool_down() -> None:
        """After an overload, wait for the server to go quiet before the next step."""
        assert stage.monitor is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = time.monotonic()
            cpu = stage.monitor.cpu(now - 1.0, now)
            if cpu is not None and cpu < 0.1:
                return

    def attempt(total: float) -> dict[str, Any]:
        tried: list[dict[str, Any]] = []
        for _ in range(ramp.retries + 1):
            tried.append(_step(env, target, stage, t, total, ramp.slo_p99_ms, workers))
            if not tried[-1]["passed"]:
                cool_down()
            r = tried[-1]
            if r["generator"]["valid"] and not r["machine"]["contended"]:
                break
        # Judge the step by its cleanest try: valid and quiet, else valid, else the last.
        step = next(
            (s for s in tried if s["generator"]["valid"] and not s["machine"]["contended"]),
            next((s for s in tried if s["generator"]["valid"]), tried[-1]),
        )
        step["tries"] = len(tried)
        return step

    def measured(total: float) -> dict[str, Any]:
        """``attempt``, with one more generator process while the generator saturates."""
        nonlocal stage, workers
        while True:
            step = attempt(total)
            if step["generator"]["valid"] or workers >= ramp.max_workers:
                out.append(step)
                return step
            workers += 1
            env.log(f"    generator saturated at {total:.0f}/s: again with {workers} processes")
            stage.close()
            stage = Stage(env, target, "throughput", t, workers=workers)
            stage.start()
            stage.setup()

    try:
        stage.start()
        setup = stage.setup()
        lo: float | None = None
        hi: float | None = None
        for total in ramp.rates():
            if time.monotonic() - started > ramp.budget_s:
                limited_by = "time budget"
                break
            step = measured(total)
            if not step["generator"]["valid"]:
                limited_by = "generator"
                break
            if not step["passed"]:
                hi = total
                limited_by = "server"
                break
            lo, best = total, step
        if hi is not None:  # a step failed: bisect between the last to pass and it
            for _ in range(ramp.bisect):
                mid = round(((lo or 0) + hi) / 2 / 10) * 10
                if mid in (lo, hi) or mid <= 0 or time.monotonic() - started > ramp.budget_s:
                    break
                step = measured(mid)
                if not step["generator"]["valid"]:
                    break
                if step["passed"]:
                    lo, best = mid, step
                else:
                    hi = mid
        us = best["server_cpu_us_per_msg"] if best else None
        return {
            "steps": out,
            "max_msgs_per_s": best["messages_per_s"] if best else 0.0,
            "best": best,
            # Server CPU per visitor message at the best step, and what one
            # core would carry at that cost (an estimate; see stats.cpu_us_per_message).
            "server_cpu_us_per_msg": us,
            "capacity_estimate_msgs_per_s": round(1e6 / us) if us else None,
            "backing_cpu_us_per_msg": best.get("backing_cpu_us_per_msg") if best else None,
            "first_failing_offered": hi,
            "limited_by": limited_by,
            "generator_workers": workers,
            "contended": bool(best and best["machine"]["contended"]),
            "slo_p99_ms": ramp.slo_p99_ms,
            "setup": setup,
            "config": asdict(t),
            "ramp": asdict(ramp),
        }
    finally:
        stage.close()


def _step(
    env: Env, target: Target, stage: Stage, t: Traffic, total: float, slo: float, workers: int
) -> dict[str, Any]:
    """One run of the stage at ``total`` visitor messages per second, judged by the SLO."""
    override = {"rates": {"visitor_msg": total / t.chats, "visitor_typing": 0.0, "agent_msg": 0.0}}
    replies, t0 = stage.run(override)
    r = _window_result(stage, t, replies, t0)
    lat = r["latency_ms"]
    ok_delivery = (r["delivered_ratio"] or 0) >= 0.999 and not r["errors"]
    ok_latency = lat.get("p99", math.inf) <= slo
    step = {
        "offered_msgs_per_s": total,
        "messages_per_s": r["messages_per_s"],
        "deliveries_per_s": r["deliveries_per_s"],
        "delivered_ratio": r["delivered_ratio"],
        "p50_ms": lat.get("p50"),
        "p99_ms": lat.get("p99"),
        "server_cpu": r["server_cpu"],
        "server_cpu_us_per_msg": cpu_us_per_message(r["server_cpu"], r["messages_per_s"]),
        "backing_cpu": r["backing_cpu"],
        "backing_cpu_us_per_msg": cpu_us_per_message(r["backing_cpu"], r["messages_per_s"]),
        "generator_cpu_us_per_msg": _generator_us_per_msg(replies, r),
        "generator": r["generator"],
        "generator_workers": workers,
        "machine": r["machine"],
        "errors": r["errors"],
        "passed": ok_delivery and ok_latency,
    }
    env.log(
        f"    {target.name}: offered {total:.0f}/s → {r['deliveries_per_s']:.0f}/s "
        f"delivered ({r['delivered_ratio']}), p99 {lat.get('p99')} ms, server CPU "
        f"{r['server_cpu']} ({step['server_cpu_us_per_msg']} µs/msg), generator "
        f"{'ok' if r['generator']['valid'] else 'SATURATED'} x{workers} "
        f"({step['generator_cpu_us_per_msg']} µs/msg handled)"
        f"{', contended' if r['machine']['contended'] else ''}"
    )
    return step

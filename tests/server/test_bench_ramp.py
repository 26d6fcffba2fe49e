"""The throughput ramp (``bench/ramp.py``) against a real server: it goes past
its listed steps while they pass, ends at the first failure, and reports
each server's ratio as measured (exact or a bound) beside the CPU estimate.

Small rates and a few chats: a harness check, not a timed result.  The
relay (``bench/baseline_ws.py``) is the server: it starts in well under a
second and has no store, so the steps are short.
"""

from __future__ import annotations

from pathlib import Path

from bench.ramp import Ramp, throughput
from bench.report import _ratio_rows
from bench.scenarios import Env, Traffic
from bench.servers import ALL_TARGETS, Cores

TRAFFIC = Traffic(chats=4, capacity=4, warmup=0.3, measure=0.8, drain=1.0)


def env(tmp: Path) -> Env:
    return Env(Cores.plan(), 1, tmp, lambda _: None, max_workers=1)


def test_rates_extend_past_the_steps() -> None:
    assert Ramp((100.0, 200.0), extend=3).rates() == [100, 200, 400, 800, 1600]
    assert Ramp((100.0,)).rates() == [100]


def test_the_ramp_extends_while_steps_pass(tmp_path: Path) -> None:
    ramp = Ramp((20.0,), slo_p99_ms=5000.0, retries=0, extend=1, budget_s=60.0)
    r = throughput(env(tmp_path), ALL_TARGETS["ws-relay"], TRAFFIC, ramp)
    offered = [s["offered_msgs_per_s"] for s in r["steps"]]
    assert r["config"]["chats"] == 4 and r["ramp"]["extend"] == 1
    valid = [s["generator"]["valid"] for s in r["steps"]]
    if all(valid):
        assert offered == [20.0, 40.0]  # the listed step, then one doubling
        assert all(s["passed"] for s in r["steps"])
        assert r["limited_by"] == "steps exhausted"
        assert r["max_msgs_per_s"] > 30
    else:
        # A machine busy enough to make the generator's timers late (the CI's
        # two cores under both test workers): the ramp ends there, and says so.
        assert valid[-1] is False and all(valid[:-1])
        assert r["limited_by"] == "generator"
        assert offered == [20.0, 40.0][: len(offered)]


def test_the_ramp_stops_at_the_first_failure(tmp_path: Path) -> None:
    # An SLO no server meets (p99 under a microsecond): the first step fails and
    # no higher one is tried (no bisection here, to keep the test short).
    ramp = Ramp((20.0, 40.0), slo_p99_ms=0.001, retries=0, bisect=0, extend=2, budget_s=60.0)
    r = throughput(env(tmp_path), ALL_TARGETS["ws-relay"], TRAFFIC, ramp)
    (step,) = r["steps"]
    assert not step["passed"]
    assert r["best"] is None and r["max_msgs_per_s"] == 0.0
    if step["generator"]["valid"]:
        assert r["limited_by"] == "server" and r["first_failing_offered"] == 20.0
    else:  # a busy machine (see above): the server was not judged
        assert r["limited_by"] == "generator" and r["first_failing_offered"] is None


def test_ratio_rows_say_whether_the_measured_ratio_is_exact() -> None:
    def result(rate: float, limited_by: str, chats: int) -> dict[str, object]:
        best = {"messages_per_s": rate, "server_cpu_us_per_msg": 1e6 / rate / 2}
        return {
            "max_msgs_per_s": rate,
            "best": best,
            "server_cpu_us_per_msg": best["server_cpu_us_per_msg"],
            "limited_by": limited_by,
            "config": {"chats": chats},
        }

    tp = {
        "chatserver": result(1000, "server", 1000),
        "socketio": result(500, "server", 1000),
        "ws-relay": result(4000, "generator", 1000),
    }
    rows = _ratio_rows(tp)
    assert rows == [
        ["socketio", "1000 / 1000", "**2.00x**", "2.00x", "exact (both failed the SLO)"],
        ["ws-relay", "1000 / 1000", "**0.25x**", "0.25x", "a bound (ws-relay generator)"],
    ]

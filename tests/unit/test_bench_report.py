"""The benchmark's result arithmetic: which run of a repeated scenario is reported, and how."""

from __future__ import annotations

from typing import Any

from bench.report import checks, render
from bench.scenarios import median_run


def run(p99: float, *, valid: bool = True) -> dict[str, Any]:
    return {
        "config": {"chats": 1000, "fanout": 1},
        "latency_ms": {"p50": 1.0, "p99": p99, "p999": p99 * 2},
        "preview_latency_ms": {"p99": 3.0},
        "ack_latency_ms": {"p99": p99},
        "generator": {"valid": valid, "reasons": [] if valid else ["timers late"]},
        "machine": {"contended": False},
        "server_cpu": 0.4,
    }


def test_the_median_run_is_reported_with_every_run() -> None:
    chosen = median_run([run(30.0), run(8.0), run(12.0)])
    assert chosen["latency_ms"]["p99"] == 12.0
    assert [r["p99"] for r in chosen["repeats"]] == [30.0, 8.0, 12.0]


def test_invalid_and_failed_runs_are_not_the_median() -> None:
    runs = [run(5.0, valid=False), run(9.0), {"error": "boom"}, run(11.0)]
    chosen = median_run(runs)
    assert chosen["latency_ms"]["p99"] == 11.0  # of the valid 9 and 11, the higher
    assert len(chosen["repeats"]) == 4 and chosen["repeats"][2] == {"error": "boom"}
    assert median_run([{"error": "a"}, {"error": "b"}]) == {"error": "b"}


def test_the_target_and_the_table_show_every_run() -> None:
    result = {"scenarios": {"pairs": {"chatserver": median_run([run(3.0), run(4.5), run(40.0)])}}}
    (target,) = checks(result)
    assert target["status"] == "pass"  # the target: under 5 ms
    assert "median of 3 runs (3.0, 4.5, 40.0)" in target["measured"]
    assert "| 4.5 (3.0 / 4.5 / 40.0) |" in render(result)

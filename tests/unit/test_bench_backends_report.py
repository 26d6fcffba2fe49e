"""The ``--backends`` tables (``bench/backends_report.py``) from a made-up result."""

from __future__ import annotations

from typing import Any

from bench.backends_report import ingest_rows, relay_rows, render_backends


def _step(offered: float, passed: bool, valid: bool = True) -> dict[str, Any]:
    return {
        "offered_msgs_per_s": offered,
        "messages_per_s": offered,
        "p99_ms": 12.0 if passed else 80.0,
        "server_cpu_us_per_msg": 500.0,
        "backing_cpu_us_per_msg": 200.0,
        "generator": {"valid": valid},
        "passed": passed,
    }


def _result() -> dict[str, Any]:
    pairs = {
        "latency_ms": {"p50": 3.0, "p99": 9.5},
        "delivered_ratio": 0.9995,
        "server_cpu": 0.123,
        "backing_cpu": None,
        "config": {"chats": 200},
    }
    return {
        "meta": {
            "plan": "backends-quick",
            "load_average": [1.0, 2.0, 3.0],
            "backing_versions": {"redis": "Redis server v=7.0", "postgresql": "postgres 15"},
        },
        "scenarios": {
            "pairs": {
                "chatserver": pairs,
                "pg+redis-x2": {**pairs, "backing_cpu": 0.05},
                "ws-relay": pairs,  # not a chatserver backend: no row
            },
            "throughput": {
                "chatserver": {
                    "best": _step(800, True),
                    "max_msgs_per_s": 800.0,
                    "limited_by": "server",
                    "steps": [_step(800, True), _step(1600, False)],
                },
                "pg+redis-x2": {  # nothing passed on a loaded machine
                    "best": None,
                    "max_msgs_per_s": 0.0,
                    "limited_by": "server",
                    "steps": [_step(400, False), _step(800, False, valid=False)],
                },
            },
            "ingest": {
                "chatserver": {
                    "events_per_s": 1000,
                    "batches_per_s": 100,
                    "server_cpu": 0.5,
                    "backing_cpu": None,
                    "config": {"connections": 100},
                },
                "pg+redis-x2": {"error": "RuntimeError: boom"},
            },
        },
    }


def test_relay_rows() -> None:
    rows = relay_rows(_result()["scenarios"])
    assert [r[:2] for r in rows] == [["SQLite", 1], ["PostgreSQL + Redis", 2]]
    sqlite, pg = rows
    assert sqlite[2:8] == [200, 3.0, 9.5, "99.95 %", "0.12", "-"]
    assert sqlite[8:] == ["800", 12.0, "800", 500.0, 200.0]
    # No step passed: throughput 0, and the CPU cost comes from the busiest valid step.
    assert pg[7] == "0.05"
    assert pg[8:] == ["0", None, "400", 500.0, 200.0]


def test_ingest_rows_and_render() -> None:
    rows = ingest_rows(_result()["scenarios"])
    assert rows[0] == ["SQLite", 1, 100, 1000, 100, "0.50", "-", 2000]
    assert rows[1][:3] == ["PostgreSQL + Redis", 2, "error"]
    text = render_backends(_result())
    assert "## chatserver by backend (backends-quick, load average 1.00, 2.00, 3.00)" in text
    assert "Redis server v=7.0; postgres 15" in text
    assert "| PostgreSQL + Redis | 2 | error |" in text
    assert "ws-relay" not in text

"""The backend targets of the benchmark run: ``python -m bench --backends --smoke``.

Not a timed test: it checks that the two-process targets on Redis and on
PostgreSQL + Redis (``bench/backing.py``: a real ``redis-server`` and a real
PostgreSQL that the run starts itself) still run the relay and the ingest
scenarios end to end, so they cannot rot: every message delivered, no gap
in the recovered history, both processes serving connections on the
backend named, recording batches acknowledged, and the by-backend tables
printed.  Skipped, with the reason, when redis-server or initdb is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.pgserver import pg_bin

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"redis-x2": "redis", "pg+redis-x2": "postgres+redis"}


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server binary")
@pytest.mark.skipif(pg_bin() is None, reason="no PostgreSQL initdb binary")
def test_bench_backends_smoke(tmp_path: Path) -> None:
    out = tmp_path / "backends.json"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "bench", "--backends", "--smoke"),
            *("--targets", ",".join(TARGETS), "--out", str(out)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["meta"]["plan"] == "backends-smoke"
    scenarios = result["scenarios"]
    assert set(scenarios) == {"pairs", "ingest"}

    for target, backend in TARGETS.items():
        pairs = scenarios["pairs"][target]
        assert "error" not in pairs, pairs.get("error")
        assert pairs["messages_sent"] > 0
        assert pairs["deliveries"] == pairs["deliveries_expected"] > 0
        assert pairs["errors"] == {} and pairs["unexpected_closes"] == {}
        verify = pairs["verify"]
        assert verify["replies"] > 0
        assert verify.get("gaps", 0) == verify.get("lost", 0) == 0
        assert verify.get("stored_duplicates", 0) == 0
        processes = pairs["setup"]["processes"]
        assert [p["backend"] for p in processes] == [backend, backend]
        assert all(p["connections"] > 0 for p in processes), processes  # both serve
        assert pairs["backing_cpu"] is not None

        ingest = scenarios["ingest"][target]
        assert "error" not in ingest, ingest.get("error")
        assert ingest["events_per_s"] > 0 and ingest["errors"] == 0
        assert ingest["processes"] == 2
        assert ingest["server_counts"]["batches"] > 0
        # CPU per batch, and the share of it on the processes' event loops
        # Both from /proc at clock-tick resolution, sampled apart: over a smoke
        # window the loop's share may read a tick above the whole (CI saw 3571 vs 3214).
        assert ingest["cpu_us_per_batch"] > 0 and ingest["loop_cpu_us_per_batch"] > 0

    assert "## chatserver by backend" in proc.stdout
    assert "| PostgreSQL + Redis | 2 |" in proc.stdout
    assert "| Redis | 2 |" in proc.stdout

"""The benchmark harness works: ``python -m bench --smoke`` (a few pairs for a second).

This is not a timed test: it checks that the suite runs end to end against a
real chatserver process and that its JSON result has the expected shape,
every message sent was delivered and the recovery check found no gap.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())

    assert set(result) >= {"meta", "scenarios", "checks"}
    meta = result["meta"]
    assert meta["plan"] == "smoke"
    for key in ("cpu", "cores", "python", "pinning", "timer_jitter", "versions", "elapsed_s"):
        assert key in meta

    pairs = result["scenarios"]["pairs"]["chatserver"]
    assert "error" not in pairs, pairs.get("error")
    for key in (
        "messages_sent",
        "deliveries_expected",
        "deliveries",
        "delivered_ratio",
        "latency_ms",
        "preview_latency_ms",
        "ack_latency_ms",
        "generator",
        "machine",
        "server_cpu",
        "verify",
    ):
        assert key in pairs, key
    assert pairs["messages_sent"] > 0
    assert pairs["deliveries"] == pairs["deliveries_expected"] > 0
    assert pairs["previews_delivered"] == pairs["previews_expected"]
    assert set(pairs["latency_ms"]) >= {"n", "p50", "p99", "p999", "max"}
    assert pairs["errors"] == {} and pairs["unexpected_closes"] == {}
    verify = pairs["verify"]
    assert verify["replies"] > 0
    assert verify.get("gaps", 0) == verify.get("lost", 0) == verify.get("stored_duplicates", 0) == 0
    assert "| pairs | chatserver |" in proc.stdout

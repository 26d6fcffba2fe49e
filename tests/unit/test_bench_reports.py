"""``python -m bench.reports`` at a small size: it fills, rebuilds and times."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bench.reports import main


def test_bench_reports_small(tmp_path: Path) -> None:
    args = argparse.Namespace(
        conversations=300, messages=6, days=30, runs=1, dir=str(tmp_path), database=None
    )
    out = asyncio.run(main(args))
    assert out["conversations"] == out["rebuilt"] == 300
    assert out["rows_in_report"] == 300 and out["messages"] >= 300
    for key in ("report_all_s", "report_month_s", "report_all_agent_s", "report_all_cpu_s"):
        assert 0 < out[key] < 30, key

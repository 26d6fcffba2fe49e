"""``bench.signals`` measures the signal detection on the demo visit's batches."""

from __future__ import annotations

from bench.signals import measure


def test_measure_times_both_steps_over_the_demo_visit() -> None:
    got = measure(rounds=1)
    assert got["events"] > 100 and got["batches"] > 10
    assert got["summarize_ns_per_event"] > 0 and got["detect_ns_per_event"] > 0

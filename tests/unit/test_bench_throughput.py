"""The throughput table's CPU-per-message figures (``bench/report.py``) on a result dict."""

from __future__ import annotations

from typing import Any

from bench.report import checks, cpu_ratio, render, server_us_per_msg
from bench.stats import cpu_us_per_message


def ramp(rate: float, cpu: float, limited_by: str, extra: bool = True) -> dict[str, Any]:
    """A throughput result as ``scenarios.throughput`` writes it (``extra``: new fields)."""
    best = {
        "offered_msgs_per_s": rate,
        "messages_per_s": rate,
        "p99_ms": 5.0,
        "server_cpu": cpu,
        "passed": True,
        "generator": {"valid": True},
    }
    failed = {**best, "offered_msgs_per_s": rate * 2, "passed": False}
    if extra:
        best["server_cpu_us_per_msg"] = cpu_us_per_message(cpu, rate)
    r: dict[str, Any] = {
        "steps": [best, failed],
        "max_msgs_per_s": rate,
        "limited_by": limited_by,
        "slo_p99_ms": 50.0,
    }
    if extra:
        us = best["server_cpu_us_per_msg"]
        r |= {"best": best, "server_cpu_us_per_msg": us, "capacity_estimate_msgs_per_s": 1e6 / us}
    return r


def test_cpu_per_message_and_estimate_ratio() -> None:
    chatserver = ramp(2000.0, 0.9, "server")  # 450 µs per message
    relay = ramp(3200.0, 0.48, "generator")  # 150 µs per message
    old_relay = ramp(3200.0, 0.48, "generator", extra=False)  # a result file from before
    assert cpu_us_per_message(0.9, 2000.0) == 450.0
    assert cpu_us_per_message(None, 2000.0) is None
    assert server_us_per_msg(chatserver) == 450.0
    assert server_us_per_msg(old_relay) == 150.0
    assert cpu_ratio(chatserver, relay) == cpu_ratio(chatserver, old_relay) == 0.33

    results = {"scenarios": {"throughput": {"chatserver": chatserver, "ws-relay": relay}}}
    text = render(results)
    assert "| server CPU µs / msg | 1-core estimate msg/s |" in text
    assert "| chatserver | 2000.0 | 5.0 | 0.9 | 450.0 | 2222 |" in text
    assert "| ws-relay | 3200.0 | 5.0 | 0.5 | 150.0 | 6667 |" in text
    assert "| chatserver /  | chats | measured | estimate from CPU / msg | measured is |" in text
    assert "| ws-relay | ? / ? | **0.62x** | 0.33x | a bound (ws-relay generator) |" in text
    (relay_check,) = [c for c in checks(results) if "websockets" in c["target"]]
    assert relay_check["status"] == "inconclusive"  # the measured ratio is still only a bound
    assert relay_check["cpu_estimate"] == 0.33
    assert "estimate from server CPU per message 0.33x" in relay_check["measured"]

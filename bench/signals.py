"""``python -m bench.signals``: what finding signals costs the ingest, per event.

Signals (``recordings/signals.py``) are found while batches are ingested:
``events.summarize_json`` notes each batch's DOM-change and input times beside
its marks, and ``signals.detect`` judges the batch's clicks, errors, requests
and submits against the recording's ``Watch``.  This times both over the
batches of the recorded demo visit (``fixtures/demo_session.json.gz``, the
ingest scenario's workload) in one process, alternately, and prints the
median nanoseconds per event of each, and detection's share of a given
ingest cost per event (``--ingest-events-per-cpu-s``, from ``bench.probe
ingest``).  The summary's extra bookkeeping is measured by A/B of the whole
ingest: ``python -m bench.probe ingest --base 42808e5`` (the commit before
signals).
"""

from __future__ import annotations

import argparse
import statistics
import time

from recordings.events import summarize_json
from recordings.ingest import SIGNAL_INPUTS
from recordings.signals import Watch, detect

from .ingest import _raw, load_batches


def measure(rounds: int = 15) -> dict[str, float]:
    raws = [_raw(b) for b in load_batches()]
    events = sum(len(b) for b in load_batches())
    summaries = [summarize_json(r) for r in raws]
    reads = [[m for m in s.marks if m.kind in SIGNAL_INPUTS] for s in summaries]
    summarize_s: list[float] = []
    detect_s: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        for raw in raws:
            summarize_json(raw)
        summarize_s.append(time.perf_counter() - started)
        watch = Watch()
        started = time.perf_counter()
        for s, read in zip(summaries, reads, strict=True):
            detect(watch, read, s.changes, s.inputs_at)
        detect_s.append(time.perf_counter() - started)
    return {
        "events": events,
        "batches": len(raws),
        "summarize_ns_per_event": statistics.median(summarize_s) / events * 1e9,
        "detect_ns_per_event": statistics.median(detect_s) / events * 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.signals", description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--ingest-events-per-cpu-s",
        type=float,
        default=50_000.0,
        help="the ingest's events per server CPU second to compare with (default: the target)",
    )
    args = parser.parse_args()
    got = measure(args.rounds)
    per_event_ns = 1e9 / args.ingest_events_per_cpu_s
    print(
        f"{got['events']:.0f} events in {got['batches']:.0f} batches; median of {args.rounds}:\n"
        f"  summarize (index + signal inputs): {got['summarize_ns_per_event']:.0f} ns/event\n"
        f"  detect (signals.detect):           {got['detect_ns_per_event']:.0f} ns/event,"
        f" {got['detect_ns_per_event'] / per_event_ns:.1%} of an ingest at"
        f" {args.ingest_events_per_cpu_s:,.0f} events per CPU second"
    )


if __name__ == "__main__":
    main()

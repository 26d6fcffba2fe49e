"""``python -m bench.triggers``: what proactive triggers cost per visitor event.

An in-process micro-benchmark of the trigger engine (``chatserver/proactive.py``):
the site's rules (50 by default, a realistic mix of URL, regex, time,
attribute, device, language, visit, business-hours and agent conditions), and
10,000 connected visitors, each with its watch and its pending wake-up in
the one timer heap.  Then:

Times are CPU time of the process (``time.process_time``), so other work on
the machine does not inflate them.

* **event**: a visitor views a page or changes an attribute, and the engine
  evaluates every rule for it and reschedules its wake-up (``Proactive._run``,
  the path ``visitors.py`` calls): microseconds per event;
* **wake-up**: the timer comes due for many visitors at once and the engine
  evaluates each (``run_due``): microseconds per visitor woken;
* **memory**: what the timer heap holds per visitor, and what a visitor's
  watch holds, measured with ``tracemalloc``.

What it leaves out, on purpose: the store.  A rule that fires is claimed in
the store (one round trip, ``Store.claim_firing``) and its actions write a
message; that happens once per rule and visit, not per event, and is
measured by the server benchmarks.  Here a firing is recorded in memory only.

    python -m bench.triggers [--visitors 10000] [--rules 50] [--events 50000] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import time
import tracemalloc
from typing import Any

from chatserver.proactive.engine import Proactive
from chatserver.proactive.hours import BusinessHours
from chatserver.proactive.rules import Rule, RuleContext, ordered, parse_rule, plan
from chatserver.proactive.scheduler import TimerHeap
from chatserver.proactive.watch import SiteRules, Watch, _Online
from chatserver.types import Firing, Visitor

SITE = "s_bench"
PAGES = [f"https://shop.example/product/{i}" for i in range(200)] + [
    "https://shop.example/",
    "https://shop.example/checkout",
    "https://shop.example/cart",
    "https://shop.example/search?q=linen+shirt",
]
CTX = RuleContext(frozenset({"sales", "support"}), {"a_ann": "Ann"})


def make_rules(n: int, rng: random.Random) -> list[Rule]:
    """``n`` rules of the kinds a shop writes, cycling through templates."""

    def url(value: str, op: str = "contains") -> dict[str, Any]:
        return {"kind": "url", "op": op, "value": value}

    templates: list[list[dict[str, Any]]] = [
        [url("/checkout"), {"kind": "time_on_page", "op": ">=", "value": 30}],
        [
            url("/checkout"),
            {"kind": "attribute", "path": "cart.total", "op": ">=", "value": 50},
            {"kind": "time_on_page", "op": ">=", "value": 3},
        ],
        [url(r"/product/\d+$", "regex"), {"kind": "time_on_page", "op": ">=", "value": 45}],
        [url("/product/1"), {"kind": "device", "op": "is", "value": "mobile"}],
        [
            {"kind": "time_on_site", "op": ">=", "value": 120},
            {"kind": "pages", "op": ">=", "value": 4},
        ],
        [
            {"kind": "visits", "op": ">=", "value": 3},
            {"kind": "attribute", "path": "plan", "op": "equals", "value": "pro"},
        ],
        [{"kind": "language", "op": "is", "value": "es"}, url("/cart")],
        [
            {"kind": "referrer", "op": "contains", "value": "google."},
            {"kind": "time_on_page", "op": ">=", "value": 20},
        ],
        [
            {"kind": "business_hours", "op": "is", "value": True},
            {"kind": "agent_online", "op": "is", "value": "sales"},
            url("/checkout"),
        ],
        [
            {"kind": "attribute", "path": "cart.items", "op": ">=", "value": 1},
            {"kind": "has_chat", "op": "is", "value": False},
            {"kind": "title", "op": "contains", "value": "sale"},
        ],
    ]
    frequencies = ["visit", "visit", "visitor", "always"]
    rules = []
    for i in range(n):
        conditions = [dict(c) for c in templates[i % len(templates)]]
        for c in conditions:  # vary the numbers and texts so rules differ
            if isinstance(c.get("value"), int) and not isinstance(c["value"], bool):
                c["value"] += i // len(templates)
        data = {
            "name": f"rule {i}",
            "order": i,
            "match": "any" if i % 7 == 6 else "all",
            "frequency": frequencies[i % len(frequencies)],
            "gap": 600,
            "conditions": conditions,
            "actions": [{"type": "message", "body": f"Hello from rule {i}"}],
        }
        rules.append(parse_rule(data, CTX, f"t_{i:03d}"))
    rng.shuffle(rules)
    return ordered(rules)


class _Node:
    """The node of an engine that touches nothing: no store, no hub, no I/O (every
    attribute the engine would reach is missing, so a stray call fails loudly)."""


def make_watch(i: int, now: float, rng: random.Random) -> Watch:
    attributes: dict[str, Any] = {"plan": rng.choice(["free", "pro", "team"])}
    if rng.random() < 0.6:
        attributes["cart"] = {
            "items": rng.randint(0, 6),
            "total": round(rng.uniform(0, 200), 2),
            "currency": "EUR",
        }
    w = Watch(Visitor(f"v_{i:06d}", SITE, now, attributes=attributes, visits=rng.randint(1, 9)))
    w.url = rng.choice(PAGES)
    w.title = rng.choice(["Linen shirt", "Summer sale", "Your cart", "Search"])
    w.referrer = rng.choice(["", "https://www.google.com/", "https://news.example/"])
    w.page_since = now - rng.uniform(0, 60)
    w.visit = w.visits
    w.visit_since = now - rng.uniform(0, 600)
    w.pages = rng.randint(1, 8)
    w.device = rng.choice(["desktop", "desktop", "mobile", "tablet"])
    w.lang = rng.choice(["en", "es-es", "ca", "de-de"])
    return w


def build(visitors: int, rules: int, seed: int) -> tuple[Proactive, list[Watch], list[float]]:
    rng = random.Random(seed)
    now = [time.time()]
    engine = Proactive(_Node(), clock=lambda: now[0], timer=False)  # type: ignore[arg-type]
    hours = BusinessHours.from_json(
        {"timezone": "Europe/Madrid", "week": [[[540, 1140]]] * 5 + [[[600, 840]], []]}
    )
    site_rules = make_rules(rules, rng)
    engine._sites[SITE] = SiteRules(
        rules=site_rules,
        hours=hours,
        loaded=float("inf"),  # never read again: no store behind this engine
        departments=frozenset(d for r in site_rules for d in plan(r).departments),
        uses_hours=any(plan(r).hours for r in site_rules),
    )
    for dept in ("", "sales", "support"):
        engine._online[(SITE, dept)] = _Online(float("inf"), dept != "support")

    async def fire(w: Watch, rule: Rule, now: float) -> None:  # in memory, no store
        w.fired[rule.id] = Firing(w.visit, now)
        if rule.frequency.value == "always":
            w.page_fired.add(rule.id)
        engine.stats.fired += 1

    engine._fire = fire  # type: ignore[method-assign]
    watches = [make_watch(i, now[0], rng) for i in range(visitors)]
    for w in watches:
        engine.watches[w.visitor_id] = w
    return engine, watches, now


async def measure_events(
    engine: Proactive, watches: list[Watch], now: list[float], events: int, seed: int
) -> list[float]:
    """Microseconds per event, in batches of 1000 (for a spread)."""
    rng = random.Random(seed + 1)
    for w in watches:  # connect everyone: first evaluation, wake-ups scheduled
        await engine._run(w)
    batches = []
    done = 0
    while done < events:
        size = min(1000, events - done)
        picks = [(rng.choice(watches), rng.random()) for _ in range(size)]
        started = time.process_time()  # CPU time: other processes on the machine do not count
        for w, r in picks:
            now[0] += 0.001
            if r < 0.7:  # a page view
                w.url = PAGES[int(r * 1000) % len(PAGES)]
                w.page_since = now[0]
                w.pages += 1
                w.page_fired = set()
            else:  # the cart changed
                w.attributes = {**w.attributes, "cart": {"items": 2, "total": r * 100}}
            await engine._run(w)
        batches.append((time.process_time() - started) / size * 1e6)
        done += size
    return batches


async def measure_wakeups(engine: Proactive, now: list[float]) -> tuple[int, float]:
    """Let time pass until half the visitors are due; time ``run_due`` (pop + evaluate)."""
    pending = sorted(
        t for t in (engine.timers.when(k) for k in list(engine.watches)) if t is not None
    )
    if not pending:
        return 0, 0.0
    now[0] = pending[len(pending) // 2]
    before = engine.stats.wakeups
    started = time.process_time()
    await engine.run_due()
    elapsed = time.process_time() - started
    woken = engine.stats.wakeups - before
    return woken, elapsed / max(1, woken) * 1e6


def heap_bytes_per_visitor(visitors: int) -> float:
    gc.collect()
    keys = [f"v_{i:06d}" for i in range(visitors)]  # the ids exist anyway (the watches')
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    heap: TimerHeap[str] = TimerHeap()
    t0 = time.time()
    for i, key in enumerate(keys):
        heap.set(key, t0 + (i % 600))
    for i, key in enumerate(keys[::3]):  # rescheduled: stale entries in the heap
        heap.set(key, t0 + 1000 + i)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(base, "filename"))
    assert len(heap) == visitors
    return grown / visitors


def watch_bytes_per_visitor(visitors: int, seed: int) -> float:
    rng = random.Random(seed)
    now = time.time()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    watches = [make_watch(i, now, rng) for i in range(visitors)]
    for w, i in zip(watches, range(visitors), strict=True):
        w.fired = {f"t_{i % 50:03d}": Firing(1, now)}  # one rule fired so far
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(base, "filename"))
    assert len(watches) == visitors
    return grown / visitors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.triggers", description=__doc__)
    parser.add_argument("--visitors", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    engine, watches, now = build(args.visitors, args.rules, args.seed)
    batches = asyncio.run(measure_events(engine, watches, now, args.events, args.seed))
    scheduled = len(engine.timers)
    woken, per_wakeup = asyncio.run(measure_wakeups(engine, now))
    heap = heap_bytes_per_visitor(args.visitors)
    watch = watch_bytes_per_visitor(args.visitors, args.seed)
    figures = {
        "visitors": args.visitors,
        "rules": args.rules,
        "events": args.events,
        "us_per_event_median": round(statistics.median(batches), 2),
        "us_per_event_p90_batch": round(sorted(batches)[int(len(batches) * 0.9)], 2),
        "visitors_with_a_wakeup": scheduled,
        "wakeups_timed": woken,
        "us_per_wakeup": round(per_wakeup, 2),
        "fired_in_memory": engine.stats.fired,
        "scheduler_bytes_per_visitor": round(heap, 1),
        "watch_bytes_per_visitor": round(watch, 1),
        "python": sys.version.split()[0],
    }
    print("| figure | value |\n|---|---|")
    print(f"| visitors connected / rules | {args.visitors} / {args.rules} |")
    print(
        f"| evaluation per visitor event | {figures['us_per_event_median']} µs median "
        f"(90th percentile of 1000-event batches: {figures['us_per_event_p90_batch']} µs) |"
    )
    print(f"| visitors with a pending wake-up | {scheduled} |")
    print(
        f"| evaluation per visitor woken by the timer | {figures['us_per_wakeup']} µs "
        f"({woken} woken at once) |"
    )
    heap_b, watch_b = figures["scheduler_bytes_per_visitor"], figures["watch_bytes_per_visitor"]
    print(f"| scheduler memory per visitor (heap + index) | {heap_b} B |")
    print(f"| watch memory per visitor (engine state) | {watch_b} B |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

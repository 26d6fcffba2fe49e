"""The report's tables from rollups (pure code): ``metrics.py``'s figures, read from
``rollup.Part``s merged per department instead of from every facts row.

Each function here answers what its namesake in ``metrics.py`` answers for the
same conversations (tests/unit/test_report_rollups.py checks it on random
filters), using that module's ``median``, ``mean``, ``share`` and ``concurrency``.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence

from ..types import RATINGS
from . import rollup
from .metrics import (
    AGENT_COLUMNS,
    DAYS,
    DEPARTMENT_COLUMNS,
    NO_DEPARTMENT,
    Table,
    mean,
    share,
)
from .rollup import Part


def median(values: array[float]) -> float | None:
    """``metrics.median`` of values made of sorted runs (a cell's are kept sorted)."""
    if not values:
        return None
    v = values.tolist()
    v.sort()  # merges the runs
    n = len(v)
    mid = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2  # statistics.median's
    return round(mid, 3)


def concurrency(flat: array[float]) -> tuple[int, float | None, float]:
    """``metrics.concurrency`` of the spans ``start, end, start, end, ...``: the same
    sweep (an end before a start at one instant), over the sorted starts and ends."""
    pairs = [(s, e) for s, e in zip(flat[0::2], flat[1::2], strict=True) if e > s]
    starts = sorted(s for s, _ in pairs)
    ends = sorted(e for _, e in pairs)
    peak = level = 0
    busy = since = 0.0
    i = j = 0
    n = len(starts)
    while j < n:
        if i < n and starts[i] < ends[j]:
            t, d = starts[i], 1
            i += 1
        else:
            t, d = ends[j], -1
            j += 1
        if level > 0:
            busy += t - since
        level += d
        since = t
        peak = max(peak, level)
    total = math.fsum(e - s for s, e in pairs)
    return peak, (round(total / busy, 3) if busy else None), busy


def total(parts: dict[str, Part]) -> Part:
    """Every department's part added into one."""
    out = Part()
    for p in parts.values():
        out.merge(p)
    return out


def overview(p: Part) -> dict[str, float | int | None]:
    """``metrics.overview`` of the rows rolled into ``p``."""
    c = p.counts
    n_rated = sum(p.ratings.values())
    out: dict[str, float | int | None] = {
        "started": c[rollup.N],
        "open": c[rollup.OPEN],
        "served": c[rollup.SERVED],
        "missed": c[rollup.MISSED],
        "missed_in_hours": c[rollup.MISSED_IN_HOURS],
        "offline": c[rollup.OFFLINE],
        "first_response_median": median(p.frt),
        "first_response_mean": mean(p.frt),
        "first_response_median_in_hours": median(p.frt_in_hours),
        "response_time_median": median(p.turns),
        "queue_wait_median": median(p.wait),
        "handling_median": median(p.handling),
        "transfers": c[rollup.TRANSFERS],
        "messages_per_chat": round(c[rollup.MESSAGES] / c[rollup.N], 3) if c[rollup.N] else None,
        "rated": n_rated,
    }
    for answer in RATINGS:
        out[f"rating_{answer}"] = share(p.ratings.get(answer, 0), n_rated)
    return out


def agents(p: Part, names: dict[str, str]) -> Table:
    """``metrics.agents``: one row per agent that was in a conversation."""
    out: list[tuple[object, ...]] = []
    chatted = [a for a, ap in p.agents.items() if ap.counts[0] > 0]
    for a in sorted(chatted, key=lambda x: ((names.get(x) or x).lower(), x)):
        ap = p.agents[a]
        peak, avg, busy = concurrency(ap.spans)
        chats, served, messages, transfers = ap.counts
        per_hour = round(messages / (busy / 3600), 2) if busy > 0 else None
        out.append(
            (
                a,
                names.get(a, a),
                chats,
                served,
                messages,
                median(ap.frt),
                median(ap.handling),
                transfers,
                peak,
                avg,
                per_hour,
                *(ap.ratings.get(x, 0) for x in RATINGS),
            )
        )
    return Table("agents", AGENT_COLUMNS, out)


def departments(parts: dict[str, Part]) -> Table:
    """``metrics.departments``: one row per department."""
    out: list[tuple[object, ...]] = []
    named = {(d or NO_DEPARTMENT): p for d, p in parts.items() if p.n}
    for name in sorted(named):
        p = named[name]
        c = p.counts
        counts = (c[rollup.N], c[rollup.SERVED], c[rollup.MISSED], c[rollup.OFFLINE])
        medians = (median(p.frt), median(p.wait), median(p.handling))
        ratings = (p.ratings.get(x, 0) for x in RATINGS)
        out.append((name, *counts, *medians, c[rollup.TRANSFERS], *ratings))
    return Table("departments", DEPARTMENT_COLUMNS, out)


def satisfaction(p: Part) -> Table:
    total_rated = sum(p.ratings.values())
    out: list[tuple[object, ...]] = [
        (x, p.ratings.get(x, 0), share(p.ratings.get(x, 0), total_rated)) for x in RATINGS
    ]
    return Table("satisfaction", ("rating", "count", "share"), out)


def triggers(p: Part, counters: dict[str, int], names: dict[str, str]) -> Table:
    """``metrics.triggers``: the proactive funnel per trigger."""
    ids = set(names) | set(p.triggers) | {k.rsplit(".", 1)[0] for k in counters}
    out: list[tuple[object, ...]] = []
    for t in sorted(ids, key=lambda x: ((names.get(x) or x).lower(), x)):
        g = p.triggers.get(t, [0, 0, 0, 0])
        fired, chats = counters.get(f"{t}.fired", 0), counters.get(f"{t}.chats", 0)
        out.append((t, names.get(t, t), fired, chats, *g))
    columns = ("trigger", "name", "shown", "chats", "opened", "answered")
    return Table("triggers", (*columns, "served", "rated"), out)


def heatmap(p: Part) -> Table:
    out: list[tuple[object, ...]] = [
        (DAYS[d], *(p.slots.get(d * 24 + h, 0) for h in range(24))) for d in range(7)
    ]
    return Table("heatmap", ("weekday", *(f"{h:02d}" for h in range(24))), out)


def daily(p: Part, days: Sequence[str]) -> Table:
    out: list[tuple[object, ...]] = [
        (d, *p.days.get(d, (0, 0, 0, 0))) for d in sorted({*days, *p.days})
    ]
    return Table("daily", ("day", "started", "served", "missed", "offline"), out)

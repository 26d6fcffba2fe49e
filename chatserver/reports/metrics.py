"""Reports aggregated from facts rows (pure code; the rules are docs/reports.md's).

Every function takes the rows of the period (already filtered) and returns
plain data: a ``Table`` (column names and rows, what the JSON API and the CSV
downloads serve) or, for the overview, a mapping of metric to value.
Durations are seconds; a median or mean of nothing is ``None``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..types import RATINGS
from .facts import ConvFacts, Span

NO_DEPARTMENT = "(none)"


@dataclass(frozen=True, slots=True)
class Table:
    """A report table: ``columns`` names, ``rows`` of values in that order."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]

    def to_json(self) -> dict[str, object]:
        return {"table": self.name, "columns": list(self.columns), "rows": self.rows}


def median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def filter_facts(
    facts: Iterable[ConvFacts],
    *,
    agent: str | None = None,
    department: str | None = None,
    tag: str | None = None,
) -> list[ConvFacts]:
    """The rows an agent was in, of a department, with a tag (each filter if given)."""
    out = []
    for f in facts:
        if agent is not None and agent not in f.agents:
            continue
        if department is not None and (f.department or NO_DEPARTMENT) != department:
            continue
        if tag is not None and tag not in f.tags:
            continue
        out.append(f)
    return out


def overview(facts: Sequence[ConvFacts]) -> dict[str, float | int | None]:
    """The headline figures of the period (docs/reports.md, "Overview")."""
    started = len(facts)
    closed = [f for f in facts if f.closed is not None]
    served = sum(1 for f in facts if f.served)
    missed = sum(1 for f in closed if f.missed)
    missed_in_hours = sum(1 for f in closed if f.missed and f.in_hours)
    offline = sum(1 for f in facts if f.offline)
    frt = [f.first_response for f in facts if f.first_response is not None]
    frt_hours = [f.first_response for f in facts if f.first_response is not None and f.in_hours]
    rts = [t for f in facts for t in f.response_times]
    waits = [f.queue_wait for f in facts if f.queue_wait is not None]
    handling = [f.handling for f in facts if f.handling is not None]
    rated = [f.rating for f in facts if f.rating in RATINGS]
    out: dict[str, float | int | None] = {
        "started": started,
        "open": started - len(closed),
        "served": served,
        "missed": missed,
        "missed_in_hours": missed_in_hours,
        "offline": offline,
        "first_response_median": median(frt),
        "first_response_mean": mean(frt),
        "first_response_median_in_hours": median(frt_hours),
        "response_time_median": median(rts),
        "queue_wait_median": median(waits),
        "handling_median": median(handling),
        "transfers": sum(f.transfers for f in facts),
        "messages_per_chat": mean([float(f.msgs_visitor + f.msgs_agent) for f in facts]),
        "rated": len(rated),
    }
    for answer in RATINGS:
        out[f"rating_{answer}"] = share(sum(1 for r in rated if r == answer), len(rated))
    return out


TREND_KEYS = ("started", "served", "missed", "first_response_median", "handling_median")


def trend(now: dict[str, float | int | None], before: dict[str, float | int | None]) -> Table:
    """Each headline figure against the previous period of the same length."""
    rows: list[tuple[object, ...]] = []
    for key in TREND_KEYS:
        a, b = now.get(key), before.get(key)
        change = None if a is None or b is None else round(float(a) - float(b), 3)
        pct = None if change is None or not b else round(100 * change / float(b), 1)
        rows.append((key, a, b, change, pct))
    return Table("trend", ("metric", "period", "previous", "change", "change_pct"), rows)


def concurrency(spans: Sequence[tuple[float, float]]) -> tuple[int, float | None, float]:
    """(peak, mean, busy seconds) of overlapping ``(start, end)`` spans.

    Peak: the most spans open at one instant.  Mean: the span seconds over the
    busy seconds (the time at least one was open).
    """
    points: list[tuple[float, int]] = []
    for s, e in spans:
        if e > s:
            points.append((s, 1))
            points.append((e, -1))
    points.sort()  # an end (-1) before a start (+1) at one instant: no false overlap
    peak = level = 0
    busy = 0.0
    since = 0.0
    for t, d in points:
        if level > 0:
            busy += t - since
        level += d
        since = t
        peak = max(peak, level)
    total = sum(e - s for s, e in spans if e > s)
    return peak, (round(total / busy, 3) if busy else None), busy


AGENT_COLUMNS = (
    "agent",
    "name",
    "chats",
    "served",
    "messages",
    "first_response_median",
    "handling_median",
    "transfers",
    "peak_concurrent",
    "mean_concurrent",
    "interactions_per_hour",
    *(f"rating_{r}" for r in RATINGS),
)


def agents(facts: Sequence[ConvFacts], names: dict[str, str]) -> Table:
    """One row per agent that was in a conversation of the period."""
    chats: dict[str, int] = defaultdict(int)
    served: dict[str, int] = defaultdict(int)
    messages: dict[str, int] = defaultdict(int)
    frt: dict[str, list[float]] = defaultdict(list)
    handling: dict[str, list[float]] = defaultdict(list)
    transfers: dict[str, int] = defaultdict(int)
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    ratings: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(RATINGS, 0))
    for f in facts:
        for a in f.agents:
            chats[a] += 1
            transfers[a] += f.transfers
            if f.rating in RATINGS:
                ratings[a][f.rating] += 1
        for a, n in f.replies:
            messages[a] += n
            served[a] += 1
        if f.first_replier is not None and f.first_response is not None:
            frt[f.first_replier].append(f.first_response)
        per: dict[str, float] = defaultdict(float)
        for a, s, e in f.spans:
            spans[a].append((s, e))
            per[a] += max(0.0, e - s)
        if f.closed is not None:
            for a, secs in per.items():
                handling[a].append(secs)
    rows: list[tuple[object, ...]] = []
    for a in sorted(chats, key=lambda x: (names.get(x) or x).lower()):
        peak, avg, busy = concurrency(spans[a])
        per_hour = round(messages[a] / (busy / 3600), 2) if busy > 0 else None
        rows.append(
            (
                a,
                names.get(a, a),
                chats[a],
                served[a],
                messages[a],
                median(frt[a]),
                median(handling[a]),
                transfers[a],
                peak,
                avg,
                per_hour,
                *(ratings[a][r] for r in RATINGS),
            )
        )
    return Table("agents", AGENT_COLUMNS, rows)


DEPARTMENT_COLUMNS = (
    "department",
    "started",
    "served",
    "missed",
    "offline",
    "first_response_median",
    "queue_wait_median",
    "handling_median",
    "transfers",
    *(f"rating_{r}" for r in RATINGS),
)


def departments(facts: Sequence[ConvFacts]) -> Table:
    """One row per department (the department a conversation ended in)."""
    groups: dict[str, list[ConvFacts]] = defaultdict(list)
    for f in facts:
        groups[f.department or NO_DEPARTMENT].append(f)
    rows: list[tuple[object, ...]] = []
    for name in sorted(groups):
        g = groups[name]
        o = overview(g)
        counts = [sum(1 for f in g if f.rating == r) for r in RATINGS]
        rows.append(
            (
                name,
                o["started"],
                o["served"],
                o["missed"],
                o["offline"],
                o["first_response_median"],
                o["queue_wait_median"],
                o["handling_median"],
                o["transfers"],
                *counts,
            )
        )
    return Table("departments", DEPARTMENT_COLUMNS, rows)


def satisfaction(facts: Sequence[ConvFacts]) -> Table:
    """Each answer's count and share of the rated conversations."""
    rated = [f.rating for f in facts if f.rating in RATINGS]
    rows: list[tuple[object, ...]] = [
        (r, rated.count(r), share(rated.count(r), len(rated))) for r in RATINGS
    ]
    return Table("satisfaction", ("rating", "count", "share"), rows)


def comments(facts: Sequence[ConvFacts], names: dict[str, str], limit: int = 200) -> Table:
    """The newest ratings that came with a comment (newest first, at most ``limit``)."""
    rows: list[tuple[object, ...]] = []
    for f in reversed(facts):
        if len(rows) >= limit:
            break
        if f.rating in RATINGS and f.comment:
            who = ", ".join(names.get(a) or a for a in f.agents)
            rows.append((f.local_day, f.conv_id, f.rating, f.comment, who))
    return Table("comments", ("day", "conversation", "rating", "comment", "agents"), rows)


def triggers(facts: Sequence[ConvFacts], counters: dict[str, int], names: dict[str, str]) -> Table:
    """The proactive funnel per trigger (docs/reports.md, "Trigger funnel")."""
    ids = (
        set(names)
        | {f.trigger for f in facts if f.trigger}
        | {k.rsplit(".", 1)[0] for k in counters}
    )
    rows: list[tuple[object, ...]] = []
    for t in sorted(ids, key=lambda x: (names.get(x) or x).lower()):
        mine = [f for f in facts if f.trigger == t]
        rows.append(
            (
                t,
                names.get(t, t),
                counters.get(f"{t}.fired", 0),
                counters.get(f"{t}.chats", 0),
                len(mine),
                sum(1 for f in mine if f.msgs_visitor > 0),
                sum(1 for f in mine if f.served),
                sum(1 for f in mine if f.rating in RATINGS),
            )
        )
    return Table(
        "triggers",
        (
            "trigger",
            "name",
            "shown_all_time",
            "chats_all_time",
            "opened",
            "answered",
            "served",
            "rated",
        ),
        rows,
    )


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def heatmap(facts: Sequence[ConvFacts]) -> Table:
    """Conversations started per weekday x hour of the site's time zone."""
    grid = [[0] * 24 for _ in range(7)]
    for f in facts:
        grid[f.local_slot // 24][f.local_slot % 24] += 1
    rows: list[tuple[object, ...]] = [(DAYS[d], *grid[d]) for d in range(7)]
    return Table("heatmap", ("weekday", *(f"{h:02d}" for h in range(24))), rows)


def daily(facts: Sequence[ConvFacts], days: Sequence[str]) -> Table:
    """Started, served, missed and offline per local day of the period."""
    counts: dict[str, list[int]] = {d: [0, 0, 0, 0] for d in days}
    for f in facts:
        c = counts.setdefault(f.local_day, [0, 0, 0, 0])
        c[0] += 1
        c[1] += f.served
        c[2] += f.missed
        c[3] += f.offline
    rows: list[tuple[object, ...]] = [(d, *counts[d]) for d in sorted(counts)]
    return Table("daily", ("day", "started", "served", "missed", "offline"), rows)


def spans_of(facts: Iterable[ConvFacts]) -> list[Span]:
    return [s for f in facts for s in f.spans]

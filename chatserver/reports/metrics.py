"""Reports aggregated from facts rows (pure code; the rules are docs/reports.md's).

Every function takes the stored rows of the period (``facts.COLUMNS`` order,
already filtered) and returns plain data: a ``Table`` (column names and
rows, what the JSON API and the CSV downloads serve) or, for the overview, a
mapping of metric to value.  Durations are seconds; a median or mean of
nothing is ``None``.

The rows are not turned into ``ConvFacts``: a report of 100,000
conversations would spend most of its time making objects.  ``Columns``
transposes them once (``zip``) and the figures are sums, counters and
comprehensions over whole columns; only the per-agent table walks the rows.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..types import RATINGS
from .facts import COLUMNS, decode_spans

NO_DEPARTMENT = "(none)"
Row = Sequence[Any]
_AT = {name: i for i, name in enumerate(COLUMNS)}


@dataclass(frozen=True, slots=True)
class Table:
    """A report table: ``columns`` names, ``rows`` of values in that order."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]

    def to_json(self) -> dict[str, object]:
        return {"table": self.name, "columns": list(self.columns), "rows": self.rows}


class Columns:
    """The rows transposed: ``cols.first_response`` is that column as a tuple."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.n = len(rows)
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
        self._cols = cols

    def __getattr__(self, name: str) -> tuple[Any, ...]:
        return self._cols[_AT[name]]


def median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def mean(values: Sequence[float]) -> float | None:
    return round(math.fsum(values) / len(values), 3) if values else None


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def filter_rows(
    rows: Sequence[Row],
    *,
    agent: str | None = None,
    department: str | None = None,
    tag: str | None = None,
) -> list[Row]:
    """The rows an agent was in, of a department, with a tag (each filter if given)."""
    out = list(rows)
    if agent is not None:
        out = [r for r in out if r[6] and agent in r[6].split("\t")]
    if department is not None:
        out = [r for r in out if (r[5] or NO_DEPARTMENT) == department]
    if tag is not None:
        out = [r for r in out if r[7] and tag in r[7].split("\t")]
    return out


def _present(values: Sequence[Any]) -> list[float]:
    return [v for v in values if v is not None]


def overview(
    rows: Sequence[Row], cols: Columns | None = None, *, turns: bool = True
) -> dict[str, float | int | None]:
    """The headline figures of the period (docs/reports.md, "Metrics"); ``cols``:
    the rows transposed already; ``turns=False`` leaves out the response time
    (the one figure that parses every turn)."""
    c = cols or Columns(rows)
    closed = [x is not None for x in c.closed]
    missed = [cl and not s and not o for cl, s, o in zip(closed, c.served, c.offline, strict=True)]
    rts = list(map(float, " ".join(c.response_times).split())) if turns else []
    rated = Counter(r for r in c.rating if r in RATINGS)
    n_rated = sum(rated.values())
    frt = _present(c.first_response)
    messages = sum(c.msgs_visitor) + sum(c.msgs_agent)
    out: dict[str, float | int | None] = {
        "started": c.n,
        "open": c.n - sum(closed),
        "served": sum(map(bool, c.served)),
        "missed": sum(missed),
        "missed_in_hours": sum(m and bool(h) for m, h in zip(missed, c.in_hours, strict=True)),
        "offline": sum(map(bool, c.offline)),
        "first_response_median": median(frt),
        "first_response_mean": mean(frt),
        "first_response_median_in_hours": median(
            [x for x, h in zip(c.first_response, c.in_hours, strict=True) if x is not None and h]
        ),
        "response_time_median": median(rts),
        "queue_wait_median": median(_present(c.queue_wait)),
        "handling_median": median(_present(c.handling)),
        "transfers": sum(c.transfers),
        "messages_per_chat": round(messages / c.n, 3) if c.n else None,
        "rated": n_rated,
    }
    for answer in RATINGS:
        out[f"rating_{answer}"] = share(rated[answer], n_rated)
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
    total = math.fsum(e - s for s, e in spans if e > s)
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


def agents(rows: Sequence[Row], names: dict[str, str], cols: Columns | None = None) -> Table:
    """One row per agent that was in a conversation of the period.

    Column-wise where it can: most conversations have one agent and one
    span, so the lists are joined and counted whole; only the rows with a
    transfer or a rating are walked one by one.
    """
    c = cols or Columns(rows)
    chats = Counter("\t".join(a for a in c.agents if a).split("\t")) if any(c.agents) else Counter()
    chats.pop("", None)
    # "agent\tcount" lines: few distinct ones, so count the lines, then parse each once
    messages: Counter[str] = Counter()
    served: Counter[str] = Counter()
    for line, times in Counter("\n".join(x for x in c.replies if x).split("\n")).items():
        if line:
            a, n = line.split("\t")
            messages[a] += int(n) * times
            served[a] += times
    frt: dict[str, list[float]] = defaultdict(list)
    for a, v in zip(c.first_replier, c.first_response, strict=True):
        if a is not None and v is not None:
            frt[a].append(v)
    transfers: Counter[str] = Counter()
    ratings: dict[str, Counter[str]] = defaultdict(Counter)
    for who, moved, rating in zip(c.agents, c.transfers, c.rating, strict=True):
        if who and (moved or rating in RATINGS):
            for a in who.split("\t"):
                transfers[a] += moved
                if rating in RATINGS:
                    ratings[a][rating] += 1
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    handling: dict[str, list[float]] = defaultdict(list)
    for text, closed in zip(c.spans, c.closed, strict=True):
        if not text:
            continue
        if "\n" not in text:  # one agent, one span
            a, s0, e0 = text.split("\t")
            start, end = float(s0), float(e0)
            spans[a].append((start, end))
            if closed is not None:
                handling[a].append(max(0.0, end - start))
            continue
        per: dict[str, float] = defaultdict(float)
        for a, start, end in decode_spans(text):
            spans[a].append((start, end))
            per[a] += max(0.0, end - start)
        if closed is not None:
            for a, secs in per.items():
                handling[a].append(secs)
    out: list[tuple[object, ...]] = []
    for a in sorted(chats, key=lambda x: ((names.get(x) or x).lower(), x)):
        peak, avg, busy = concurrency(spans[a])
        per_hour = round(messages[a] / (busy / 3600), 2) if busy > 0 else None
        out.append(
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
                *(ratings[a][x] for x in RATINGS),
            )
        )
    return Table("agents", AGENT_COLUMNS, out)


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


def departments(rows: Sequence[Row], cols: Columns | None = None) -> Table:
    """One row per department (the department a conversation ended in), in one pass."""
    c = cols or Columns(rows)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    values: dict[str, tuple[list[float], list[float], list[float]]] = defaultdict(
        lambda: ([], [], [])
    )
    ratings: dict[str, Counter[str]] = defaultdict(Counter)
    for dept, closed, served, offline, frt, wait, handling, moved, rating in zip(
        c.department,
        c.closed,
        c.served,
        c.offline,
        c.first_response,
        c.queue_wait,
        c.handling,
        c.transfers,
        c.rating,
        strict=True,
    ):
        name = dept or NO_DEPARTMENT
        n = counts[name]
        n[0] += 1
        if served:
            n[1] += 1
        elif closed is not None and not offline:
            n[2] += 1
        if offline:
            n[3] += 1
        n[4] += moved
        v = values[name]
        if frt is not None:
            v[0].append(frt)
        if wait is not None:
            v[1].append(wait)
        if handling is not None:
            v[2].append(handling)
        if rating in RATINGS:
            ratings[name][rating] += 1
    out: list[tuple[object, ...]] = []
    for name in sorted(counts):
        n, v = counts[name], values[name]
        medians = (median(v[0]), median(v[1]), median(v[2]))
        out.append((name, *n[:4], *medians, n[4], *(ratings[name][x] for x in RATINGS)))
    return Table("departments", DEPARTMENT_COLUMNS, out)


def satisfaction(rows: Sequence[Row]) -> Table:
    """Each answer's count and share of the rated conversations."""
    counts = Counter(r[20] for r in rows if r[20] in RATINGS)
    total = sum(counts.values())
    out: list[tuple[object, ...]] = [(x, counts[x], share(counts[x], total)) for x in RATINGS]
    return Table("satisfaction", ("rating", "count", "share"), out)


def comments(rows: Sequence[Row], names: dict[str, str], limit: int = 200) -> Table:
    """The newest ratings that came with a comment (newest first, at most ``limit``)."""
    out: list[tuple[object, ...]] = []
    for r in sorted((r for r in rows if r[21] and r[20] in RATINGS), key=lambda r: -r[3]):
        if len(out) >= limit:
            break
        who = ", ".join(names.get(a) or a for a in r[6].split("\t")) if r[6] else ""
        out.append((r[11], r[0], r[20], r[21], who))
    return Table("comments", ("day", "conversation", "rating", "comment", "agents"), out)


def triggers(rows: Sequence[Row], counters: dict[str, int], names: dict[str, str]) -> Table:
    """The proactive funnel per trigger (docs/reports.md, "Trigger funnel")."""
    mine: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r[22]:
            mine[r[22]].append(r)
    ids = set(names) | set(mine) | {k.rsplit(".", 1)[0] for k in counters}
    out: list[tuple[object, ...]] = []
    for t in sorted(ids, key=lambda x: ((names.get(x) or x).lower(), x)):
        g = mine.get(t, [])
        out.append(
            (
                t,
                names.get(t, t),
                counters.get(f"{t}.fired", 0),
                counters.get(f"{t}.chats", 0),
                len(g),
                sum(1 for r in g if r[17] > 0),
                sum(1 for r in g if r[9]),
                sum(1 for r in g if r[20] in RATINGS),
            )
        )
    columns = ("trigger", "name", "shown", "chats", "opened", "answered")
    return Table("triggers", (*columns, "served", "rated"), out)


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # translated where shown (svg.py)


def heatmap(rows: Sequence[Row], cols: Columns | None = None) -> Table:
    """Conversations started per weekday x hour of the site's time zone."""
    counts = Counter((cols or Columns(rows)).local_slot)
    out: list[tuple[object, ...]] = [
        (DAYS[d], *(counts[d * 24 + h] for h in range(24))) for d in range(7)
    ]
    return Table("heatmap", ("weekday", *(f"{h:02d}" for h in range(24))), out)


def daily(rows: Sequence[Row], days: Sequence[str], cols: Columns | None = None) -> Table:
    """Started, served, missed and offline per local day of the period."""
    c = cols or Columns(rows)
    started = Counter(c.local_day)
    served = Counter(d for d, s in zip(c.local_day, c.served, strict=True) if s)
    offline = Counter(d for d, o in zip(c.local_day, c.offline, strict=True) if o)
    missed = Counter(
        d
        for d, cl, s, o in zip(c.local_day, c.closed, c.served, c.offline, strict=True)
        if cl is not None and not s and not o
    )
    out: list[tuple[object, ...]] = [
        (d, started[d], served[d], missed[d], offline[d]) for d in sorted({*days, *started})
    ]
    return Table("daily", ("day", "started", "served", "missed", "offline"), out)

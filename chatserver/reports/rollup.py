"""Rollups: what the reports need of many facts rows, kept per site, local day and
department so a report reads a few hundred of them instead of every row (pure code).

A ``Part`` holds, for one department's conversations of any set of days, the
counts every table sums and every value a median is taken of (in sorted
``array``s of doubles, exact: no histogram buckets), per agent and per
trigger too.
``add`` takes a facts row in (``sign=1``) or back out (``sign=-1``, exact:
the values are removed again), ``merge`` adds two parts, ``encode``/``decode``
turn one into bytes (msgpack) for the backends' ``report_rollups`` table.
The backends change the cells of a saved row in the transaction that saves it
and ``rebuild_cells`` recomputes them from the rows; ``rollup_tables.py``
makes the report's tables from merged parts, figure for figure those of
``metrics.py`` over the rows (tests/unit/test_report_rollups.py).
"""

from __future__ import annotations

from array import array
from bisect import insort
from collections.abc import Iterable, Sequence
from typing import Any

import msgpack

from ..types import RATINGS
from .facts import decode_spans

Row = Sequence[Any]
# (site id, local day, department or "") of a row: the cell it rolls up into
Key = tuple[str, str, str]

# Part.counts: the overview's and the departments' counters
N, OPEN, SERVED, MISSED, MISSED_IN_HOURS, OFFLINE, TRANSFERS, MESSAGES = range(8)


class RollupMismatch(Exception):
    """A row taken out of a part that does not hold it: recompute the cell."""


def _put(values: array[float], v: float, sign: int) -> None:
    """Add ``v`` to (or remove it from) the sorted ``values``: kept sorted, a merge of
    many cells sorts as fast as a merge of runs (``rollup_tables.median``)."""
    if sign > 0:
        insort(values, v)
    else:
        try:
            values.remove(v)
        except ValueError:
            raise RollupMismatch from None


def _bump(counter: dict[Any, int], key: Any, by: int) -> None:
    n = counter.get(key, 0) + by
    if n < 0:
        raise RollupMismatch
    if n:
        counter[key] = n
    else:
        counter.pop(key, None)


def _bump_list(table: dict[str, list[int]], key: str, by: Sequence[int], size: int) -> None:
    cur = table.setdefault(key, [0] * size)
    for i, x in enumerate(by):
        cur[i] += x
        if cur[i] < 0:
            raise RollupMismatch
    if not any(cur):
        del table[key]


class AgentPart:
    """One agent's share: chats, served, messages, transfers, ratings, values, spans."""

    __slots__ = ("counts", "frt", "handling", "ratings", "spans")

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0]  # chats, served, messages, transfers
        self.ratings: dict[str, int] = {}
        self.frt: array[float] = array("d")
        self.handling: array[float] = array("d")
        self.spans: array[float] = array("d")  # start, end, start, end, ...

    def empty(self) -> bool:
        return not (any(self.counts) or self.ratings or self.frt or self.handling or self.spans)

    def merge(self, o: AgentPart) -> None:
        for i in range(4):
            self.counts[i] += o.counts[i]
        for k, v in o.ratings.items():
            self.ratings[k] = self.ratings.get(k, 0) + v
        self.frt.extend(o.frt)
        self.handling.extend(o.handling)
        self.spans.extend(o.spans)

    def span(self, start: float, end: float, sign: int) -> None:
        if sign > 0:
            self.spans.extend((start, end))
            return
        s = self.spans
        for i in range(0, len(s), 2):
            if s[i] == start and s[i + 1] == end:
                del s[i : i + 2]
                return
        raise RollupMismatch

    def pack(self) -> list[Any]:
        return [
            self.counts,
            self.ratings,
            self.frt.tobytes(),
            self.handling.tobytes(),
            self.spans.tobytes(),
        ]

    @classmethod
    def unpack(cls, data: list[Any]) -> AgentPart:
        a = cls()
        a.counts, a.ratings = list(data[0]), dict(data[1])
        a.frt.frombytes(data[2])
        a.handling.frombytes(data[3])
        a.spans.frombytes(data[4])
        return a


class Part:
    """The rollup of some rows of one department (see the module docstring)."""

    __slots__ = (
        "agents",
        "counts",
        "days",
        "frt",
        "frt_in_hours",
        "handling",
        "ratings",
        "slots",
        "triggers",
        "turns",
        "wait",
    )

    def __init__(self) -> None:
        self.counts = [0] * 8  # N, OPEN, ... MESSAGES
        self.ratings: dict[str, int] = {}
        self.frt: array[float] = array("d")
        self.frt_in_hours: array[float] = array("d")
        self.wait: array[float] = array("d")
        self.handling: array[float] = array("d")
        self.turns: array[float] = array("d")  # every answered turn's response time
        self.slots: dict[int, int] = {}  # weekday * 24 + hour -> started
        self.days: dict[str, list[int]] = {}  # day -> started, served, missed, offline
        self.agents: dict[str, AgentPart] = {}
        self.triggers: dict[str, list[int]] = {}  # opened, answered, served, rated

    @property
    def n(self) -> int:
        return self.counts[N]

    def agent(self, a: str) -> AgentPart:
        part = self.agents.get(a)
        if part is None:
            part = self.agents[a] = AgentPart()
        return part

    def add(self, r: Row, sign: int = 1) -> None:
        """Take the facts row ``r`` (``facts.COLUMNS`` order) in, or out with ``sign=-1``."""
        closed = r[4] is not None
        offline, served, in_hours = bool(r[8]), bool(r[9]), bool(r[10])
        missed = closed and not served and not offline
        rating = r[20] if r[20] in RATINGS else None
        c = self.counts
        c[N] += sign
        c[OPEN] += sign * (not closed)
        c[SERVED] += sign * served
        c[MISSED] += sign * missed
        c[MISSED_IN_HOURS] += sign * (missed and in_hours)
        c[OFFLINE] += sign * offline
        c[TRANSFERS] += sign * r[16]
        c[MESSAGES] += sign * (r[17] + r[18])
        if min(c) < 0:
            raise RollupMismatch
        if rating is not None:
            _bump(self.ratings, rating, sign)
        if r[13] is not None:
            _put(self.frt, r[13], sign)
            if in_hours:
                _put(self.frt_in_hours, r[13], sign)
        if r[14] is not None:
            _put(self.wait, r[14], sign)
        if r[15] is not None:
            _put(self.handling, r[15], sign)
        for t in r[19].split():
            _put(self.turns, float(t), sign)
        _bump(self.slots, r[12], sign)
        day = (sign, sign * served, sign * missed, sign * offline)
        _bump_list(self.days, r[11], day, 4)
        if r[22]:
            fired = (sign, sign * (r[17] > 0), sign * served, sign * (rating is not None))
            _bump_list(self.triggers, r[22], fired, 4)
        self._add_agents(r, closed, rating, sign)

    def _add_agents(self, r: Row, closed: bool, rating: str | None, sign: int) -> None:
        for a in r[6].split("\t") if r[6] else ():
            part = self.agent(a)
            part.counts[0] += sign
            part.counts[3] += sign * r[16]
            if rating is not None:
                _bump(part.ratings, rating, sign)
        for line in r[24].split("\n") if r[24] else ():
            a, n = line.split("\t")
            part = self.agent(a)
            part.counts[1] += sign
            part.counts[2] += sign * int(n)
        if r[25] is not None and r[13] is not None:
            _put(self.agent(r[25]).frt, r[13], sign)
        per: dict[str, float] = {}
        for a, start, end in decode_spans(r[23]) if r[23] else ():
            self.agent(a).span(start, end, sign)
            per[a] = per.get(a, 0.0) + max(0.0, end - start)
        if closed:
            for a, secs in per.items():
                _put(self.agent(a).handling, secs, sign)
        if sign < 0:
            for a in [a for a, p in self.agents.items() if p.empty()]:
                del self.agents[a]
            for a, p in self.agents.items():
                if min(p.counts) < 0:
                    raise RollupMismatch(a)

    def merge(self, o: Part) -> None:
        for i in range(8):
            self.counts[i] += o.counts[i]
        for k, v in o.ratings.items():
            self.ratings[k] = self.ratings.get(k, 0) + v
        self.frt.extend(o.frt)
        self.frt_in_hours.extend(o.frt_in_hours)
        self.wait.extend(o.wait)
        self.handling.extend(o.handling)
        self.turns.extend(o.turns)
        for slot, v in o.slots.items():
            self.slots[slot] = self.slots.get(slot, 0) + v
        for table, other in ((self.days, o.days), (self.triggers, o.triggers)):
            for key, vals in other.items():
                cur = table.setdefault(key, [0, 0, 0, 0])
                for i, x in enumerate(vals):
                    cur[i] += x
        for a, ap in o.agents.items():
            self.agent(a).merge(ap)

    def encode(self) -> bytes:
        doc = [
            self.counts,
            self.ratings,
            self.frt.tobytes(),
            self.frt_in_hours.tobytes(),
            self.wait.tobytes(),
            self.handling.tobytes(),
            self.turns.tobytes(),
            self.slots,
            self.days,
            {a: p.pack() for a, p in self.agents.items()},
            self.triggers,
        ]
        out: bytes = msgpack.packb(doc, use_bin_type=True)
        return out

    @classmethod
    def decode(cls, data: bytes) -> Part:
        doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
        p = cls()
        p.counts, p.ratings = list(doc[0]), dict(doc[1])
        for values, raw in zip(
            (p.frt, p.frt_in_hours, p.wait, p.handling, p.turns), doc[2:7], strict=True
        ):
            values.frombytes(raw)
        p.slots, p.days = dict(doc[7]), dict(doc[8])
        p.agents = {a: AgentPart.unpack(x) for a, x in doc[9].items()}
        p.triggers = dict(doc[10])
        return p


def key_of(r: Row) -> Key:
    """The cell of a facts row: (site, local day, department or "")."""
    return (r[1], r[11], r[5] or "")


def parts_of(rows: Iterable[Row]) -> dict[Key, Part]:
    """Every cell's part of these rows (``rebuild_cells``' work, and the live rows')."""
    out: dict[Key, Part] = {}
    for r in rows:
        k = key_of(r)
        part = out.get(k)
        if part is None:
            part = out[k] = Part()
        part.add(r)
    return out


def apply(cells: dict[Key, Part], old: Iterable[Row], new: Iterable[Row]) -> set[Key]:
    """Take the ``old`` rows out of ``cells`` and the ``new`` ones in (in place).

    ``cells`` must hold a part (maybe empty) for every key of the rows.  Returns
    the keys whose part did not hold an old row: the caller recomputes those
    from the stored rows (``parts_of``) once the new rows are saved.
    """
    broken: set[Key] = set()
    for rows, sign in ((old, -1), (new, 1)):
        for r in rows:
            k = key_of(r)
            if k in broken:
                continue
            try:
                cells[k].add(r, sign)
            except RollupMismatch:
                broken.add(k)
    return broken

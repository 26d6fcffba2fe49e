"""Business hours: a site's time zone and weekly opening hours (pure code).

A schedule is seven days, Monday first, each a list of opening intervals in
minutes after local midnight, ``[start, end)`` with ``0 <= start < end <=
1440`` (``24:00`` closes at midnight).  Intervals of a day are sorted and do
not overlap; an interval may not run past midnight (write ``22:00-24:00`` on
one day and ``00:00-02:00`` on the next).  Times are wall-clock times of the
site's IANA time zone (``zoneinfo``), so opening hours follow daylight
saving time.

A site without a schedule is open all the time.  The schedule is kept as the
site document ``("settings", "hours")`` (``HOURS_DOC``), JSON::

    {"timezone": "Europe/Madrid",
     "week": [[[540, 1080]], [[540, 1080]], [], [], [], [], []]}

``parse_hours`` turns what an admin typed (``"09:00-13:00, 15:00-19:00"``
per day) into a ``BusinessHours`` or raises ``HoursError`` naming each bad
field; ``open_at`` and ``next_change`` answer questions about an instant.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..types import JSON

HOURS_DOC = ("settings", "hours")  # (kind, id) of the site document
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_INTERVALS = 6  # per day
_DAY_MINUTES = 24 * 60
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

Interval = tuple[int, int]


class HoursError(ValueError):
    """A schedule that cannot be saved; ``errors`` maps field names to reasons."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` of an IANA name; raises ``ZoneInfoNotFoundError``/``ValueError``."""
    return ZoneInfo(name)


def _valid_zone(name: str) -> bool:
    if not name or len(name) > 64:
        return False
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class BusinessHours:
    timezone: str = "UTC"
    week: tuple[tuple[Interval, ...], ...] = field(default_factory=lambda: ((),) * 7)

    def to_json(self) -> JSON:
        return {"timezone": self.timezone, "week": [[list(i) for i in day] for day in self.week]}

    @classmethod
    def from_json(cls, data: Any) -> BusinessHours:
        """Check and load the stored (or imported) form; raises ``HoursError``."""
        errors: dict[str, str] = {}
        if not isinstance(data, dict):
            raise HoursError({"hours": "must be a map with 'timezone' and 'week'"})
        tz = data.get("timezone")
        if not isinstance(tz, str) or not _valid_zone(tz):
            errors["timezone"] = "unknown time zone (use an IANA name such as Europe/Madrid)"
        raw = data.get("week")
        week: list[tuple[Interval, ...]] = []
        if not isinstance(raw, list) or len(raw) != 7:
            errors["week"] = "must list 7 days, Monday first"
        else:
            for name, day in zip(DAYS, raw, strict=True):
                try:
                    week.append(_check_day(day))
                except ValueError as exc:
                    errors[name] = str(exc)
        if errors:
            raise HoursError(errors)
        return cls(str(tz), tuple(week))

    def describe(self, day: int) -> str:
        """Day ``day`` (0 = Monday) as the form shows it: ``"09:00-13:00, 15:00-19:00"``."""
        return ", ".join(f"{_hhmm(a)}-{_hhmm(b)}" for a, b in self.week[day])


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _check_day(day: Any) -> tuple[Interval, ...]:
    if not isinstance(day, list):
        raise ValueError("must be a list of [start, end] minute pairs")
    spans: list[Interval] = []
    for span in day:
        if (
            not isinstance(span, list | tuple)
            or len(span) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in span)
        ):
            raise ValueError("each interval is a pair of whole minutes [start, end]")
        spans.append((int(span[0]), int(span[1])))
    return _normalise(spans)


def _normalise(spans: Sequence[Interval]) -> tuple[Interval, ...]:
    if len(spans) > MAX_INTERVALS:
        raise ValueError(f"at most {MAX_INTERVALS} intervals a day")
    ordered = sorted(spans)
    for start, end in ordered:
        if not 0 <= start < end <= _DAY_MINUTES:
            raise ValueError(f"{_hhmm(start)}-{_hhmm(end)} is not a span within one day")
    for (_, end), (start, _) in itertools.pairwise(ordered):
        if start < end:
            raise ValueError("intervals overlap")
    return tuple(ordered)


def parse_day(text: str) -> tuple[Interval, ...]:
    """``"09:00-13:00, 15:00-19:00"`` (empty: closed) as intervals; raises ``ValueError``."""
    spans: list[Interval] = []
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        m = _SPAN.match(part)
        if m is None:
            raise ValueError(f"{part.strip()[:20]!r} is not like 09:00-17:30")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59:
            raise ValueError(f"{part.strip()} is not a time of day")
        spans.append((h1 * 60 + m1, h2 * 60 + m2))
    return _normalise(spans)


def parse_hours(timezone: str, days: Sequence[str]) -> BusinessHours:
    """The admin form (a zone and seven day strings) as a schedule; raises ``HoursError``."""
    errors: dict[str, str] = {}
    tz = timezone.strip()
    if not _valid_zone(tz):
        errors["timezone"] = "unknown time zone (use an IANA name such as Europe/Madrid)"
    week: list[tuple[Interval, ...]] = []
    for name, text in zip(DAYS, days, strict=True):
        try:
            week.append(parse_day(text))
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise HoursError(errors)
    return BusinessHours(tz, tuple(week))


def open_at(hours: BusinessHours | None, when: float) -> bool:
    """Whether the site is open at Unix time ``when`` (no schedule: always open)."""
    if hours is None:
        return True
    local = datetime.fromtimestamp(when, zone(hours.timezone))
    minute = local.hour * 60 + local.minute + local.second / 60
    return any(a <= minute < b for a, b in hours.week[local.weekday()])


def next_change(hours: BusinessHours | None, when: float) -> float | None:
    """The first interval boundary after ``when`` (a moment ``open_at`` may flip), if any.

    Looks eight days ahead; ``None`` when the schedule never changes (no
    schedule, or closed all week).  Boundaries are local wall-clock times, so
    across a daylight-saving change they move with the clock.
    """
    if hours is None or not any(hours.week):
        return None
    tz = zone(hours.timezone)
    start = datetime.fromtimestamp(when, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    for offset in range(9):
        day = start + timedelta(days=offset)
        for a, b in hours.week[day.weekday()]:
            for minute in (a, b):
                local = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(
                    minutes=minute
                )
                # Wall-clock arithmetic: rebuild from the fields so DST is applied.
                stamp = datetime(
                    local.year, local.month, local.day, local.hour, local.minute, tzinfo=tz
                ).timestamp()
                if stamp > when:
                    return stamp
    return None

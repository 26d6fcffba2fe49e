"""Business hours (``chatserver/proactive/hours.py``): parsing the form, ``open_at``,
``next_change``."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from chatserver.proactive.hours import (
    BusinessHours,
    HoursError,
    next_change,
    open_at,
    parse_day,
    parse_hours,
)

MADRID = ZoneInfo("Europe/Madrid")
WEEKDAYS = ["09:00-13:00, 15:00-19:00"] * 5 + ["10:00-14:00", ""]


def at(*fields: int, tz: ZoneInfo = MADRID) -> float:
    return datetime(*fields, tzinfo=tz).timestamp()


def test_parse_day() -> None:
    assert parse_day("") == ()
    assert parse_day("15:00-19:00, 09:00-13:00") == ((540, 780), (900, 1140))
    assert parse_day("22:00-24:00; 00:00-01:30") == ((0, 90), (1320, 1440))
    for bad in ("9-5", "09:00-08:00", "09:00-25:00", "09:00-12:00, 11:00-13:00", "09:61-10:00"):
        with pytest.raises(ValueError):
            parse_day(bad)


def test_parse_hours_names_each_bad_field() -> None:
    hours = parse_hours("Europe/Madrid", WEEKDAYS)
    assert hours.describe(0) == "09:00-13:00, 15:00-19:00" and hours.describe(6) == ""
    with pytest.raises(HoursError) as err:
        parse_hours("Mars/Olympus", ["nope", *WEEKDAYS[1:]])
    assert set(err.value.errors) == {"timezone", "monday"}


def test_json_round_trip_and_refusals() -> None:
    hours = parse_hours("Europe/Madrid", WEEKDAYS)
    assert BusinessHours.from_json(hours.to_json()) == hours
    for bad in (
        None,
        {"timezone": "UTC", "week": [[]] * 6},
        {"timezone": "UTC", "week": [[[600, 500]]] + [[]] * 6},
        {"timezone": "UTC", "week": [[[1.5, 600]]] + [[]] * 6},
        {"timezone": "nowhere", "week": [[]] * 7},
    ):
        with pytest.raises(HoursError):
            BusinessHours.from_json(bad)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(2026, 3, 2, 8, 59), False),  # Monday before opening
        (at(2026, 3, 2, 9, 0), True),
        (at(2026, 3, 2, 12, 59, 59), True),
        (at(2026, 3, 2, 13, 0), False),  # lunch
        (at(2026, 3, 2, 18, 30), True),
        (at(2026, 3, 7, 10, 30), True),  # Saturday morning
        (at(2026, 3, 7, 15, 0), False),
        (at(2026, 3, 8, 12, 0), False),  # Sunday
        (at(2026, 3, 2, 8, 30, tz=ZoneInfo("UTC")), True),  # 09:30 in Madrid (CET, UTC+1)
        (at(2026, 7, 6, 7, 30, tz=ZoneInfo("UTC")), True),  # 09:30 in Madrid (CEST, UTC+2)
        (at(2026, 7, 6, 6, 30, tz=ZoneInfo("UTC")), False),  # 08:30 in summer
    ],
)
def test_open_at(when: float, expected: bool) -> None:
    assert open_at(parse_hours("Europe/Madrid", WEEKDAYS), when) is expected


def test_no_schedule_is_always_open() -> None:
    assert open_at(None, 0.0)
    assert next_change(None, 0.0) is None
    assert next_change(parse_hours("UTC", [""] * 7), 0.0) is None  # closed all week


def test_next_change() -> None:
    hours = parse_hours("Europe/Madrid", WEEKDAYS)
    assert next_change(hours, at(2026, 3, 2, 8, 0)) == at(2026, 3, 2, 9, 0)
    assert next_change(hours, at(2026, 3, 2, 9, 0)) == at(2026, 3, 2, 13, 0)
    assert next_change(hours, at(2026, 3, 6, 20, 0)) == at(2026, 3, 7, 10, 0)  # Fri -> Sat
    assert next_change(hours, at(2026, 3, 7, 15, 0)) == at(2026, 3, 9, 9, 0)  # Sat -> Mon
    # Across the spring change (29 March 2026, 02:00 -> 03:00): still 09:00 local.
    assert next_change(hours, at(2026, 3, 28, 15, 0)) == at(2026, 3, 30, 9, 0)
    midnight = parse_hours("UTC", ["22:00-24:00"] + [""] * 6)
    assert next_change(midnight, at(2026, 3, 2, 23, 0, tz=ZoneInfo("UTC"))) == at(
        2026, 3, 3, 0, 0, tz=ZoneInfo("UTC")
    )

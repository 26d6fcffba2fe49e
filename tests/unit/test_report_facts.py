"""The facts of one conversation and the report arithmetic, with answers worked by hand
(the generated week of tests/reports_fixture.py)."""

from __future__ import annotations

from chatserver.reports import metrics
from chatserver.reports.facts import from_row, to_row

from ..reports_fixture import facts_rows


def test_served_chat_times() -> None:
    c1 = facts_rows("s1", "a1", "a2")[0]
    # visitor 10:00:00 -> a1 10:00:50; visitor 10:01:00 -> a1 10:01:30
    assert c1.first_response == 50 and c1.response_times == (50, 30)
    assert c1.queue_wait == 20  # joined 10:00:20
    assert c1.handling == 280  # 10:00:20 -> 10:05:00
    assert c1.served and not c1.missed and c1.in_hours
    assert (c1.msgs_visitor, c1.msgs_agent, c1.transfers) == (2, 2, 0)
    assert c1.local_day == "2026-03-02" and c1.local_slot == 0 * 24 + 10
    assert c1.rating == "great" and c1.comment == "Very helpful"


def test_transfer_spans_and_first_replier() -> None:
    c2 = facts_rows("s1", "a1", "a2")[1]
    assert c2.transfers == 1 and c2.agents == ("a2", "a1")
    # visitor 10:02:00 -> a2 10:03:40 (1 min 40 s); visitor 10:04:30 -> a1 10:05:00
    assert c2.first_replier == "a2" and c2.first_response == 100
    assert c2.response_times == (100, 30)
    spans = {a: round(e - s) for a, s, e in c2.spans}
    assert spans == {"a2": 110, "a1": 360}
    assert c2.replies == (("a1", 1), ("a2", 1))


def test_missed_offline_and_hours() -> None:
    rows = facts_rows("s1", "a1", "a2")
    c3, c4, c5 = rows[2], rows[3], rows[4]
    assert c3.missed and not c3.in_hours and c3.queue_wait is None and c3.handling is None
    assert c4.missed and c4.in_hours and c4.queue_wait == 30 and c4.handling == 90
    assert c5.offline and not c5.missed and not c5.served


def test_trigger_message_is_no_reply_and_local_day() -> None:
    c6 = facts_rows("s1", "a1", "a2")[5]
    assert c6.trigger == "t1"
    assert c6.msgs_agent == 1 and c6.first_response == 60  # 00:31:00 -> 00:32:00
    assert c6.queue_wait == 5  # the queue starts with the visitor's message
    # 00:30 in Madrid is Friday 23:30 UTC: the local day and hour count
    assert c6.local_day == "2026-03-07" and c6.local_slot == 5 * 24 + 0
    assert not c6.in_hours


def test_rows_round_trip() -> None:
    for f in facts_rows("s1", "a1", "a2"):
        assert from_row(to_row(f)) == f


def test_concurrency() -> None:
    # two overlapping chats then one alone: peak 2; 1265 chat-seconds over 1205 busy
    spans = [(0.0, 280.0), (220.0, 580.0), (1000.0, 1090.0), (2000.0, 2535.0)]
    peak, mean, busy = metrics.concurrency(spans)
    assert (peak, mean, busy) == (2, 1.05, 1205.0)
    # touching spans do not overlap
    assert metrics.concurrency([(0.0, 10.0), (10.0, 20.0)])[0] == 1

"""The Store contract: conversation facts rows (``ReportStore``), and the report over them.

Every test runs on each backend of ``conftest.FACTORIES``.  The known-answer
test aggregates the generated week of ``tests/reports_fixture.py``; every
expected figure is worked out in the comment beside it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from chatserver.reports import service
from chatserver.reports.service import Period
from chatserver.store import Store
from chatserver.types import ConvState

from ..reports_fixture import TZ, facts_rows
from .helpers import new_conv, say

pytestmark = pytest.mark.anyio


async def test_save_get_replace_and_range(store: Store) -> None:
    site = await store.create_site("Shop")
    rows = facts_rows(site.id, "a1", "a2")
    await store.save_facts(rows)
    assert await store.get_facts("c2") == rows[1]
    assert await store.get_facts("c-none") is None
    # [since, until) by started, oldest first
    got = await store.report_facts(site.id, rows[0].started, rows[3].started)
    assert [f.conv_id for f in got] == ["c1", "c2", "c3"]
    assert await store.report_facts("s-other", 0, 9e12) == []
    # a row saved again replaces the first one
    await store.save_facts([replace(rows[0], rating="poor", comment="changed")])
    again = await store.get_facts("c1")
    assert again is not None and (again.rating, again.comment) == ("poor", "changed")
    assert len(await store.report_facts(site.id, 0, 9e12)) == len(rows)


async def test_closed_conversations_pages_and_finds_stale_rows(store: Store) -> None:
    conv = await new_conv(store)
    site_id = conv.site_id
    ids = [conv.id]
    for _ in range(4):
        v = await store.create_visitor(site_id)
        c, _ = await store.open_conversation(site_id, v.id)
        ids.append(c.id)
    for c in ids[:4]:  # the fifth stays open
        await say(store, c, "hi")
        await store.update_conversation(c, state=ConvState.CLOSED)
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        page, cursor = await store.closed_conversations(site_id, after=cursor, limit=3)
        assert len(page) <= 3
        seen.extend(page)
        if not cursor:
            break
    assert sorted(seen) == sorted(ids[:4]) and len(seen) == 4
    # no rows yet: all four are stale; write two (one with an old rating), rate one
    stale, _ = await store.closed_conversations(site_id, stale_only=True)
    assert sorted(stale) == sorted(ids[:4])
    assert await service.refresh(store, ids[0]) is not None
    assert await service.refresh(store, ids[1]) is not None
    assert await service.refresh(store, ids[4]) is None  # open: no row
    await store.rate_conversation(ids[1], "great", "thanks")
    stale, _ = await store.closed_conversations(site_id, stale_only=True)
    assert sorted(stale) == sorted([ids[1], ids[2], ids[3]])
    assert await service.rebuild(store, site_id, stale_only=True) == 3
    assert (await store.closed_conversations(site_id, stale_only=True))[0] == []
    row = await store.get_facts(ids[1])
    assert row is not None and row.rating == "great" and row.msgs_visitor == 1
    assert await service.rebuild(store, site_id) == 4


async def test_report_known_answers(store: Store) -> None:
    site = await store.create_site("Shop")
    await store.save_facts(facts_rows(site.id, "a1", "a2"))
    await store.add_counter(site.id, "triggers", "t1.fired", 10)  # all time: not the funnel's
    for name, n in (("fired.01", 1), ("fired.02", 4), ("fired.08", 3), ("fired.09", 5)):
        await store.add_counter(site.id, "triggers@2026-03", f"t1.{name}", n)
    await store.add_counter(site.id, "triggers@2026-03", "t1.chats.05", 2)
    await store.add_counter(site.id, "triggers@2026-02", "t1.chats.28", 9)  # the period before
    r = await service.report(store, site.id, Period(date(2026, 3, 2), date(2026, 3, 8), TZ))
    o = r.overview
    assert o["started"] == 6  # c1..c6; c7 is before, c9 after (Sunday 23:30 UTC)
    assert (o["served"], o["missed"], o["missed_in_hours"], o["offline"]) == (3, 2, 1, 1)
    assert o["first_response_median"] == 60  # of 50 (c1), 100 (c2), 60 (c6)
    assert o["first_response_mean"] == 70
    assert o["first_response_median_in_hours"] == 75  # c1, c2: (50 + 100) / 2
    assert o["response_time_median"] == 50  # of 30, 30, 50, 60, 100
    assert o["queue_wait_median"] == 15  # of 5 (c6), 10, 20, 30: (10 + 20) / 2
    assert o["handling_median"] == 375  # of 90, 280, 470, 535
    assert o["transfers"] == 1
    assert o["messages_per_chat"] == round(13 / 6, 3)  # 4 + 4 + 1 + 1 + 1 + 2
    assert (o["rated"], o["rating_great"], o["rating_poor"]) == (3, 0.3333, 0.3333)
    assert (
        r.previous["started"] == 1 and r.previous["first_response_median"] == 40
    )  # c7: 10:00:00 -> 10:00:40
    trend = {row[0]: row[1:] for row in r.tables["trend"].rows}
    assert trend["started"] == (6, 1, 5.0, 500.0)
    cols = r.tables["agents"].columns
    agents = {row[0]: dict(zip(cols, row, strict=True)) for row in r.tables["agents"].rows}
    a1, a2 = agents["a1"], agents["a2"]
    assert (a1["chats"], a1["served"], a1["messages"]) == (4, 3, 4)  # c1 c2 c4 c6
    assert a1["first_response_median"] == 55  # first replier in c1 (50) and c6 (60)
    assert a1["handling_median"] == 320  # 280, 360, 90, 535 of a1's own time
    # c1 and c2 overlap 10:04-10:05: peak 2; 1265 chat-seconds over 1205 busy ones
    assert (a1["peak_concurrent"], a1["mean_concurrent"]) == (2, 1.05)
    assert a1["interactions_per_hour"] == round(4 / (1205 / 3600), 2)
    assert (a1["rating_great"], a1["rating_okay"], a1["rating_poor"]) == (1, 1, 1)
    assert (a2["chats"], a2["first_response_median"], a2["handling_median"]) == (1, 100, 110)
    depts = {row[0]: row for row in r.tables["departments"].rows}
    assert depts["sales"][1:4] == (2, 2, 0) and depts["sales"][5] == 75
    assert depts["(none)"][1:5] == (3, 0, 2, 1)  # c3 c4 missed, c5 offline
    heat = {row[0]: row[1:] for row in r.tables["heatmap"].rows}
    assert heat["Mon"][10] == 2 and heat["Sat"][0] == 1 and heat["Sun"][23] == 0
    assert sum(sum(v) for v in heat.values()) == 6  # type: ignore[arg-type]
    daily = {row[0]: row[1:] for row in r.tables["daily"].rows}
    assert len(daily) == 7 and daily["2026-03-02"] == (2, 2, 0, 0)
    assert daily["2026-03-05"] == (1, 0, 0, 1) and daily["2026-03-08"] == (0, 0, 0, 0)
    assert [row[2:4] for row in r.tables["comments"].rows] == [
        ("poor", "Too slow"),
        ("great", "Very helpful"),
    ]
    (t1,) = r.tables["triggers"].rows
    assert t1 == ("t1", "t1", 7, 2, 1, 1, 1, 1)  # shown Mar 2 + 8, chats Mar 5
    # the filters
    only = service.report
    assert (await only(store, site.id, r.period, agent="a2")).overview["started"] == 1
    assert (await only(store, site.id, r.period, department="sales")).overview["started"] == 2
    assert (await only(store, site.id, r.period, tag="shipping")).overview["started"] == 1

"""A generated week of conversations whose report figures the tests compute by hand.

The site is in Europe/Madrid (UTC+1 in March 2026) and open Monday to Friday
09:00-18:00.  ``conversations(a1, a2)`` returns the conversations with their
entries, stamped at chosen local times; ``facts_rows`` computes their facts
rows as the server would (``reports.facts.compute_facts``).  The expected
figures are written out in the tests that use it (tests/contracts/
test_reports_known.py, tests/in_process/test_reports.py), each with the
arithmetic behind it.

The period is 2026-03-02 (Monday) to 2026-03-08 (Sunday):

c1  Mon 10:00  sales, tag shipping: visitor 10:00:00, a1 joins 10:00:20, replies
    10:00:50; visitor 10:01:00, a1 10:01:30; closed 10:05:00; rated great "Very helpful"
c2  Mon 10:02  sales: visitor 10:02:00, a2 joins 10:02:10, replies 10:03:40; a2
    transfers to a1 10:04:00 (a1 joins, a2 leaves); visitor 10:04:30, a1 10:05:00;
    closed 10:10:00; rated okay
c3  Tue 20:30  (after hours) visitor 20:30:00, nobody joins, closed 20:40:00: missed
c4  Wed 11:00  visitor 11:00:00, a1 joins 11:00:30, never writes, closed 11:02:00: missed
c5  Thu 09:30  an offline message, closed 09:30:05
c6  Sat 00:30  (Friday 23:30 UTC) support, tag proactive: trigger t1's message in
    a1's name 00:30:00, visitor 00:31:00, a1 joins 00:31:05, replies 00:32:00,
    closed 00:40:00; rated poor "Too slow"
c7  Wed 2026-02-25 10:00, the previous period: visitor, a1 joins 10:00:10,
    replies 10:00:40, closed 10:01:00
c9  Mon 2026-03-09 00:30 local (Sunday 23:30 UTC): after the period; missed
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from chatserver.proactive.hours import BusinessHours
from chatserver.reports.facts import ConvFacts, compute_facts
from chatserver.types import (
    AuthorKind,
    Conversation,
    ConvState,
    Entry,
    EntryKind,
)

TZ = "Europe/Madrid"
HOURS = BusinessHours(TZ, (((540, 1080),),) * 5 + ((), ()))
SINCE, UNTIL = "2026-03-02", "2026-03-08"


def t(day: int, hh: int, mm: int, ss: int = 0, month: int = 3) -> float:
    """Unix time of 2026-<month>-<day> hh:mm:ss in Madrid."""
    return datetime(2026, month, day, hh, mm, ss, tzinfo=ZoneInfo(TZ)).timestamp()


class _Conv:
    def __init__(self, cid: str, site: str, created: float, **kw: Any) -> None:
        self.id, self.site, self.created, self.kw = cid, site, created, kw
        self.entries: list[Entry] = []

    def _add(self, kind: EntryKind, who: AuthorKind, author: str, ts: float, **data: Any) -> None:
        self.entries.append(
            Entry(self.id, len(self.entries) + 1, kind, who, author, author, "x", ts, data=data)
        )

    def visitor(self, ts: float) -> _Conv:
        self._add(EntryKind.TEXT, AuthorKind.VISITOR, "v-" + self.id, ts)
        return self

    def agent(self, agent: str, ts: float, **data: Any) -> _Conv:
        self._add(EntryKind.TEXT, AuthorKind.AGENT, agent, ts, **data)
        return self

    def event(self, name: str, ts: float, **data: Any) -> _Conv:
        self._add(EntryKind.EVENT, AuthorKind.SYSTEM, "", ts, event=name, **data)
        return self

    def joined(self, agent: str, ts: float) -> _Conv:
        return self.event("joined", ts, agent={"id": agent, "name": agent})

    def left(self, agent: str, ts: float) -> _Conv:
        return self.event("left", ts, agent={"id": agent, "name": agent})

    def closed(self, ts: float, agents: tuple[str, ...] = ()) -> tuple[Conversation, list[Entry]]:
        self.event("closed", ts, by={"kind": "agent"})
        conv = Conversation(
            id=self.id,
            site_id=self.site,
            visitor_id="v-" + self.id,
            epoch="e",
            state=ConvState.CLOSED,
            created_at=self.created,
            queued_at=self.created,
            agents=agents,
            last_offset=len(self.entries),
            closed_at=ts,
            **self.kw,
        )
        return conv, self.entries


def conversations(site: str, a1: str, a2: str) -> list[tuple[Conversation, list[Entry]]]:
    out = []
    c = _Conv("c1", site, t(2, 10, 0), department="sales", tags=("shipping",), rating="great")
    c.kw["rating_comment"] = "Very helpful"
    c.visitor(t(2, 10, 0)).joined(a1, t(2, 10, 0, 20)).agent(a1, t(2, 10, 0, 50))
    out.append(c.visitor(t(2, 10, 1)).agent(a1, t(2, 10, 1, 30)).closed(t(2, 10, 5), (a1,)))
    c = _Conv("c2", site, t(2, 10, 2), department="sales", rating="okay")
    c.visitor(t(2, 10, 2)).joined(a2, t(2, 10, 2, 10)).agent(a2, t(2, 10, 3, 40))
    c.event("transferred", t(2, 10, 4), by={"id": a2}, to={"id": a1})
    c.joined(a1, t(2, 10, 4)).left(a2, t(2, 10, 4))
    out.append(c.visitor(t(2, 10, 4, 30)).agent(a1, t(2, 10, 5)).closed(t(2, 10, 10), (a1,)))
    c = _Conv("c3", site, t(3, 20, 30))
    out.append(c.visitor(t(3, 20, 30)).closed(t(3, 20, 40)))
    c = _Conv("c4", site, t(4, 11, 0))
    out.append(c.visitor(t(4, 11, 0)).joined(a1, t(4, 11, 0, 30)).closed(t(4, 11, 2), (a1,)))
    c = _Conv("c5", site, t(5, 9, 30), offline=True)
    out.append(c.visitor(t(5, 9, 30)).closed(t(5, 9, 30, 5)))
    c = _Conv("c6", site, t(7, 0, 30), department="support", tags=("proactive",))
    c.kw.update(rating="poor", rating_comment="Too slow")
    c.agent(a1, t(7, 0, 30), auto={"trigger": "t1", "name": "Welcome"})
    c.visitor(t(7, 0, 31)).joined(a1, t(7, 0, 31, 5)).agent(a1, t(7, 0, 32))
    out.append(c.closed(t(7, 0, 40), (a1,)))
    c = _Conv("c7", site, t(25, 10, 0, month=2))
    c.visitor(t(25, 10, 0, month=2)).joined(a1, t(25, 10, 0, 10, month=2))
    out.append(c.agent(a1, t(25, 10, 0, 40, month=2)).closed(t(25, 10, 1, month=2), (a1,)))
    c = _Conv("c9", site, t(9, 0, 30))
    out.append(c.visitor(t(9, 0, 30)).closed(t(9, 0, 35)))
    return out


def facts_rows(site: str, a1: str, a2: str) -> list[ConvFacts]:
    return [
        compute_facts(conv, entries, HOURS, entries[-1].ts)
        for conv, entries in conversations(site, a1, a2)
    ]

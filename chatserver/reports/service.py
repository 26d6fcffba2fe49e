"""The reports service: keeps the facts rows and answers report queries.

``Reports.install`` registers a conversation-event listener (``events.py``):
a conversation's row is written when it closes and rewritten when it is
rated.  Events live in memory only, so rows are kept right across restarts
by the record itself: at start-up a sweep writes the row of every closed
conversation whose row is missing or holds another rating (a crash between
the close and the listener), and ``chatserver reports rebuild`` recomputes
every row from the entries.  ``report`` aggregates the rows of a period
(``metrics.py``) together with the live facts of the open conversations.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ..events import ConversationEvent, EventKind
from ..proactive.hours import HOURS_DOC, BusinessHours, HoursError
from ..proactive.names import COUNTERS, TRIGGER_KIND, parse_dated
from ..store import Store
from ..types import Conversation, ConversationId, ConvState, Entry, SiteId, now
from . import metrics, rollup_tables
from .facts import ConvFacts, compute_facts, to_row
from .rollup import Part

if TYPE_CHECKING:
    from ..node import Node

log = logging.getLogger("chatserver.reports")

PAGE = 500  # conversations per page of the sweep and the rebuild
MAX_PAGES = 100_000  # bound of those loops (50 million conversations)
ENTRY_PAGE = 1000
MAX_ENTRIES = 1_000_000  # entries read of one conversation, at most
MAX_DAYS = 366  # the longest period a report covers
OPEN_LIMIT = 500  # open conversations taken into the live figures


async def site_hours(store: Store, site_id: SiteId) -> BusinessHours | None:
    """The site's business hours (``proactive/hours.py``), or ``None`` (always open)."""
    doc = await store.get_doc(site_id, *HOURS_DOC)
    if doc is None:
        return None
    try:
        return BusinessHours.from_json(doc.data)
    except HoursError:
        return None


async def all_entries(store: Store, conv_id: ConversationId) -> list[Entry]:
    out: list[Entry] = []
    after = 0
    while len(out) < MAX_ENTRIES:
        page = await store.entries(conv_id, after=after, limit=ENTRY_PAGE)
        out.extend(page)
        if len(page) < ENTRY_PAGE:
            break
        after = page[-1].offset
    return out


async def facts_of(
    store: Store, conv: Conversation, hours: BusinessHours | None, at: float | None = None
) -> ConvFacts:
    entries = await all_entries(store, conv.id)
    return compute_facts(conv, entries, hours, now() if at is None else at)


async def refresh(store: Store, conv_id: ConversationId) -> ConvFacts | None:
    """Write the row of a closed conversation from the record; ``None`` if it is open."""
    conv = await store.get_conversation(conv_id)
    if conv is None or conv.state is not ConvState.CLOSED:
        return None
    facts = await facts_of(store, conv, await site_hours(store, conv.site_id))
    await store.save_facts([facts])
    return facts


async def rebuild(store: Store, site_id: SiteId, *, stale_only: bool = False) -> int:
    """Recompute the rows of the site's closed conversations (all, or the stale ones);
    after all of them, the site's rollup cells from the rows too."""
    hours = await site_hours(store, site_id)
    cursor = ""
    done = 0
    for _ in range(MAX_PAGES):
        ids, cursor = await store.closed_conversations(
            site_id, after=cursor, limit=PAGE, stale_only=stale_only
        )
        batch: list[ConvFacts] = []
        for conv_id in ids:
            conv = await store.get_conversation(conv_id)
            if conv is not None and conv.state is ConvState.CLOSED:
                batch.append(await facts_of(store, conv, hours))
        await store.save_facts(batch)
        done += len(batch)
        if not cursor:
            break
    if not stale_only:
        await store.rebuild_cells(site_id)
    return done


@dataclass(frozen=True, slots=True)
class Period:
    """A report's days, ``first`` to ``last`` inclusive, in the site's time zone."""

    first: date
    last: date
    tz: str = "UTC"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def bounds(self) -> tuple[float, float]:
        """Unix times of the first day's local midnight and the day after the last."""
        zone = ZoneInfo(self.tz)
        start = datetime(self.first.year, self.first.month, self.first.day, tzinfo=zone)
        end_day = self.last + timedelta(days=1)
        end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=zone)
        return start.timestamp(), end.timestamp()

    def previous(self) -> Period:
        return Period(
            self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.tz
        )

    def day_list(self) -> list[str]:
        return [(self.first + timedelta(days=i)).isoformat() for i in range(self.days)]


async def trigger_counts(store: Store, site_id: SiteId, period: Period) -> dict[str, int]:
    """``{"<rule id>.fired": n, "<rule id>.chats": n}`` over the period's local days,
    from the dated counters (``proactive.names.dated``): one read per month."""
    first, last = period.first.isoformat(), period.last.isoformat()
    months = sorted({day[:7] for day in period.day_list()})
    out: dict[str, int] = defaultdict(int)
    for month in months:
        group = f"{COUNTERS}@{month}"
        for name, n in (await store.counters(site_id, group)).items():
            parsed = parse_dated(group, name)
            if parsed is not None and first <= parsed[0] <= last:
                out[f"{parsed[1]}.{parsed[2]}"] += n
    return dict(out)


@dataclass
class Report:
    """Every table of one report (what the page shows and the API serves)."""

    period: Period
    overview: dict[str, float | int | None]
    previous: dict[str, float | int | None]
    tables: dict[str, metrics.Table] = field(default_factory=dict)
    seconds: float = 0.0  # how long the query took
    cpu_seconds: float = 0.0  # the CPU time this process spent meanwhile (all threads)


TABLES = (
    "trend",
    "daily",
    "agents",
    "departments",
    "satisfaction",
    "comments",
    "triggers",
    "heatmap",
)


async def report(
    store: Store,
    site_id: SiteId,
    period: Period,
    *,
    agent: str | None = None,
    department: str | None = None,
    tag: str | None = None,
    live: bool = True,
    only: str | None = None,
    rollups: bool = True,
) -> Report:
    """Aggregate the period's rows (and the open conversations' live facts).

    ``only``: compute that one table (and the overviews), for the API's
    one-table answers and CSV downloads; every table otherwise.  Without an
    agent or tag filter the store's rollups are read instead of the rows when
    it keeps them (``rollups=False``: never; the tests compare the two).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    since, until = period.bounds()
    prev_period = period.previous()
    p_since, _ = prev_period.bounds()
    cells = None
    if agent is None and tag is None and rollups:
        first, last = prev_period.first.isoformat(), period.last.isoformat()
        cells = await store.report_cells(site_id, p_since, until, first, last)
    rows = [] if cells is not None else await store.report_rows(site_id, p_since, until)
    live_rows: list[metrics.Row] = []
    if live:
        hours = await site_hours(store, site_id)
        at = now()
        opened = await store.list_conversations(
            site_id, [ConvState.QUEUED, ConvState.ACTIVE], limit=OPEN_LIMIT
        )
        opened = [c for c in opened if p_since <= c.created_at < until]
        live_rows = [to_row(await facts_of(store, c, hours, at)) for c in opened]
    agents = {a.id: a.name for a in await store.list_agents(site_id)}
    rules = {
        d.id: str(d.data.get("name") or d.id) for d in await store.list_docs(site_id, TRIGGER_KIND)
    }
    counters = await trigger_counts(store, site_id, period) if only in (None, "triggers") else {}
    if cells is not None:
        commented: list[metrics.Row] = []
        if only in (None, "comments"):
            commented = await store.report_commented(site_id, since, until)
        await asyncio.sleep(0)
        parts, whole, over, prev, commented = _from_cells(
            period, cells, live_rows, commented, department
        )
        out = Report(period, over, prev)
        makers: dict[str, Callable[[], metrics.Table]] = {
            "trend": lambda: metrics.trend(over, prev),
            "daily": lambda: rollup_tables.daily(whole, period.day_list()),
            "agents": lambda: rollup_tables.agents(whole, agents),
            "departments": lambda: rollup_tables.departments(parts),
            "satisfaction": lambda: rollup_tables.satisfaction(whole),
            "comments": lambda: metrics.comments(commented, agents),
            "triggers": lambda: rollup_tables.triggers(whole, counters, rules),
            "heatmap": lambda: rollup_tables.heatmap(whole),
        }
    else:
        rows.extend(live_rows)
        rows = metrics.filter_rows(rows, agent=agent, department=department, tag=tag)
        current = [r for r in rows if r[3] >= since]
        before = [r for r in rows if r[3] < since]
        await asyncio.sleep(0)
        cols = metrics.Columns(current)
        over = metrics.overview(current, cols)
        prev = metrics.overview(before)
        out = Report(period, over, prev)
        makers = {
            "trend": lambda: metrics.trend(over, prev),
            "daily": lambda: metrics.daily(current, period.day_list(), cols),
            "agents": lambda: metrics.agents(current, agents, cols),
            "departments": lambda: metrics.departments(current, cols),
            "satisfaction": lambda: metrics.satisfaction(current),
            "comments": lambda: metrics.comments(current, agents),
            "triggers": lambda: metrics.triggers(current, counters, rules),
            "heatmap": lambda: metrics.heatmap(current, cols),
        }
    out.tables = {name: make() for name, make in makers.items() if only in (None, name)}
    out.seconds = time.perf_counter() - t0
    out.cpu_seconds = time.process_time() - c0
    return out


Overview = dict[str, float | int | None]


def _from_cells(
    period: Period,
    cells: list[tuple[str, str, bytes]],
    live_rows: list[metrics.Row],
    commented: list[metrics.Row],
    department: str | None,
) -> tuple[dict[str, Part], Part, Overview, Overview, list[metrics.Row]]:
    """Merge the rollup cells of the period (per department, and all) and of the
    one before, with the live rows; their overviews; the commented rows."""
    first = period.first.isoformat()
    since, _ = period.bounds()
    now_parts: dict[str, Part] = {}
    before_parts: dict[str, Part] = {}
    for day, dept, data in cells:
        if department is not None and (dept or metrics.NO_DEPARTMENT) != department:
            continue
        into = now_parts if day >= first else before_parts
        part = Part.decode(data)
        if dept in into:
            into[dept].merge(part)
        else:
            into[dept] = part
    live_rows = metrics.filter_rows(live_rows, department=department)
    for r in live_rows:
        into = now_parts if r[3] >= since else before_parts
        into.setdefault(r[5] or "", Part()).add(r)
    whole = rollup_tables.total(now_parts)
    over = rollup_tables.overview(whole)
    prev = rollup_tables.overview(rollup_tables.total(before_parts))
    commented = metrics.filter_rows(commented, department=department)
    commented += [r for r in live_rows if r[3] >= since and r[21]]
    return now_parts, whole, over, prev, commented


class Reports:
    """The facts rows' upkeep in a running node (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.written = 0
        self.swept = 0

    def install(self) -> None:
        self.node.convs.events.listen("reports", self.on_event, self.wants)
        self.node.hub.add_service(self.start, self.close)

    @staticmethod
    def wants(event: ConversationEvent) -> bool:
        return event.kind in (EventKind.CLOSED, EventKind.RATED) or (
            event.kind is EventKind.TAGGED and event.data.get("closed") is True
        )

    async def on_event(self, event: ConversationEvent) -> None:
        if await refresh(self.node.store, event.conv_id) is not None:
            self.written += 1

    async def start(self) -> None:
        self.node.hub.spawn(self.sweep())

    async def close(self) -> None:
        """The sweep is a hub task: the hub cancels it."""

    async def sweep(self) -> None:
        """Write the rows a crash missed (every site's stale closed conversations)."""
        try:
            for site in await self.node.store.list_sites():
                self.swept += await rebuild(self.node.store, site.id, stale_only=True)
            if self.swept:
                log.info("reports: wrote %d missing conversation facts rows", self.swept)
        except Exception:
            log.exception("reports: the start-up sweep failed")

"""What the engine keeps per site and per visitor, and how it reads them from the store.

``SiteRules``: a site's enabled rules in evaluation order with its business
hours (``load_rules`` reads and parses them).  ``Watch``: what this process
knows of one connected visitor (``new_watch`` builds it from the page views
and firings read at its first event).  ``facts`` turns a watch into the
``Facts`` the rules are evaluated against.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..session import Session
from ..store import VISIT_GAP, Store
from ..types import Firing, PageView, SiteId, Visitor
from .conditions import Facts, Plan, ordered, plan
from .hours import HOURS_DOC, BusinessHours, HoursError, next_change, open_at
from .model import Rule, RuleError
from .names import TRIGGER_KIND
from .rules import parse_rule

log = logging.getLogger("chatserver.proactive")


@dataclass(slots=True)
class SiteRules:
    """A site's enabled rules in evaluation order, and what evaluating them needs."""

    rules: list[Rule]
    hours: BusinessHours | None
    loaded: float  # time.monotonic() of the read
    signature: tuple[tuple[str, float], ...] = ()
    departments: frozenset[str] = frozenset()  # asked by agent_online conditions
    uses_hours: bool = False
    plans: list[tuple[Rule, Plan]] = field(default_factory=list)
    # Business hours, known until the next boundary (open_at/next_change once per change).
    open_now: bool = True
    open_from: float = math.inf
    open_until: float = -math.inf
    hours_next: float | None = None

    def __post_init__(self) -> None:
        self.plans = [(r, plan(r)) for r in self.rules]

    def open_at(self, now: float) -> bool:
        """Whether the site is within business hours at ``now`` (cached to the next change)."""
        if not self.open_from <= now < self.open_until:
            self.open_from = now
            self.open_now = open_at(self.hours, now)
            self.hours_next = next_change(self.hours, now)
            self.open_until = math.inf if self.hours_next is None else self.hours_next
        return self.open_now


class Watch:
    """What this process knows of one connected visitor, for its site's rules."""

    __slots__ = (
        "again",
        "attributes",
        "busy",
        "device",
        "fired",
        "lang",
        "page_fired",
        "page_since",
        "pages",
        "pending_url",
        "referrer",
        "sessions",
        "signals",
        "site_id",
        "title",
        "url",
        "visit",
        "visit_since",
        "visitor_id",
        "visits",
    )

    def __init__(self, visitor: Visitor) -> None:
        self.visitor_id = visitor.id
        self.site_id = visitor.site_id
        self.sessions: set[Session] = set()
        self.url = ""
        self.title = ""
        self.referrer = ""
        self.page_since = 0.0
        self.pending_url: str | None = None  # the page hello announced, before its page frame
        self.visit = 0
        self.visit_since = 0.0
        self.visits = visitor.visits
        self.pages = 0
        self.attributes = visitor.attributes
        self.device = "desktop"
        self.lang = ""
        self.fired: dict[str, Firing] = {}
        self.page_fired: set[str] = set()  # "always" rules fired during this page view
        self.busy = False
        self.again = False
        self.signals: set[str] = set()  # the recordings' signals on the current page


@dataclass(slots=True)
class _Online:
    at: float
    value: bool


@dataclass(slots=True)
class Stats:
    evaluations: int = 0
    fired: int = 0
    wakeups: int = 0


async def load_rules(store: Store, site_id: SiteId) -> SiteRules:
    """The site's enabled rules and business hours as stored; invalid ones are skipped."""
    docs = await store.list_docs(site_id, TRIGGER_KIND)
    rules: list[Rule] = []
    for doc in docs:
        try:
            rule = parse_rule(doc.data, None, doc.id)
        except RuleError as exc:  # only if written around the console: skip it
            log.warning("trigger %s of site %s is invalid, skipped: %s", doc.id, site_id, exc)
            continue
        if rule.enabled:
            rules.append(rule)
    hours = None
    stored = await store.get_doc(site_id, *HOURS_DOC)
    if stored is not None:
        try:
            hours = BusinessHours.from_json(stored.data)
        except HoursError as exc:
            log.warning("business hours of site %s are invalid, ignored: %s", site_id, exc)
    return SiteRules(
        rules=ordered(rules),
        hours=hours,
        loaded=time.monotonic(),
        signature=(
            *((d.id, d.updated_at) for d in docs),
            ("hours", stored.updated_at if stored else 0.0),
        ),
        departments=frozenset(d for r in rules for d in plan(r).departments),
        uses_hours=any(plan(r).hours for r in rules),
    )


def new_watch(
    session: Session,
    visitor: Visitor,
    views: Sequence[PageView],
    fired: dict[str, Firing],
    now: float,
) -> Watch:
    """A visitor's watch from its page views (newest first) and firings, at ``now``."""
    w = Watch(visitor)
    w.fired = fired
    info = session.presence_info
    w.device = str(info.get("device") or "desktop")
    w.lang = str(info.get("lang") or "")
    if views and now - views[0].ts <= VISIT_GAP:
        w.visit = views[0].visit
        this_visit = [v for v in views if v.visit == w.visit]
        w.visit_since = this_visit[-1].ts
        w.pages = len(this_visit)
        newest = views[0]
        w.url, w.title, w.referrer, w.page_since = (
            newest.url,
            newest.title,
            newest.referrer,
            newest.ts,
        )
    else:
        # The next page view starts a visit; count it from now.
        w.visit = max(visitor.visits, views[0].visit if views else 0) + 1
        w.visits = w.visit
        w.visit_since = now
        w.page_since = now
    return w


def facts(w: Watch, site: SiteRules, now: float, online: Mapping[str, bool]) -> Facts:
    """What the rules are evaluated against: ``w`` at ``now``."""
    return Facts(
        now=now,
        url=w.url,
        title=w.title,
        referrer=w.referrer,
        page_since=w.page_since,
        visit_since=w.visit_since,
        visits=w.visits,
        pages=w.pages,
        attributes=w.attributes,
        device=w.device,
        lang=w.lang,
        has_chat=any(s.conv_id is not None for s in w.sessions),
        open=site.open_at(now) if site.uses_hours else True,
        online=online,
        signals=frozenset(w.signals),
    )

"""Proactive triggers at run time: what each visitor is doing, one timer, the actions.

The hub calls in on a visitor's ``hello``, ``page``, ``attrs`` and ``send``
and when a connection closes.  For every visitor of a site that has rules
this process keeps a small ``Watch`` (the page and since when, the visit,
attributes, device, language, the rules already fired) and evaluates the
site's rules (``rules.matches``) on each event.  Time conditions
("3 seconds on the page") are served by **one** ``TimerHeap`` for the whole
process and one ``loop.call_at`` for its earliest instant: each visitor has
at most one pending wake-up, the next instant a time condition (or a
business-hours boundary, or a frequency gap) could turn a rule true.

Firing is decided by the store (``Store.claim_firing``), atomically, so a
visitor whose reload lands on another process never gets a rule twice; the
firings are read back at ``hello``.  Counters (``triggers`` group: ``<id>.fired``
and ``<id>.chats``) are atomic store counters.

**A triggered message does not occupy an agent.**  Like a greeting in
Zendesk or LiveChat, it opens the visitor's conversation (tagged
``proactive``) without routing it: it has no place in the queue and no agent
is assigned until the visitor answers; then it is routed like any new
conversation.  Until then it is marked by a site document
``("trigger-wait", <conversation id>)``; claiming it with ``delete_doc`` makes
exactly one process route it.  Agents see it in their list (queued, tagged
``proactive``) and may join it at any time.  One the visitor never answers
is closed by the periodic sweep once the visitor is gone and
``WAIT_LIMIT`` has passed.

Rules (site documents of kind ``trigger``) and business hours are read from
the store and cached for ``RULES_TTL`` seconds.  After a change the console
calls ``control.triggers_changed``: this process and, through a control
event, every other one call ``invalidate`` at once; the TTL only bounds how
long a process that missed the event (a pub/sub outage) keeps old rules.

This module holds the engine's state and its event flow; the rest of the
package does the parts: ``watch.py`` (per-site rules, per-visitor watches,
facts), ``actions.py`` (firing and actions), ``waits.py`` (greetings waiting
for an answer, and the sweep), ``scheduler.py`` (the timer heap).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..events import ConversationEvent, EventKind
from ..session import Session
from ..store import MAX_PAGE_VIEWS
from ..types import (
    AuthorKind,
    Conversation,
    ConversationId,
    Entry,
    PageView,
    RecordingMark,
    SiteId,
    Visitor,
    VisitorId,
)
from . import actions, waits
from .conditions import Facts
from .hours import zone
from .model import Frequency, Rule
from .names import COUNTERS, WAIT_KIND, dated
from .scheduler import TimerHeap
from .waits import SWEEP_EVERY
from .watch import SiteRules, Stats, Watch, _Online, facts, load_rules, new_watch

if TYPE_CHECKING:
    from ..node import Node


log = logging.getLogger("chatserver.proactive")

FOLLOW_WINDOW = 600.0  # a visitor message this soon after a firing counts as a chat that followed
RULES_TTL = 5.0  # seconds a process keeps a site's rules before reading them again
ONLINE_TTL = 2.0  # seconds an "agent online in department" answer is reused
_SWEEP = ""  # the sweep's key in the timer heap (visitor ids are never empty)


class Proactive:
    """The trigger engine of one process (``hub.triggers``).

    ``clock`` gives wall-clock seconds (page views carry wall-clock times);
    with ``timer=False`` nothing is scheduled on the event loop and the
    caller runs ``run_due`` itself (deterministic tests and the benchmark).
    """

    def __init__(
        self, node: Node, clock: Callable[[], float] = time.time, timer: bool = True
    ) -> None:
        self.node = node
        self.clock = clock
        self.timer = timer
        self.watches: dict[VisitorId, Watch] = {}
        self.timers: TimerHeap[str] = TimerHeap()
        self.stats = Stats()
        self._handle: asyncio.TimerHandle | None = None
        self._armed: float | None = None
        self._sites: dict[SiteId, SiteRules] = {}
        self._site_locks: dict[SiteId, asyncio.Lock] = {}
        self._online: dict[tuple[SiteId, str], _Online] = {}
        self._waiting: set[ConversationId] = set()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Take unanswered proactive conversations out of the restored queue; plan the sweep."""
        await waits.restore(self.node, self._waiting)
        self.timers.set(_SWEEP, self.clock() + SWEEP_EVERY)
        self._arm()

    async def close(self) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.watches.clear()

    # -- rules -------------------------------------------------------------------

    async def site_rules(self, site_id: SiteId) -> SiteRules:
        """The site's enabled rules (cached ``RULES_TTL`` seconds)."""
        cached = self._sites.get(site_id)
        if cached is not None and time.monotonic() - cached.loaded < RULES_TTL:
            return cached
        lock = self._site_locks.setdefault(site_id, asyncio.Lock())
        async with lock:
            cached = self._sites.get(site_id)
            if cached is not None and time.monotonic() - cached.loaded < RULES_TTL:
                return cached
            fresh = await self._load_rules(site_id)
            self._sites[site_id] = fresh
        if cached is not None and cached.signature != fresh.signature:
            self._reevaluate_site(site_id)  # changed on another process
        return fresh

    async def _load_rules(self, site_id: SiteId) -> SiteRules:
        return await load_rules(self.node.store, site_id)

    def cached_sites(self) -> list[SiteId]:
        """The sites whose rules are cached now (``control.resync`` reloads them)."""
        return list(self._sites)

    def invalidate(self, site_id: SiteId) -> None:
        """The site's rules or hours changed (console): reload and re-evaluate its visitors."""
        self._sites.pop(site_id, None)
        self._reevaluate_site(site_id)

    def _reevaluate_site(self, site_id: SiteId) -> None:
        watches = [w for w in self.watches.values() if w.site_id == site_id]
        if watches:
            self.node.hub.spawn(self._evaluate_all(watches))

    async def _evaluate_all(self, watches: list[Watch]) -> None:
        for w in watches:
            await self._guarded(w)

    # -- visitor events (called by visitors.py) ----------------------------------

    async def hello(
        self, session: Session, visitor: Visitor, conv: Conversation | None, page: Any
    ) -> None:
        """A visitor connection said hello (``page``: the hello's page map, if any)."""
        try:
            if conv is not None and waits.unanswered(conv):
                self._waiting.add(conv.id)
            site = await self.site_rules(visitor.site_id)
            w = self.watches.get(visitor.id)
            if w is None:
                if not site.rules:
                    return  # a site without rules costs nothing more
                w = await self._watch(session, visitor)
            w.sessions.add(session)
            url = page.get("url") if isinstance(page, dict) else None
            if isinstance(url, str):
                title = page.get("title")
                # The page frame that follows is this same view: counted now.
                w.url = url[:2000]
                w.title = title[:500] if isinstance(title, str) else ""
                w.referrer = ""
                w.page_since = self.clock()
                w.pending_url = w.url
                w.pages += 1
                w.page_fired = set()
            await self._run(w)
        except Exception:
            log.exception("trigger evaluation at hello failed")

    async def page(self, session: Session, view: PageView, visitor: Visitor | None = None) -> None:
        """The visitor reported a page view (``visitor``: its record, if at hand)."""
        try:
            fresh = session.visitor_id not in self.watches
            w = await self._watch_of(session, visitor)
            if w is None:
                return
            now = self.clock()  # the view's time, on the engine's clock
            if fresh:  # built from the store (or session), which holds this view already
                pass
            elif view.visit != w.visit:  # a new visit
                w.visit, w.visit_since, w.pages = view.visit, now, 1
                w.visits = max(w.visits, view.visit)
                w.page_fired = set()
            elif w.pending_url != view.url:  # not the page hello already counted
                w.pages += 1
                w.page_fired = set()
            if w.pending_url != view.url:
                w.page_since = now
            if w.url != view.url:
                w.signals = set()  # signals belong to the page they happened on
            w.pending_url = None
            w.url, w.title, w.referrer = view.url, view.title, view.referrer
            await self._run(w)
        except Exception:
            log.exception("trigger evaluation of a page view failed")

    async def signals(self, session: Session, marks: Sequence[RecordingMark]) -> None:
        """The visitor's recording showed signals (``recordings/signals.py``): rules
        with a ``signal`` condition may fire now."""
        try:
            w = self.watches.get(session.visitor_id or "")
            if w is None or session not in w.sessions:
                return
            kinds = {m.kind for m in marks} - w.signals
            if not kinds:
                return
            w.signals |= kinds
            await self._run(w)
        except Exception:
            log.exception("trigger evaluation of signals failed")

    async def attributes(self, session: Session, visitor: Visitor) -> None:
        """The visitor's attributes changed."""
        try:
            w = await self._watch_of(session, visitor)
            if w is None:
                return
            w.attributes = visitor.attributes
            await self._run(w)
        except Exception:
            log.exception("trigger evaluation of attributes failed")

    def wants(self, event: ConversationEvent) -> bool:
        """Only a visitor's post that may answer a greeting or follow a firing here."""
        entry = event.entry
        if event.kind is not EventKind.ENTRY or entry is None:
            return False
        if entry.author_kind is not AuthorKind.VISITOR:
            return False
        if event.conv_id in self._waiting:
            return True
        w = self.watches.get(entry.author_id)
        return w is not None and any(not firing.followed for firing in w.fired.values())

    async def on_event(self, event: ConversationEvent) -> None:
        """A conversation event (``events.py``): a visitor's post is what matters here."""
        entry = event.entry
        if (
            event.kind is EventKind.ENTRY
            and entry is not None
            and entry.author_kind is AuthorKind.VISITOR
        ):
            await self.posted(event.site_id, entry)

    async def posted(self, site_id: SiteId, entry: Entry) -> None:
        """The visitor posted (typed, a file, the offline form): count chats that followed
        firings; route an answered greeting."""
        store = self.node.store
        try:
            w = self.watches.get(entry.author_id)
            now = self.clock()
            if w is not None:
                for rule_id, firing in list(w.fired.items()):
                    if firing.followed or not 0 <= now - firing.at <= FOLLOW_WINDOW:
                        continue
                    w.fired[rule_id] = replace(firing, followed=True)
                    if await store.claim_follow(w.visitor_id, rule_id, firing.at):
                        await self.count(site_id, rule_id, "chats", now)
            conv_id = entry.conversation_id
            if conv_id in self._waiting:
                self._waiting.discard(conv_id)
                if await store.delete_doc(site_id, WAIT_KIND, conv_id):
                    await self._route(site_id, conv_id)
        except Exception:
            log.exception("trigger bookkeeping of a visitor message failed")

    def disconnect(self, session: Session) -> None:
        """A connection closed; the visitor's last one drops its watch and timer."""
        if session.visitor_id is None:
            return
        w = self.watches.get(session.visitor_id)
        if w is None:
            return
        w.sessions.discard(session)
        if not w.sessions:
            del self.watches[w.visitor_id]
            self.timers.cancel(w.visitor_id)
            self._arm()

    # -- watches -----------------------------------------------------------------

    async def _watch_of(self, session: Session, visitor: Visitor | None = None) -> Watch | None:
        """The session's watch, made now if the site has rules (they may be new)."""
        if session.visitor_id is None or session.site is None:
            return None
        w = self.watches.get(session.visitor_id)
        if w is not None:
            w.sessions.add(session)
            return w
        if not (await self.site_rules(session.site.id)).rules:
            return None
        if visitor is None:
            visitor = await self.node.store.get_visitor(session.visitor_id)
            if visitor is None:
                return None
        w = await self._watch(session, visitor)
        w.sessions.add(session)
        return w

    async def _watch(self, session: Session, visitor: Visitor) -> Watch:
        """Build a visitor's watch from the store: visits, pages of this visit, firings.

        A visitor without a row yet (visitors.py) has its page views in the
        session and no firings."""
        if session.stored:
            views = await self.node.store.page_views(visitor.id, limit=MAX_PAGE_VIEWS)
            fired = await self.node.store.trigger_firings(visitor.id)
        else:
            views, fired = list(reversed(self.node.held.get(visitor.id))), {}
        existing = self.watches.get(visitor.id)
        if existing is not None:  # built meanwhile by another event
            return existing
        w = new_watch(session, visitor, views, fired, self.clock())
        self.watches[visitor.id] = w
        return w

    # -- evaluation ----------------------------------------------------------------

    async def _run(self, w: Watch) -> None:
        """Evaluate ``w`` now; events arriving meanwhile make it go round once more."""
        if w.busy:
            w.again = True
            return
        w.busy = True
        try:
            while True:
                w.again = False
                await self._evaluate(w)
                if not w.again or self.watches.get(w.visitor_id) is not w:
                    break
        finally:
            w.busy = False

    async def _guarded(self, w: Watch) -> None:
        try:
            await self._run(w)
        except Exception:
            log.exception("trigger evaluation failed")

    def facts(self, w: Watch, site: SiteRules, now: float, online: Mapping[str, bool]) -> Facts:
        return facts(w, site, now, online)

    async def _evaluate(self, w: Watch) -> None:
        site = await self.site_rules(w.site_id)
        if self.watches.get(w.visitor_id) is not w:
            return
        self.stats.evaluations += 1
        now = self.clock()
        online = {d: await self._agents_online(w.site_id, d) for d in site.departments}
        facts = self.facts(w, site, now, online)
        wake: float | None = None
        fired, visit, page_fired = w.fired, w.visit, w.page_fired
        for rule, steps in site.plans:
            # allowed_from, inlined (this loop runs for every rule on every event)
            last = fired.get(rule.id)
            frequency = rule.frequency
            allowed: float | None
            if last is None:
                allowed = 0.0
            elif frequency is Frequency.VISIT:
                allowed = None if last.visit >= visit else 0.0
            elif frequency is Frequency.ALWAYS:
                allowed = None if rule.id in page_fired else last.at + rule.gap
            else:
                allowed = None
            if allowed is None and not rule.stop:
                continue  # never again for this visitor (visit, page view), stops nothing
            if steps.referrer and w.pending_url is not None:
                continue  # the referrer comes with the page frame that follows hello
            hit = steps.matches(facts)
            if hit and allowed is not None and allowed <= now:
                await self._fire(w, rule, now)
                if steps.sends:
                    facts.has_chat = True
            elif allowed is not None:
                if allowed > now:
                    wake = allowed if wake is None or allowed < wake else wake
                if not hit and steps.timed:
                    at = steps.wake_at(facts)
                    if at is not None and (wake is None or at < wake):
                        wake = at
                if not hit and steps.hours:
                    site.open_at(now)
                    wake = _earliest(wake, site.hours_next)
            if hit and rule.stop:
                break
        if self.watches.get(w.visitor_id) is w:
            self.timers.set(w.visitor_id, wake)
            self._arm()

    def allowed_from(self, w: Watch, rule: Rule) -> float | None:
        """When the rule's frequency next lets it fire for ``w`` (``None``: not again)."""
        last = w.fired.get(rule.id)
        if rule.frequency is Frequency.VISITOR:
            return None if last is not None else 0.0
        if rule.frequency is Frequency.VISIT:
            return None if last is not None and last.visit >= w.visit else 0.0
        if rule.id in w.page_fired:
            return None
        return last.at + rule.gap if last is not None else 0.0

    async def _agents_online(self, site_id: SiteId, dept: str) -> bool:
        key = (site_id, dept)
        now = time.monotonic()
        cached = self._online.get(key)
        if cached is None or now - cached.at > ONLINE_TTL:
            count = await self.node.router.available_agents(site_id, dept or None)
            cached = self._online[key] = _Online(now, count > 0)
        return cached.value

    # -- the one timer -------------------------------------------------------------

    def _arm(self) -> None:
        if not self.timer or self._closed:
            return
        when = self.timers.next()
        if when == self._armed:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed = when
        if when is None:
            return
        loop = asyncio.get_running_loop()
        # A hair late rather than early: the condition must hold when we look.
        delay = max(0.0, when - self.clock()) + 0.01
        self._handle = loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._handle = None
        self._armed = None
        self.node.hub.spawn(self.run_due())

    async def run_due(self) -> None:
        """Evaluate every visitor whose instant has come (and run the sweep when due)."""
        for key in self.timers.pop_due(self.clock()):
            if key == _SWEEP:
                try:
                    await self.sweep()
                except Exception:
                    log.exception("sweep of unanswered proactive chats failed")
                self.timers.set(_SWEEP, self.clock() + SWEEP_EVERY)
                continue
            w = self.watches.get(key)
            if w is not None:
                self.stats.wakeups += 1
                await self._guarded(w)
        self._arm()

    # -- firing and actions ---------------------------------------------------------

    async def count(self, site_id: SiteId, rule_id: str, what: str, now: float) -> None:
        """Count a rule's ``what`` ("fired", "chats"): all time, and on the site's
        local day of ``now`` (``names.dated``; the reports' trigger funnel)."""
        store = self.node.store
        await store.add_counter(site_id, COUNTERS, f"{rule_id}.{what}")
        site = self._sites.get(site_id)
        tz = site.hours.timezone if site is not None and site.hours is not None else "UTC"
        day = datetime.fromtimestamp(now, zone(tz)).strftime("%Y-%m-%d")
        await store.add_counter(site_id, *dated(day, rule_id, what))

    async def _fire(self, w: Watch, rule: Rule, now: float) -> None:
        await actions.fire(self, w, rule, now)

    async def _route(self, site_id: SiteId, conv_id: ConversationId) -> None:
        await waits.route(self.node, site_id, conv_id)

    # -- the sweep ---------------------------------------------------------------------

    async def sweep(self) -> None:
        """Close proactive conversations nobody answered whose visitor is gone (``waits``)."""
        await waits.sweep(self.node, self._waiting, self.clock())


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)

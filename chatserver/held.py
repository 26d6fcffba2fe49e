"""Page views of visitors that have no Store row yet, held in this process's memory.

A visitor's record is written lazily (``visitor_rows.ensure``); until then its
``page`` frames are kept here instead of in the Store, so that the row, once
written, starts with the pages that led to it, and triggers and agents see
them meanwhile.  Held views are keyed by visitor (not by connection), so a
multi-page shop, which opens a new connection per page, keeps them across
page loads served by this process.

Bounded: the newest ``MAX_PER_VISITOR`` views of a visitor; a visitor's views
are dropped ``VISIT_GAP`` seconds after its last one (a new visit would start
then anyway); at most ``MAX_VIEWS`` views in all, the least recently active
visitors' dropped first.  Pure code: the caller supplies the clock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from .store import VISIT_GAP
from .types import PageView, VisitorId

MAX_PER_VISITOR = 50
MAX_VIEWS = 50_000


class HeldPages:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        # visitor -> its views, oldest first; ordered by last activity, oldest first
        self._views: OrderedDict[VisitorId, list[PageView]] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        """How many views are held."""
        return self._count

    def add(self, visitor_id: VisitorId, url: str, title: str, referrer: str) -> PageView:
        """Hold a view now, numbered by visit as ``Store.add_page_view`` would."""
        now = self.clock()
        self._expire(now)
        views = self._views.pop(visitor_id, [])
        visit = views[-1].visit if views else 0
        if not views or now - views[-1].ts > VISIT_GAP:
            visit += 1
        view = PageView(visitor_id, url, title, referrer, now, visit)
        views.append(view)
        self._count += 1
        if len(views) > MAX_PER_VISITOR:
            del views[0]
            self._count -= 1
        self._views[visitor_id] = views
        while self._count > MAX_VIEWS:
            _, dropped = self._views.popitem(last=False)
            self._count -= len(dropped)
        return view

    def get(self, visitor_id: VisitorId) -> list[PageView]:
        """The visitor's held views, oldest first."""
        self._expire(self.clock())
        return list(self._views.get(visitor_id, ()))

    def visitors(self) -> list[VisitorId]:
        """The visitors with views held now (``control.resync`` checks them)."""
        self._expire(self.clock())
        return list(self._views)

    def pop(self, visitor_id: VisitorId) -> list[PageView]:
        """Take the visitor's held views (oldest first): its row is being written."""
        self._expire(self.clock())
        views = self._views.pop(visitor_id, [])
        self._count -= len(views)
        return views

    def _expire(self, now: float) -> None:
        while self._views:
            visitor_id, views = next(iter(self._views.items()))
            if now - views[-1].ts <= VISIT_GAP:
                return
            del self._views[visitor_id]
            self._count -= len(views)

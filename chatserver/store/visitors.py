"""The visitors domain of the Store: rows, page history, tracked events, identities."""

from __future__ import annotations

from typing import Protocol

from ..types import (
    JSON,
    AgentId,
    PageView,
    SiteId,
    Visitor,
    VisitorEvent,
    VisitorId,
)


class VisitorStore(Protocol):
    """Visitors, their page history, tracked events and verified identities.

    * **Page history.** ``add_page_view`` numbers visits: a view more than
      ``VISIT_GAP`` seconds after the visitor's previous one (or the first
      view) starts a new visit and raises ``Visitor.visits`` by one.  At most
      ``MAX_PAGE_VIEWS`` views are kept per visitor; older ones are dropped.
    * ``update_visitor`` merges attributes atomically: concurrent merges of
      different keys all land.
    * **Tracked events.** ``add_visitor_event`` keeps the newest
      ``MAX_VISITOR_EVENTS`` events per visitor.
    * **Identity.** ``set_identity`` with ``verified=True`` claims the site's
      ``(site, user_id)`` identity for the visitor only when no other visitor
      holds it (first verified visitor wins, atomically);
      ``visitor_by_identity`` answers the holder.
    """

    async def create_visitor(self, site_id: SiteId, visitor_id: VisitorId | None = None) -> Visitor:
        """Store a visitor row: a new id, or ``visitor_id`` (a visitor that was
        handed a token before it had a row, docs/protocol.md §3).

        With ``visitor_id`` the call is idempotent: an existing row is
        returned unchanged (concurrent calls store one row).
        """

    async def get_visitor(self, visitor_id: VisitorId) -> Visitor | None: ...

    async def set_last_agent(self, visitor_id: VisitorId, agent_id: AgentId) -> None: ...

    async def update_visitor(
        self,
        visitor_id: VisitorId,
        *,
        name: str | None = None,
        email: str | None = None,
        attributes: JSON | None = None,
    ) -> Visitor:
        """Set the given name/email; merge ``attributes`` (``None`` values delete keys).

        A merge is atomic: concurrent merges of different keys all land.
        Returns the updated row; raises ``NotFound`` for an unknown visitor.
        """

    async def add_page_view(
        self,
        visitor_id: VisitorId,
        url: str,
        title: str = "",
        referrer: str = "",
        *,
        ts: float | None = None,
    ) -> PageView:
        """Record a page view (at ``ts``, default now) and count visits.

        The view belongs to the current visit unless it comes more than
        ``VISIT_GAP`` seconds after the previous view (or is the first), which
        starts a new one.  Keeps the newest ``MAX_PAGE_VIEWS`` views.  Raises
        ``NotFound`` for an unknown visitor.
        """

    async def page_views(self, visitor_id: VisitorId, limit: int = 50) -> list[PageView]:
        """The visitor's newest ``limit`` page views, newest first."""

    async def add_visitor_event(
        self, visitor_id: VisitorId, name: str, props: JSON, *, ts: float | None = None
    ) -> VisitorEvent:
        """Record a tracked event (at ``ts``, default now); keep the newest
        ``MAX_VISITOR_EVENTS``.  Raises ``NotFound`` for an unknown visitor."""

    async def visitor_events(self, visitor_id: VisitorId, limit: int = 50) -> list[VisitorEvent]:
        """The visitor's newest ``limit`` events, newest first."""

    async def set_identity(self, visitor_id: VisitorId, user_id: str, verified: bool) -> Visitor:
        """Set the visitor's ``user_id`` and ``verified``; a verified id also
        claims the site's identity index when it is free.  Raises ``NotFound``
        for an unknown visitor."""

    async def visitor_by_identity(self, site_id: SiteId, user_id: str) -> Visitor | None:
        """The visitor holding the verified identity ``user_id`` on the site."""

    async def find_visitors(
        self, site_id: SiteId, *, email: str = "", user_id: str = ""
    ) -> list[Visitor]:
        """The site's visitors whose e-mail is ``email`` (case ignored) or whose
        ``user_id`` is ``user_id``, verified or not, oldest first (an access or
        erasure request; no index: it reads every visitor of the site, or on
        Redis every visitor key)."""

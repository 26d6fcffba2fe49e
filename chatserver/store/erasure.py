"""The erasure domain of the Store: deleting a person's data, and data past retention.

``chatserver/privacy/erase.py`` (a request naming a person) and
``chatserver/privacy/retention.py`` (each site's periods) are its callers;
docs/privacy.md says what they remove.  The blobs (attachment bytes), the
recordings index and the archive index are other seams: the callers delete
from those with what these methods return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..types import Attachment, ConversationId, SiteId, VisitorId

# Written into a kept report row in place of the visitor id (``keep_facts``).
ERASED = "erased"


@dataclass
class Erased:
    """What one erasing call removed from the Store (for the callers and the log)."""

    visitors: int = 0
    conversations: list[ConversationId] = field(default_factory=list)
    entries: int = 0
    attachments: list[Attachment] = field(default_factory=list)  # their blobs go next
    page_views: int = 0
    events: int = 0
    jobs: int = 0  # outbox jobs emptied

    def add(self, other: Erased) -> None:
        self.visitors += other.visitors
        self.conversations.extend(other.conversations)
        self.entries += other.entries
        self.attachments.extend(other.attachments)
        self.page_views += other.page_views
        self.events += other.events
        self.jobs += other.jobs

    def counts(self) -> dict[str, int]:
        return {
            "visitors": self.visitors,
            "conversations": len(self.conversations),
            "entries": self.entries,
            "attachments": len(self.attachments),
            "page_views": self.page_views,
            "events": self.events,
            "jobs": self.jobs,
        }


class ErasureStore(Protocol):
    """Irreversible deletion, each call one atomic step on every backend.

    * **A visitor** (``erase_visitor``): the row (name, e-mail, attributes,
      identity), page views, custom events, trigger firings, every
      conversation of the visitor with all its entries and read markers, the
      attachments' rows (posted or not; the caller deletes their bytes), and
      the outbox jobs whose payload names the visitor or one of those
      conversations (emptied and failed, so no webhook or mail carries them
      any more).  The visitor id is remembered as erased (``is_erased``): a
      widget coming back with its old token gets a new id.
    * **Report rows** of the erased conversations are kept with the visitor
      id replaced by ``ERASED`` and the rating comment emptied
      (``keep_facts``), so the reports' figures do not change; otherwise they
      are deleted and the site's rollup cells recomputed.
    * **Retention** reads what is past a site's periods
      (``expired_conversations``, ``idle_visitors``, ``expired_attachments``)
      and deletes it with ``erase_conversations``, ``erase_visitor`` and
      ``delete_attachments``; ``prune_activity`` deletes page views and
      events older than a time.  Every deletion may be repeated: a second
      call (another process sweeping at the same moment) removes nothing more.
    """

    async def erase_visitor(
        self, visitor_id: VisitorId, *, keep_facts: bool = True, remember: bool = True
    ) -> Erased:
        """Delete the visitor and everything of theirs this Store holds; with
        ``remember`` (an erasure request, not retention) the id is kept as erased."""

    async def erase_conversations(
        self, conv_ids: Sequence[ConversationId], *, keep_facts: bool = True
    ) -> Erased:
        """Delete closed or open conversations with their entries, markers and files' rows."""

    async def is_erased(self, visitor_id: VisitorId) -> bool:
        """Whether ``visitor_id`` was erased (a token naming it must not resume it)."""

    async def expired_conversations(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[ConversationId]:
        """Closed conversations of the site closed before ``before``, oldest first."""

    async def idle_visitors(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[VisitorId]:
        """Visitors of the site with no conversation, not seen since before ``before``."""

    async def expired_attachments(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[Attachment]:
        """Posted attachments of the site uploaded before ``before``, oldest first."""

    async def delete_attachments(self, attachment_ids: Sequence[str]) -> list[Attachment]:
        """Delete attachments' rows (posted or not); the ones that were there."""

    async def prune_activity(self, site_id: SiteId, before: float) -> tuple[int, int]:
        """Delete the site's page views and custom events older than ``before``;
        how many of each."""

"""The firings domain of the Store: proactive trigger firings and site counters."""

from __future__ import annotations

from typing import Protocol

from ..types import (
    Firing,
    SiteId,
    VisitorId,
)


class FiringStore(Protocol):
    """Proactive trigger firings (per visitor) and counters (per site and group).

    * **Trigger firings.** ``claim_firing`` decides and records in one atomic
      step whether a trigger may fire for a visitor (its frequency against the
      last firing), so that processes racing for one visitor fire it once;
      ``claim_follow`` marks a firing as followed by a chat exactly once.
    * **Counters.** ``add_counter`` adds atomically.  The group
      ``ATTACHMENT_BYTES`` is written by ``AttachmentStore`` in the same step
      as the attachment it counts.
    """

    async def claim_firing(
        self,
        visitor_id: VisitorId,
        trigger_id: str,
        *,
        visit: int,
        frequency: str,
        gap: float,
        now: float,
    ) -> bool:
        """Record that ``trigger_id`` fires for the visitor now, if its frequency allows.

        Allowed when the trigger never fired for the visitor, or, by
        ``frequency``: ``"visit"`` when it last fired in a visit numbered below
        ``visit``; ``"always"`` when it last fired at least ``gap`` seconds
        before ``now``; ``"visitor"`` never again.  On success the firing
        ``(visit, now, followed=False)`` replaces the previous one and the
        answer is ``True``; otherwise nothing changes.  The check and the
        write are one atomic step: of concurrent claims that the rule allows
        only once, exactly one succeeds.
        """

    async def trigger_firings(self, visitor_id: VisitorId) -> dict[str, Firing]:
        """The visitor's last firing of every trigger that fired for it, by trigger id."""

    async def claim_follow(self, visitor_id: VisitorId, trigger_id: str, fired_at: float) -> bool:
        """Mark the visitor's firing of ``trigger_id`` at ``fired_at`` as followed by a chat.

        ``True`` only the first time for that firing (atomically); ``False``
        when it was marked already, or the trigger's last firing is another.
        """

    async def add_counter(self, site_id: SiteId, group: str, name: str, by: int = 1) -> int:
        """Add ``by`` to the site's counter ``name`` of ``group`` (from 0); return the new value."""

    async def counters(self, site_id: SiteId, group: str) -> dict[str, int]:
        """Every counter of the site's ``group``, by name."""

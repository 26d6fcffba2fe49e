"""The reports domain of the Store: one facts row per closed conversation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..reports.facts import ConvFacts, Row
from ..types import ConversationId, SiteId


class ReportStore(Protocol):
    """Conversation facts (``reports/facts.py``), the rows every report aggregates.

    * **Replace, never merge.**  ``save_facts`` writes whole rows; a row saved
      again for the same conversation replaces the earlier one (a rating, a
      rebuild).  Rows are derived data: ``chatserver reports rebuild``
      recomputes every one from the conversations' entries.
    * **Ranges.**  ``report_facts`` returns the rows of a site whose
      ``started`` lies in ``[since, until)``, in ``started`` order.
    * **Rollups.**  The SQL stores keep, in the transaction that saves a row,
      its cell of ``report_rollups`` (site, local day, department:
      ``reports/rollup.py``); ``rebuild_cells`` recomputes a site's cells
      from its rows.  ``report_cells`` returns the cells of a range of days,
      or ``None`` when they do not hold exactly the rows started in
      ``[since, until)`` (no rollups kept, as on Redis, or not yet rebuilt):
      the report then reads the rows.
    * **Paging the record.**  ``closed_conversations`` pages a site's closed
      conversations in (``queued_at``, id) order; with ``stale_only`` only
      those whose facts row is missing or holds another rating or comment
      than the conversation (the start-up sweep's work list).
    """

    async def save_facts(self, facts: Sequence[ConvFacts]) -> None:
        """Store these rows (each replacing its conversation's earlier row)."""

    async def get_facts(self, conv_id: ConversationId) -> ConvFacts | None: ...

    async def report_facts(self, site_id: SiteId, since: float, until: float) -> list[ConvFacts]:
        """The site's rows with ``since <= started < until``, oldest first."""

    async def report_rows(self, site_id: SiteId, since: float, until: float) -> list[Row]:
        """``report_facts`` as stored rows (``facts.COLUMNS`` order, ``to_row``'s
        values), for the reports' aggregation: no objects made per row."""

    async def rebuild_cells(self, site_id: SiteId) -> int:
        """Recompute every rollup cell of the site from its rows; the number of cells."""

    async def report_cells(
        self, site_id: SiteId, since: float, until: float, first_day: str, last_day: str
    ) -> list[tuple[str, str, bytes]] | None:
        """``(local day, department or "", rollup.Part bytes)`` of the days
        ``first_day`` to ``last_day`` (YYYY-MM-DD), or ``None`` (see above)."""

    async def report_commented(self, site_id: SiteId, since: float, until: float) -> list[Row]:
        """``report_rows`` of the rows with a comment only."""

    async def closed_conversations(
        self, site_id: SiteId, *, after: str = "", limit: int = 500, stale_only: bool = False
    ) -> tuple[list[ConversationId], str]:
        """Up to ``limit`` closed conversation ids after the cursor ``after`` ("" first),
        and the cursor to pass next ("" once there are no more).

        A page holds at most ``limit`` ids; with ``stale_only`` it may hold
        fewer, even none, while the cursor says there is more.
        """

"""Conversation facts for the reports (``ReportStore``), on PostgreSQL (``report_facts``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...reports.facts import COLUMNS, ConvFacts, Row, from_row, to_row
from ...types import ConversationId, SiteId
from ..sqlite.reports import _cursor
from .engine import PostgresEngine

_COLS = ", ".join(COLUMNS)
_UPSERT = (
    f"INSERT INTO report_facts ({_COLS}) VALUES"
    f" ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))})"
    " ON CONFLICT (conv_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
)


class PostgresReports(PostgresEngine):
    """``ReportStore`` on PostgreSQL: the methods of its domain over the shared engine."""

    async def save_facts(self, facts: Sequence[ConvFacts]) -> None:
        rows = [to_row(f) for f in facts]
        if not rows:
            return

        async def op(db: Any) -> None:
            await db.executemany(_UPSERT, rows)

        await self._tx(op)

    async def get_facts(self, conv_id: ConversationId) -> ConvFacts | None:
        row = await self._fetchrow(f"SELECT {_COLS} FROM report_facts WHERE conv_id = $1", conv_id)
        return None if row is None else from_row(tuple(row))

    async def report_facts(self, site_id: SiteId, since: float, until: float) -> list[ConvFacts]:
        return [from_row(r) for r in await self.report_rows(site_id, since, until)]

    async def report_rows(self, site_id: SiteId, since: float, until: float) -> list[Row]:
        rows = await self._fetch(
            f"SELECT {_COLS} FROM report_facts WHERE site_id = $1 AND started >= $2"
            " AND started < $3 ORDER BY started",
            site_id,
            since,
            until,
        )
        return [tuple(r) for r in rows]

    async def closed_conversations(
        self, site_id: SiteId, *, after: str = "", limit: int = 500, stale_only: bool = False
    ) -> tuple[list[ConversationId], str]:
        at, last = _cursor(after)
        rows = await self._fetch(
            "SELECT c.id, c.queued_at, f.conv_id IS NULL OR f.rating IS DISTINCT FROM c.rating"
            " OR f.comment != c.rating_comment FROM conversations c"
            " LEFT JOIN report_facts f ON f.conv_id = c.id"
            " WHERE c.site_id = $1 AND c.state = 'closed' AND (c.queued_at, c.id) > ($2, $3)"
            " ORDER BY c.queued_at, c.id LIMIT $4",
            site_id,
            at,
            last,
            limit,
        )
        ids = [r[0] for r in rows if r[2] or not stale_only]
        nxt = f"{rows[-1][1]!r} {rows[-1][0]}" if len(rows) == limit else ""
        return ids, nxt

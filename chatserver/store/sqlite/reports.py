"""Conversation facts for the reports (``ReportStore``), on SQLite (table ``report_facts``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ...reports.facts import COLUMNS, ConvFacts, Row, from_row, to_row
from ...types import ConversationId, SiteId
from .engine import SQLiteEngine

_COLS = ", ".join(COLUMNS)
_INSERT = f"INSERT OR REPLACE INTO report_facts ({_COLS}) VALUES ({', '.join('?' * len(COLUMNS))})"


def _cursor(after: str) -> tuple[float, str]:
    if not after:
        return (float("-inf"), "")
    at, _, conv_id = after.partition(" ")
    return (float(at), conv_id)


class SQLiteReports(SQLiteEngine):
    """``ReportStore`` on SQLite: the methods of its domain over the shared engine."""

    async def save_facts(self, facts: Sequence[ConvFacts]) -> None:
        rows = [to_row(f) for f in facts]
        if rows:
            await self._run(lambda db: db.executemany(_INSERT, rows))

    async def get_facts(self, conv_id: ConversationId) -> ConvFacts | None:
        row = await self._read_one(
            f"SELECT {_COLS} FROM report_facts WHERE conv_id = ?", (conv_id,)
        )
        return None if row is None else from_row(row)

    async def report_facts(self, site_id: SiteId, since: float, until: float) -> list[ConvFacts]:
        return [from_row(r) for r in await self.report_rows(site_id, since, until)]

    async def report_rows(self, site_id: SiteId, since: float, until: float) -> list[Row]:
        rows: list[Row] = await self._read_all(
            f"SELECT {_COLS} FROM report_facts WHERE site_id = ? AND started >= ?"
            " AND started < ? ORDER BY started",
            (site_id, since, until),
        )
        return rows

    async def closed_conversations(
        self, site_id: SiteId, *, after: str = "", limit: int = 500, stale_only: bool = False
    ) -> tuple[list[ConversationId], str]:
        at, last = _cursor(after)

        def op(db: sqlite3.Connection) -> tuple[list[ConversationId], str]:
            # Page the record (every closed conversation), keep the stale ones.
            rows = db.execute(
                "SELECT c.id, c.queued_at, f.conv_id IS NULL OR f.rating IS NOT c.rating"
                " OR f.comment != c.rating_comment FROM conversations c"
                " LEFT JOIN report_facts f ON f.conv_id = c.id"
                " WHERE c.site_id = ? AND c.state = 'closed' AND (c.queued_at, c.id) > (?, ?)"
                " ORDER BY c.queued_at, c.id LIMIT ?",
                (site_id, at, last, limit),
            ).fetchall()
            ids = [r[0] for r in rows if r[2] or not stale_only]
            nxt = f"{rows[-1][1]!r} {rows[-1][0]}" if len(rows) == limit else ""
            return ids, nxt

        return await self._read(op)

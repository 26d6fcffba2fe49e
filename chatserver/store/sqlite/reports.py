"""Conversation facts for the reports (``ReportStore``), on SQLite: table ``report_facts``
(a row per closed conversation) and ``report_rollups`` (its cells, ``reports/rollup.py``),
changed together in the writer's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial

from ...reports.facts import COLUMNS, ConvFacts, Row, from_row, to_row
from ...reports.rollup import Key, Part, apply, key_of, parts_of
from ...types import ConversationId, SiteId
from .engine import SQLiteEngine

_COLS = ", ".join(COLUMNS)
_INSERT = f"INSERT OR REPLACE INTO report_facts ({_COLS}) VALUES ({', '.join('?' * len(COLUMNS))})"


def _cursor(after: str) -> tuple[float, str]:
    if not after:
        return (float("-inf"), "")
    at, _, conv_id = after.partition(" ")
    return (float(at), conv_id)


_CELL_ROWS = f"SELECT {_COLS} FROM report_facts WHERE site_id = ? AND local_day = ?"
_CELL_WRITE = "INSERT OR REPLACE INTO report_rollups VALUES (?, ?, ?, ?, ?)"
_CELL_DROP = "DELETE FROM report_rollups WHERE site_id = ? AND local_day = ? AND department = ?"


def _recompute(db: sqlite3.Connection, key: Key) -> Part:
    rows = db.execute(_CELL_ROWS + " AND coalesce(department, '') = ?", key).fetchall()
    return parts_of(rows).get(key) or Part()


def _write_cells(db: sqlite3.Connection, cells: dict[Key, Part]) -> None:
    for key, part in cells.items():
        if part.n:
            db.execute(_CELL_WRITE, (*key, part.n, part.encode()))
        else:
            db.execute(_CELL_DROP, key)


def _save(db: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    """Replace the facts rows and change their cells (one transaction: the writer's)."""
    old: list[Row] = []
    ids = [r[0] for r in rows]
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ", ".join("?" * len(chunk))
        old += db.execute(
            f"SELECT {_COLS} FROM report_facts WHERE conv_id IN ({marks})", chunk
        ).fetchall()
    cells: dict[Key, Part] = {}
    for key in {key_of(r) for r in (*old, *rows)}:
        got = db.execute(
            "SELECT data FROM report_rollups WHERE site_id = ? AND local_day = ?"
            " AND department = ?",
            key,
        ).fetchone()
        cells[key] = Part() if got is None else Part.decode(got[0])
    broken = apply(cells, old, rows)
    db.executemany(_INSERT, rows)
    for key in broken:
        cells[key] = _recompute(db, key)
    _write_cells(db, cells)


def _site_days(db: sqlite3.Connection, site_id: str) -> list[str]:
    """Drop the site's cells; the days its rows cover (``rebuild_cells``' first step)."""
    db.execute("DELETE FROM report_rollups WHERE site_id = ?", (site_id,))
    got = db.execute("SELECT DISTINCT local_day FROM report_facts WHERE site_id = ?", (site_id,))
    return [d for (d,) in got]


def _rebuild_day(db: sqlite3.Connection, site_id: str, day: str) -> int:
    """The cells of one day of the site recomputed from its rows."""
    db.execute("DELETE FROM report_rollups WHERE site_id = ? AND local_day = ?", (site_id, day))
    cells = parts_of(db.execute(_CELL_ROWS, (site_id, day)).fetchall())
    _write_cells(db, cells)
    return len(cells)


def _cells(
    db: sqlite3.Connection, site_id: str, span: tuple[float, float], days: tuple[str, str]
) -> list[tuple[str, str, bytes]] | None:
    own = not db.in_transaction
    if own:
        db.execute("BEGIN")  # one snapshot for the count and the cells
    try:
        (count,) = db.execute(
            "SELECT count(*) FROM report_facts WHERE site_id = ? AND started >= ? AND started < ?",
            (site_id, *span),
        ).fetchone()
        got = db.execute(
            "SELECT local_day, department, n, data FROM report_rollups WHERE site_id = ?"
            " AND local_day >= ? AND local_day <= ?",
            (site_id, *days),
        ).fetchall()
    finally:
        if own:
            db.execute("COMMIT")
    if sum(r[2] for r in got) != count:
        return None
    return [(r[0], r[1], r[3]) for r in got]


class SQLiteReports(SQLiteEngine):
    """``ReportStore`` on SQLite: the methods of its domain over the shared engine."""

    async def save_facts(self, facts: Sequence[ConvFacts]) -> None:
        rows = [to_row(f) for f in facts]
        if rows:
            await self._run(lambda db: _save(db, rows))

    async def rebuild_cells(self, site_id: SiteId) -> int:
        # A transaction per day: a rebuild beside a serving node (another process
        # on the file) holds the write lock for milliseconds at a time, not seconds.
        # Meanwhile reports read rows (the cells do not add up) and a saved row
        # whose cell is gone recomputes it (``_save``).
        done = 0
        for day in await self._run(lambda db: _site_days(db, site_id)):
            done += await self._run(partial(_rebuild_day, site_id=site_id, day=day))
        return done

    async def report_cells(
        self, site_id: SiteId, since: float, until: float, first_day: str, last_day: str
    ) -> list[tuple[str, str, bytes]] | None:
        return await self._read(
            lambda db: _cells(db, site_id, (since, until), (first_day, last_day))
        )

    async def report_commented(self, site_id: SiteId, since: float, until: float) -> list[Row]:
        rows: list[Row] = await self._read_all(
            f"SELECT {_COLS} FROM report_facts WHERE site_id = ? AND started >= ?"
            " AND started < ? AND comment != '' ORDER BY started",
            (site_id, since, until),
        )
        return rows

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

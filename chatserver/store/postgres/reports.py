"""Conversation facts for the reports (``ReportStore``), on PostgreSQL: ``report_facts``
(a row per closed conversation) and ``report_rollups`` (its cells, ``reports/rollup.py``),
changed together in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from ...reports.facts import COLUMNS, ConvFacts, Row, from_row, to_row
from ...reports.rollup import Key, Part, apply, key_of, parts_of
from ...types import ConversationId, SiteId
from ..sqlite.reports import _cursor
from .engine import PostgresEngine

_COLS = ", ".join(COLUMNS)
_UPSERT = (
    f"INSERT INTO report_facts ({_COLS}) VALUES"
    f" ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))})"
    " ON CONFLICT (conv_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
)


_CELL_ROWS = f"SELECT {_COLS} FROM report_facts WHERE site_id = $1 AND local_day = $2"
_CELL_WRITE = (
    "INSERT INTO report_rollups VALUES ($1, $2, $3, $4, $5) ON CONFLICT"
    " (site_id, local_day, department) DO UPDATE SET n = excluded.n, data = excluded.data"
)
_CELL_DROP = "DELETE FROM report_rollups WHERE site_id = $1 AND local_day = $2 AND department = $3"


async def _lock_site(db: Any, site_id: str) -> None:
    """The transaction's lock on the site's cells (until it ends)."""
    await db.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "report-rollups:" + site_id)


async def _write_cells(db: Any, cells: dict[Key, Part]) -> None:
    for key, part in cells.items():
        if part.n:
            await db.execute(_CELL_WRITE, *key, part.n, part.encode())
        else:
            await db.execute(_CELL_DROP, *key)


async def _save(db: Any, rows: list[tuple[Any, ...]]) -> None:
    """Replace the facts rows and change their cells (in the caller's transaction)."""
    ids = [r[0] for r in rows]
    # Saves of one site's rows wait for each other (the cells are read, then written).
    for site in sorted({str(r[1]) for r in rows}):
        await _lock_site(db, site)
    old = [
        tuple(r)
        for r in await db.fetch(
            f"SELECT {_COLS} FROM report_facts WHERE conv_id = ANY($1::text[])", ids
        )
    ]
    cells: dict[Key, Part] = {}
    for key in sorted({key_of(r) for r in (*old, *rows)}):
        got = await db.fetchval(
            "SELECT data FROM report_rollups WHERE site_id = $1 AND local_day = $2"
            " AND department = $3",
            *key,
        )
        cells[key] = Part() if got is None else Part.decode(got)
    broken = apply(cells, old, rows)
    await db.executemany(_UPSERT, rows)
    for key in broken:
        got_rows = await db.fetch(_CELL_ROWS + " AND coalesce(department, '') = $3", *key)
        cells[key] = parts_of(tuple(r) for r in got_rows).get(key) or Part()
    await _write_cells(db, cells)


class PostgresReports(PostgresEngine):
    """``ReportStore`` on PostgreSQL: the methods of its domain over the shared engine."""

    async def save_facts(self, facts: Sequence[ConvFacts]) -> None:
        rows = [to_row(f) for f in facts]
        if not rows:
            return

        async def op(db: Any) -> None:
            await _save(db, rows)

        await self._tx(op)

    async def rebuild_cells(self, site_id: SiteId) -> int:
        """A transaction per day (as on SQLite): short locks beside a serving node."""

        async def days(db: Any) -> list[str]:
            await _lock_site(db, site_id)
            await db.execute("DELETE FROM report_rollups WHERE site_id = $1", site_id)
            got = await db.fetch(
                "SELECT DISTINCT local_day FROM report_facts WHERE site_id = $1", site_id
            )
            return [r[0] for r in got]

        async def one(db: Any, day: str) -> int:
            await _lock_site(db, site_id)
            await db.execute(
                "DELETE FROM report_rollups WHERE site_id = $1 AND local_day = $2", site_id, day
            )
            cells = parts_of(tuple(r) for r in await db.fetch(_CELL_ROWS, site_id, day))
            await _write_cells(db, cells)
            return len(cells)

        done = 0
        for day in await self._tx(days):
            done += await self._tx(partial(one, day=day))
        return done

    async def report_cells(
        self, site_id: SiteId, since: float, until: float, first_day: str, last_day: str
    ) -> list[tuple[str, str, bytes]] | None:
        async def op(db: Any) -> list[tuple[str, str, bytes]] | None:
            count = await db.fetchval(
                "SELECT count(*) FROM report_facts WHERE site_id = $1 AND started >= $2"
                " AND started < $3",
                site_id,
                since,
                until,
            )
            got = await db.fetch(
                "SELECT local_day, department, n, data FROM report_rollups WHERE site_id = $1"
                " AND local_day >= $2 AND local_day <= $3",
                site_id,
                first_day,
                last_day,
            )
            if sum(r[2] for r in got) != count:
                return None
            return [(r[0], r[1], bytes(r[3])) for r in got]

        return await self._tx(op, snapshot=True)

    async def report_commented(self, site_id: SiteId, since: float, until: float) -> list[Row]:
        rows = await self._fetch(
            f"SELECT {_COLS} FROM report_facts WHERE site_id = $1 AND started >= $2"
            " AND started < $3 AND comment != '' ORDER BY started",
            site_id,
            since,
            until,
        )
        return [tuple(r) for r in rows]

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

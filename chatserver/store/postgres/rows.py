"""Columns and helpers shared by the PostgreSQL domain modules.

The tables mirror SQLite's column for column (``migrations_postgres``), so the
row conversions are SQLite's (``store/sqlite/rows.py``): an asyncpg ``Record``
is indexed by position like a ``sqlite3.Row``.  Only the column lists that
name ``"offset"`` (a reserved word in PostgreSQL) and the conversation's
(its last offset a column here, read from the entries on SQLite) differ.
"""

from __future__ import annotations

from typing import Any

from ...errors import NotFound
from ...types import SiteId, Visitor, VisitorId
from ..common import ATTACHMENT_BYTES
from ..sqlite.rows import (
    _AGENT_COLS,
    _ATTACHMENT_COLS,
    _SITE_COLS,
    _VISITOR_COLS,
    _agent,
    _conv,
    _entry,
    _site,
    _visitor,
)

__all__ = [
    "ENTRY_COLS",
    "_AGENT_COLS",
    "_ATTACHMENT_COLS",
    "_CONV_COLS",
    "_CONV_INSERT_COLS",
    "_SITE_COLS",
    "_VISITOR_COLS",
    "_agent",
    "_conv",
    "_entry",
    "_site",
    "_visitor",
    "add_bytes",
    "marks",
    "visitor_of",
]

# PostgreSQL keeps a conversation's last offset and feed place on its row
# (``chat_append`` raises them under the row's lock); SQLite reads them from
# the entries (``store/sqlite/rows.py``).  The positions are the same.
_CONV_INSERT_COLS = (
    "id, site_id, visitor_id, epoch, state, created_at, queued_at, department, agents, "
    "last_offset, offline, closed_at"
)
_CONV_COLS = f"{_CONV_INSERT_COLS}, rating, rating_comment, rated_at, tags"

ENTRY_COLS = 'conv_id, "offset", kind, author_kind, author_id, author_name, body, ts, cid, data'


def marks(n: int, start: int = 1) -> str:
    """``$start, $start+1, ...``: ``n`` numbered parameters."""
    return ", ".join(f"${i}" for i in range(start, start + n))


async def visitor_of(db: Any, visitor_id: VisitorId, *, lock: bool = False) -> Visitor:
    """The visitor's row (locked for the transaction with ``lock``); ``NotFound`` if none."""
    row = await db.fetchrow(
        f"SELECT {_VISITOR_COLS} FROM visitors WHERE id = $1{' FOR UPDATE' if lock else ''}",
        visitor_id,
    )
    if row is None:
        raise NotFound(f"no visitor {visitor_id}")
    return _visitor(row)


async def add_bytes(db: Any, site_id: SiteId, *, unposted: int, total: int) -> None:
    """Move a site's attachment byte counters (``Store.attachment_bytes``)."""
    for name, by in (("unposted_bytes", unposted), ("total_bytes", total)):
        if by:
            await db.execute(
                "INSERT INTO counters (site_id, grp, name, value) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (site_id, grp, name) DO UPDATE SET value = counters.value + $4",
                site_id,
                ATTACHMENT_BYTES,
                name,
                by,
            )

"""Row and field conversions shared by the SQLite domain modules (moved from ``store_sqlite``)."""

from __future__ import annotations

import json
import sqlite3

from ...errors import NotFound
from ...types import (
    Agent,
    AuthorKind,
    Conversation,
    ConvState,
    Entry,
    EntryKind,
    Role,
    Site,
    SiteId,
    SiteSettings,
    Visitor,
    VisitorId,
)
from ..common import (
    ATTACHMENT_BYTES,
)

_SITE_COLS = "id, key, name, origins, settings, departments, created_at"

_AGENT_COLS = (
    "id, site_id, email, name, password_hash, role, capacity, departments, disabled, created_at"
)

# Columns added after the first schema have defaults, so INSERTs leave them out.
_CONV_INSERT_COLS = (
    "id, site_id, visitor_id, epoch, state, created_at, queued_at, department, agents, "
    "offline, closed_at"
)


# A conversation's last offset is its newest entry's (schema step 9): an
# append writes the entry and nothing of the conversation's row.  Read where
# the row's column was, by a seek to the end of the conversation's entries.
def conv_cols(table: str = "conversations") -> str:
    """The columns ``_conv`` reads, of the conversations table named ``table``
    in the query (its name or an alias)."""
    t = table
    return (
        f"{t}.id, {t}.site_id, {t}.visitor_id, {t}.epoch, {t}.state, {t}.created_at,"
        f" {t}.queued_at, {t}.department, {t}.agents,"
        f" (SELECT coalesce(max(e.offset), 0) FROM entries e WHERE e.conv_id = {t}.id),"
        f" {t}.offline, {t}.closed_at, {t}.rating, {t}.rating_comment, {t}.rated_at, {t}.tags"
    )


_CONV_COLS = conv_cols()

_ATTACHMENT_COLS = "id, site_id, uploader, name, content_type, size, created_at, conv_id"

_ENTRY_COLS = "conv_id, offset, kind, author_kind, author_id, author_name, body, ts, cid, data"


def _add_bytes(db: sqlite3.Connection, site_id: SiteId, *, unposted: int, total: int) -> None:
    """Move a site's attachment byte counters (``Store.attachment_bytes``)."""
    for name, by in (("unposted_bytes", unposted), ("total_bytes", total)):
        if by:
            db.execute(
                "INSERT INTO counters (site_id, grp, name, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (site_id, grp, name) DO UPDATE SET value = value + excluded.value",
                (site_id, ATTACHMENT_BYTES, name, by),
            )


_VISITOR_COLS = (
    "id, site_id, created_at, name, email, attributes, last_agent_id, visits, user_id, verified"
)


def _visitor(row: sqlite3.Row) -> Visitor:
    return Visitor(
        id=row[0],
        site_id=row[1],
        created_at=row[2],
        name=row[3],
        email=row[4],
        attributes=json.loads(row[5]),
        last_agent_id=row[6],
        visits=row[7],
        user_id=row[8],
        verified=bool(row[9]),
    )


def _visitor_of(db: sqlite3.Connection, visitor_id: VisitorId) -> Visitor:
    row = db.execute(f"SELECT {_VISITOR_COLS} FROM visitors WHERE id = ?", (visitor_id,)).fetchone()
    if row is None:
        raise NotFound(f"no visitor {visitor_id}")
    return _visitor(row)


def _site(row: sqlite3.Row) -> Site:
    return Site(
        id=row[0],
        key=row[1],
        name=row[2],
        allowed_origins=tuple(json.loads(row[3])),
        settings=SiteSettings.from_json(json.loads(row[4])),
        departments=tuple(json.loads(row[5])),
        created_at=row[6],
    )


def _agent(row: sqlite3.Row) -> Agent:
    return Agent(
        id=row[0],
        site_id=row[1],
        email=row[2],
        name=row[3],
        password_hash=row[4],
        role=Role(row[5]),
        capacity=row[6],
        departments=tuple(json.loads(row[7])),
        disabled=bool(row[8]),
        created_at=row[9],
    )


def _conv(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row[0],
        site_id=row[1],
        visitor_id=row[2],
        epoch=row[3],
        state=ConvState(row[4]),
        created_at=row[5],
        queued_at=row[6],
        department=row[7],
        agents=tuple(json.loads(row[8])),
        last_offset=row[9],
        offline=bool(row[10]),
        closed_at=row[11],
        rating=row[12],
        rating_comment=row[13],
        rated_at=row[14],
        tags=tuple(json.loads(row[15])),
    )


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        conversation_id=row[0],
        offset=row[1],
        kind=EntryKind(row[2]),
        author_kind=AuthorKind(row[3]),
        author_id=row[4],
        author_name=row[5],
        body=row[6],
        ts=row[7],
        cid=row[8],
        data=json.loads(row[9]) if row[9] else {},
    )


def _chunks(items: list[str], size: int = 500) -> list[tuple[str, ...]]:
    """``items`` in tuples of at most ``size`` (SQL parameters per statement)."""
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]

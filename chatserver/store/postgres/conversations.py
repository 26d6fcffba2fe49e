"""Conversations on PostgreSQL (``ConversationStore``): open, update, tag, rate;
append and page entries; read markers.

* One open conversation per visitor is the partial unique index
  ``conv_one_open``: ``open_conversation`` inserts with ``ON CONFLICT DO
  NOTHING`` and reads the winner when it lost.
* ``append`` is one call of the SQL function ``chat_append``
  (``migrations_postgres``), one statement and so one transaction and one
  round trip: it locks the conversation row (``FOR UPDATE``) first, so every
  append to one conversation runs after the previous one committed; the
  member and state checks, the ``cid`` look-up and the offset (``last_offset
  + 1``) are all decided inside that transaction.  The unique index
  ``entries_cid`` backs the ``cid`` rule.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import asyncpg

from ...errors import NotFound, StoreError
from ...types import (
    JSON,
    KEEP,
    AgentId,
    AuthorKind,
    Conversation,
    ConversationId,
    ConvState,
    DepartmentId,
    Entry,
    EntryKind,
    Keep,
    SiteId,
    VisitorId,
    new_id,
    now,
    sorted_id,
)
from .engine import PostgresEngine
from .rows import _CONV_COLS, _CONV_INSERT_COLS, ENTRY_COLS, _conv, _entry

_OPEN_ATTEMPTS = 5  # open_conversation: inserts that can lose to a conversation closed meanwhile


async def _conv_of(db: Any, conv_id: ConversationId, *, lock: bool = False) -> Conversation:
    row = await db.fetchrow(
        f"SELECT {_CONV_COLS} FROM conversations WHERE id = $1{' FOR UPDATE' if lock else ''}",
        conv_id,
    )
    if row is None:
        raise NotFound(f"conversation {conv_id}")
    return _conv(row)


class PostgresConversations(PostgresEngine):
    """``ConversationStore`` on PostgreSQL: the methods of its domain over the shared engine."""

    async def open_conversation(
        self,
        site_id: SiteId,
        visitor_id: VisitorId,
        department: DepartmentId | None = None,
        offline: bool = False,
    ) -> tuple[Conversation, bool]:
        async def op(db: Any) -> tuple[Conversation, bool]:
            for _ in range(_OPEN_ATTEMPTS):
                row = await db.fetchrow(
                    f"SELECT {_CONV_COLS} FROM conversations"
                    " WHERE visitor_id = $1 AND state <> 'closed'",
                    visitor_id,
                )
                if row is not None:
                    return _conv(row), False
                t = now()
                conv = Conversation(
                    id=sorted_id("c"),
                    site_id=site_id,
                    visitor_id=visitor_id,
                    epoch=new_id("e")[2:14],
                    state=ConvState.QUEUED,
                    created_at=t,
                    queued_at=t,
                    department=department,
                    offline=offline,
                )
                made = await db.fetchval(
                    f"INSERT INTO conversations ({_CONV_INSERT_COLS})"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '[]', 0, $9, NULL)"
                    " ON CONFLICT (visitor_id) WHERE state <> 'closed' DO NOTHING RETURNING id",
                    conv.id,
                    site_id,
                    visitor_id,
                    conv.epoch,
                    conv.state.value,
                    t,
                    t,
                    department,
                    offline,
                )
                if made is not None:
                    return conv, True
                # another transaction opened one first: read it on the next round
            raise StoreError(f"could not open a conversation for visitor {visitor_id}")

        return await self._tx(op)

    async def current_conversation(self, visitor_id: VisitorId) -> Conversation | None:
        row = await self._fetchrow(
            f"SELECT {_CONV_COLS} FROM conversations WHERE visitor_id = $1 AND state <> 'closed'",
            visitor_id,
        )
        return _conv(row) if row else None

    async def get_conversation(self, conv_id: ConversationId) -> Conversation | None:
        row = await self._fetchrow(f"SELECT {_CONV_COLS} FROM conversations WHERE id = $1", conv_id)
        return _conv(row) if row else None

    async def update_conversation(
        self,
        conv_id: ConversationId,
        *,
        state: ConvState | None = None,
        agents: Sequence[AgentId] | None = None,
        department: DepartmentId | Keep | None = KEEP,
        queued_at: float | None = None,
    ) -> Conversation:
        sets: list[str] = []
        args: list[Any] = [conv_id]

        def put(column: str, value: Any) -> None:
            args.append(value)
            sets.append(f"{column} = ${len(args)}")

        if state is not None:
            put("state", state.value)
            put("closed_at", now() if state is ConvState.CLOSED else None)
        if agents is not None:
            put("agents", json.dumps(list(agents)))
        if department is not KEEP:
            put("department", department)
        if queued_at is not None:
            put("queued_at", queued_at)

        async def op(db: Any) -> Conversation:
            if not sets:
                return await _conv_of(db, conv_id)
            try:
                row = await db.fetchrow(
                    f"UPDATE conversations SET {', '.join(sets)} WHERE id = $1"
                    f" RETURNING {_CONV_COLS}",
                    *args,
                )
            except asyncpg.UniqueViolationError:
                raise StoreError("the visitor has another open conversation") from None
            if row is None:
                raise NotFound(f"conversation {conv_id}")
            return _conv(row)

        return await self._tx(op)

    async def list_conversations(
        self, site_id: SiteId, states: Sequence[ConvState], limit: int = 500
    ) -> list[Conversation]:
        rows = await self._fetch(
            f"SELECT {_CONV_COLS} FROM conversations WHERE site_id = $1 AND state = ANY($2)"
            " ORDER BY queued_at, id LIMIT $3",
            site_id,
            [s.value for s in states],
            limit,
        )
        return [_conv(r) for r in rows]

    async def visitor_conversations(
        self, visitor_id: VisitorId, limit: int = 20
    ) -> list[Conversation]:
        rows = await self._fetch(
            f"SELECT {_CONV_COLS} FROM conversations WHERE visitor_id = $1"
            " ORDER BY created_at DESC, id DESC LIMIT $2",
            visitor_id,
            limit,
        )
        return [_conv(r) for r in rows]

    async def append(
        self,
        conv_id: ConversationId,
        kind: EntryKind,
        author_kind: AuthorKind,
        author_id: str,
        author_name: str,
        body: str,
        cid: str | None = None,
        data: JSON | None = None,
        open_only: bool = False,
        member: str | None = None,
    ) -> tuple[Entry, bool]:
        ts = now()
        row = await self._fetchrow(
            "SELECT * FROM chat_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            conv_id,
            kind.value,
            author_kind.value,
            author_id,
            author_name,
            body,
            ts,
            cid,
            json.dumps(data) if data else None,
            open_only,
            member,
        )
        fields: Any = (conv_id, *row[1:])  # the entry's columns, in ENTRY_COLS order
        return _entry(fields), bool(row[0])

    async def entries(
        self,
        conv_id: ConversationId,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 100,
        include_notes: bool = True,
    ) -> list[Entry]:
        notes = "" if include_notes else " AND kind <> 'note'"
        if after is not None:
            rows = await self._fetch(
                f'SELECT {ENTRY_COLS} FROM entries WHERE conv_id = $1 AND "offset" > $2{notes}'
                ' ORDER BY "offset" LIMIT $3',
                conv_id,
                after,
                limit,
            )
        else:
            upper = before if before is not None else 2**62
            rows = await self._fetch(
                f'SELECT {ENTRY_COLS} FROM entries WHERE conv_id = $1 AND "offset" < $2{notes}'
                ' ORDER BY "offset" DESC LIMIT $3',
                conv_id,
                upper,
                limit,
            )
            rows.reverse()
        return [_entry(r) for r in rows]

    async def set_read(self, conv_id: ConversationId, reader: str, offset: int) -> int:
        async def op(db: Any) -> int:
            value = await db.fetchval(
                'INSERT INTO reads (conv_id, reader, "offset") VALUES ($1, $2, $3)'
                ' ON CONFLICT (conv_id, reader) DO UPDATE SET "offset" ='
                ' GREATEST(reads."offset", excluded."offset") RETURNING "offset"',
                conv_id,
                reader,
                offset,
            )
            return int(value)

        return await self._tx(op)

    async def set_tags(
        self,
        conv_id: ConversationId,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Conversation:
        async def op(db: Any) -> Conversation:
            conv = await _conv_of(db, conv_id, lock=True)
            tags = tuple(sorted((set(conv.tags) | set(add)) - set(remove)))
            await db.execute(
                "UPDATE conversations SET tags = $1 WHERE id = $2", json.dumps(tags), conv_id
            )
            return replace(conv, tags=tags)

        return await self._tx(op)

    async def rate_conversation(
        self, conv_id: ConversationId, rating: str, comment: str = ""
    ) -> Conversation:
        at = now()

        async def op(db: Any) -> Conversation:
            row = await db.fetchrow(
                "UPDATE conversations SET rating = $1, rating_comment = $2, rated_at = $3"
                f" WHERE id = $4 RETURNING {_CONV_COLS}",
                rating,
                comment,
                at,
                conv_id,
            )
            if row is None:
                raise NotFound(f"conversation {conv_id}")
            return _conv(row)

        return await self._tx(op)

    async def read_markers(self, conv_id: ConversationId) -> dict[str, int]:
        rows = await self._fetch('SELECT reader, "offset" FROM reads WHERE conv_id = $1', conv_id)
        return {str(reader): int(offset) for reader, offset in rows}

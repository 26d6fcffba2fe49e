"""Conversations on SQLite (``ConversationStore``): open, update, tag, rate;
append and page entries; read markers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ...errors import Closed, NotFound, NotMember, StoreError
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
from ..common import CID_WINDOW
from .engine import OneWrite, SQLiteEngine
from .outbox import FEED_NEXT
from .rows import (
    _CONV_COLS,
    _CONV_INSERT_COLS,
    _ENTRY_COLS,
    _conv,
    _entry,
)

# The conversation as an append needs it: state, site, members, last offset,
# and the offset of the entry the sender's ``cid`` already names (NULL if none)
# among the newest CID_WINDOW entries: a short scan of the conversation's last
# pages, which the append writes anyway (schema step 10 dropped the index).
_APPEND_READ = (
    "SELECT c.state, c.site_id, c.agents, l.last,"
    " CASE WHEN ?3 IS NULL THEN NULL ELSE (SELECT offset FROM entries"
    f" WHERE conv_id = ?1 AND offset > l.last - {CID_WINDOW} AND author_id = ?2 AND cid = ?3) END"
    " FROM conversations c,"
    " (SELECT coalesce(max(offset), 0) AS last FROM entries WHERE conv_id = ?1) l"
    " WHERE c.id = ?1"
)
_APPEND_WRITE = (
    f"INSERT INTO entries ({_ENTRY_COLS}, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ({FEED_NEXT}))"
)


class SQLiteConversations(SQLiteEngine):
    """``ConversationStore`` on SQLite: the methods of its domain over the shared engine."""

    @staticmethod
    def _open_of(db: sqlite3.Connection, visitor_id: VisitorId) -> Conversation | None:
        row = db.execute(
            f"SELECT {_CONV_COLS} FROM conversations WHERE visitor_id = ? AND state != 'closed'",
            (visitor_id,),
        ).fetchone()
        return _conv(row) if row else None

    async def open_conversation(
        self,
        site_id: SiteId,
        visitor_id: VisitorId,
        department: DepartmentId | None = None,
        offline: bool = False,
    ) -> tuple[Conversation, bool]:
        def op(db: sqlite3.Connection) -> tuple[Conversation, bool]:
            existing = self._open_of(db, visitor_id)
            if existing is not None:
                return existing, False
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
            db.execute(
                f"INSERT INTO conversations ({_CONV_INSERT_COLS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '[]', ?, NULL)",
                (
                    conv.id,
                    site_id,
                    visitor_id,
                    conv.epoch,
                    conv.state.value,
                    t,
                    t,
                    department,
                    int(offline),
                ),
            )
            return conv, True

        return await self._run(op)

    async def current_conversation(self, visitor_id: VisitorId) -> Conversation | None:
        return await self._read(lambda db: self._open_of(db, visitor_id))

    async def get_conversation(self, conv_id: ConversationId) -> Conversation | None:
        row = await self._read_one(
            f"SELECT {_CONV_COLS} FROM conversations WHERE id = ?", (conv_id,)
        )
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
        args: list[Any] = []
        if state is not None:
            sets.append("state = ?")
            args.append(state.value)
            sets.append("closed_at = ?")
            args.append(now() if state is ConvState.CLOSED else None)
        if agents is not None:
            sets.append("agents = ?")
            args.append(json.dumps(list(agents)))
        if department is not KEEP:
            sets.append("department = ?")
            args.append(department)
        if queued_at is not None:
            sets.append("queued_at = ?")
            args.append(queued_at)

        def op(db: sqlite3.Connection) -> Conversation:
            if sets:
                try:
                    db.execute(
                        f"UPDATE conversations SET {', '.join(sets)} WHERE id = ?",
                        (*args, conv_id),
                    )
                except sqlite3.IntegrityError as exc:
                    raise StoreError("the visitor has another open conversation") from exc
            row = db.execute(
                f"SELECT {_CONV_COLS} FROM conversations WHERE id = ?", (conv_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"conversation {conv_id}")
            return _conv(row)

        return await self._run(op)

    async def list_conversations(
        self, site_id: SiteId, states: Sequence[ConvState], limit: int = 500
    ) -> list[Conversation]:
        marks = ", ".join("?" for _ in states)
        rows = await self._read_all(
            f"SELECT {_CONV_COLS} FROM conversations WHERE site_id = ? AND state IN ({marks})"
            " ORDER BY queued_at LIMIT ?",
            (site_id, *(s.value for s in states), limit),
        )
        return [_conv(r) for r in rows]

    async def visitor_conversations(
        self, visitor_id: VisitorId, limit: int = 20
    ) -> list[Conversation]:
        rows = await self._read_all(
            f"SELECT {_CONV_COLS} FROM conversations WHERE visitor_id = ?"
            " ORDER BY created_at DESC LIMIT ?",
            (visitor_id, limit),
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
        data_text = json.dumps(data) if data else None

        def op(db: sqlite3.Connection) -> tuple[Entry, bool]:
            # One read of the conversation: its state, members, last offset (a
            # seek to the end of its entries) and the entry ``cid`` names, if
            # any.  Then one write, the entry, which takes the change feed's
            # next place (``entries.seq``; schema step 9): no page of the
            # conversation's row is written per message.
            found = db.execute(_APPEND_READ, (conv_id, author_id, cid)).fetchone()
            if found is None:
                raise NotFound(f"conversation {conv_id}")
            state, site_id, agents, last, duplicate = found
            if member is not None and member not in json.loads(agents):
                raise NotMember(f"{member} is not in conversation {conv_id}", site_id)
            if duplicate is not None:
                row = db.execute(
                    f"SELECT {_ENTRY_COLS} FROM entries WHERE conv_id = ? AND offset = ?",
                    (conv_id, duplicate),
                ).fetchone()
                return _entry(row), True
            if open_only and state == ConvState.CLOSED.value:
                raise Closed(f"conversation {conv_id} is closed")
            entry = Entry(
                conv_id,
                last + 1,
                kind,
                author_kind,
                author_id,
                author_name,
                body,
                ts,
                cid,
                data or {},
            )
            db.execute(
                _APPEND_WRITE,
                (
                    conv_id,
                    entry.offset,
                    kind.value,
                    author_kind.value,
                    author_id,
                    author_name,
                    body,
                    ts,
                    cid,
                    data_text,
                ),
            )
            return entry, False

        return await self._run(OneWrite(op))

    async def entries(
        self,
        conv_id: ConversationId,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 100,
        include_notes: bool = True,
    ) -> list[Entry]:
        notes = "" if include_notes else " AND kind != 'note'"
        if after is not None:
            rows = await self._read_all(
                f"SELECT {_ENTRY_COLS} FROM entries WHERE conv_id = ? AND offset > ?{notes}"
                " ORDER BY offset LIMIT ?",
                (conv_id, after, limit),
            )
        else:
            upper = before if before is not None else 2**62
            rows = await self._read_all(
                f"SELECT {_ENTRY_COLS} FROM entries WHERE conv_id = ? AND offset < ?{notes}"
                " ORDER BY offset DESC LIMIT ?",
                (conv_id, upper, limit),
            )
            rows.reverse()
        return [_entry(r) for r in rows]

    async def set_read(self, conv_id: ConversationId, reader: str, offset: int) -> int:
        def op(db: sqlite3.Connection) -> int:
            row = db.execute(
                "INSERT INTO reads (conv_id, reader, offset) VALUES (?, ?, ?)"
                " ON CONFLICT (conv_id, reader) DO UPDATE SET offset = max(offset, excluded.offset)"
                " RETURNING offset",
                (conv_id, reader, offset),
            ).fetchone()
            return int(row[0])

        return await self._run(op)

    async def set_tags(
        self,
        conv_id: ConversationId,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Conversation:
        def op(db: sqlite3.Connection) -> Conversation:
            row = db.execute(
                f"SELECT {_CONV_COLS} FROM conversations WHERE id = ?", (conv_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no conversation {conv_id}")
            conv = _conv(row)
            tags = tuple(sorted((set(conv.tags) | set(add)) - set(remove)))
            db.execute(
                "UPDATE conversations SET tags = ? WHERE id = ?", (json.dumps(tags), conv_id)
            )
            return replace(conv, tags=tags)

        return await self._run(op)

    async def rate_conversation(
        self, conv_id: ConversationId, rating: str, comment: str = ""
    ) -> Conversation:
        at = now()

        def op(db: sqlite3.Connection) -> Conversation:
            db.execute(
                "UPDATE conversations SET rating = ?, rating_comment = ?, rated_at = ?"
                " WHERE id = ?",
                (rating, comment, at, conv_id),
            )
            row = db.execute(
                f"SELECT {_CONV_COLS} FROM conversations WHERE id = ?", (conv_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"conversation {conv_id}")
            return _conv(row)

        return await self._run(op)

    async def read_markers(self, conv_id: ConversationId) -> dict[str, int]:
        rows = await self._read_all(
            "SELECT reader, offset FROM reads WHERE conv_id = ?", (conv_id,)
        )
        return {str(reader): int(offset) for reader, offset in rows}

"""Attachments and each site's attachment byte counters, on SQLite."""

from __future__ import annotations

import sqlite3

from ...errors import NotFound
from ...types import (
    Attachment,
    ConversationId,
    SiteId,
    new_id,
    now,
)
from ..common import (
    ATTACHMENT_BYTES,
)
from .engine import SQLiteEngine
from .rows import (
    _ATTACHMENT_COLS,
    _add_bytes,
)


class SQLiteAttachments(SQLiteEngine):
    """``AttachmentStore`` on SQLite: the methods of its domain over the shared engine."""

    async def create_attachment(
        self, site_id: SiteId, uploader: str, name: str, content_type: str, size: int
    ) -> Attachment:
        att = Attachment(new_id("f"), site_id, uploader, name, content_type, size, now())

        def op(db: sqlite3.Connection) -> Attachment:
            db.execute(
                f"INSERT INTO attachments ({_ATTACHMENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (att.id, site_id, uploader, name, content_type, size, att.created_at),
            )
            _add_bytes(db, site_id, unposted=size, total=size)
            return att

        return await self._run(op)

    async def get_attachment(self, attachment_id: str) -> Attachment | None:
        row = await self._one(
            f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE id = ?", (attachment_id,)
        )
        return Attachment(*row) if row else None

    async def bind_attachment(self, attachment_id: str, conv_id: ConversationId) -> Attachment:
        def op(db: sqlite3.Connection) -> Attachment:
            bound = db.execute(
                "UPDATE attachments SET conv_id = ? WHERE id = ? AND conv_id IS NULL",
                (conv_id, attachment_id),
            ).rowcount
            row = db.execute(
                f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE id = ?", (attachment_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"attachment {attachment_id}")
            att = Attachment(*row)
            if bound:
                _add_bytes(db, att.site_id, unposted=-att.size, total=0)
            return att

        return await self._run(op)

    async def attachment_bytes(self, site_id: SiteId) -> tuple[int, int]:
        row = await self._read_one(
            "SELECT COALESCE(SUM(CASE WHEN name = 'unposted_bytes' THEN value END), 0),"
            " COALESCE(SUM(CASE WHEN name = 'total_bytes' THEN value END), 0)"
            " FROM counters WHERE site_id = ? AND grp = ?",
            (site_id, ATTACHMENT_BYTES),
        )
        return int(row[0]), int(row[1])

    async def unposted_attachments(self, before: float, limit: int = 100) -> list[Attachment]:
        rows = await self._read_all(
            f"SELECT {_ATTACHMENT_COLS} FROM attachments"
            " WHERE conv_id IS NULL AND created_at < ? ORDER BY created_at LIMIT ?",
            (before, limit),
        )
        return [Attachment(*r) for r in rows]

    async def delete_unposted_attachment(self, attachment_id: str) -> Attachment | None:
        def op(db: sqlite3.Connection) -> Attachment | None:
            row = db.execute(
                f"DELETE FROM attachments WHERE id = ? AND conv_id IS NULL"
                f" RETURNING {_ATTACHMENT_COLS}",
                (attachment_id,),
            ).fetchone()
            if row is None:
                return None
            att = Attachment(*row)
            _add_bytes(db, att.site_id, unposted=-att.size, total=-att.size)
            return att

        return await self._run(op)

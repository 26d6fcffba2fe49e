"""Attachments and each site's attachment byte counters, on PostgreSQL.

The counters (group ``ATTACHMENT_BYTES`` of ``counters``) move in the same
transaction as the attachment row they count.  ``bind_attachment`` and
``delete_unposted_attachment`` are single conditional statements (``WHERE
conv_id IS NULL``): of concurrent calls the row lock lets one through.
"""

from __future__ import annotations

from typing import Any

from ...errors import NotFound
from ...types import (
    Attachment,
    ConversationId,
    SiteId,
    new_id,
    now,
)
from ..common import ATTACHMENT_BYTES
from .engine import PostgresEngine
from .rows import _ATTACHMENT_COLS, add_bytes


class PostgresAttachments(PostgresEngine):
    """``AttachmentStore`` on PostgreSQL: the methods of its domain over the shared engine."""

    async def create_attachment(
        self, site_id: SiteId, uploader: str, name: str, content_type: str, size: int
    ) -> Attachment:
        att = Attachment(new_id("f"), site_id, uploader, name, content_type, size, now())

        async def op(db: Any) -> Attachment:
            await db.execute(
                f"INSERT INTO attachments ({_ATTACHMENT_COLS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
                att.id,
                site_id,
                uploader,
                name,
                content_type,
                size,
                att.created_at,
            )
            await add_bytes(db, site_id, unposted=size, total=size)
            return att

        return await self._tx(op)

    async def get_attachment(self, attachment_id: str) -> Attachment | None:
        row = await self._fetchrow(
            f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE id = $1", attachment_id
        )
        return Attachment(*row) if row else None

    async def bind_attachment(self, attachment_id: str, conv_id: ConversationId) -> Attachment:
        async def op(db: Any) -> Attachment:
            row = await db.fetchrow(
                "UPDATE attachments SET conv_id = $1 WHERE id = $2 AND conv_id IS NULL"
                f" RETURNING {_ATTACHMENT_COLS}",
                conv_id,
                attachment_id,
            )
            if row is not None:
                att = Attachment(*row)
                await add_bytes(db, att.site_id, unposted=-att.size, total=0)
                return att
            row = await db.fetchrow(
                f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE id = $1", attachment_id
            )
            if row is None:
                raise NotFound(f"attachment {attachment_id}")
            return Attachment(*row)

        return await self._tx(op)

    async def attachment_bytes(self, site_id: SiteId) -> tuple[int, int]:
        row = await self._fetchrow(
            "SELECT COALESCE(SUM(CASE WHEN name = 'unposted_bytes' THEN value END), 0),"
            " COALESCE(SUM(CASE WHEN name = 'total_bytes' THEN value END), 0)"
            " FROM counters WHERE site_id = $1 AND grp = $2",
            site_id,
            ATTACHMENT_BYTES,
        )
        return int(row[0]), int(row[1])

    async def unposted_attachments(self, before: float, limit: int = 100) -> list[Attachment]:
        rows = await self._fetch(
            f"SELECT {_ATTACHMENT_COLS} FROM attachments"
            " WHERE conv_id IS NULL AND created_at < $1 ORDER BY created_at LIMIT $2",
            before,
            limit,
        )
        return [Attachment(*r) for r in rows]

    async def delete_unposted_attachment(self, attachment_id: str) -> Attachment | None:
        async def op(db: Any) -> Attachment | None:
            row = await db.fetchrow(
                "DELETE FROM attachments WHERE id = $1 AND conv_id IS NULL"
                f" RETURNING {_ATTACHMENT_COLS}",
                attachment_id,
            )
            if row is None:
                return None
            att = Attachment(*row)
            await add_bytes(db, att.site_id, unposted=-att.size, total=-att.size)
            return att

        return await self._tx(op)

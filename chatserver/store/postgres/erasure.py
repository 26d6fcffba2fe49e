"""Erasure and retention (``ErasureStore``) on PostgreSQL.

Each erasure is one transaction.  PostgreSQL keeps a deleted row's bytes in
its page until VACUUM reclaims the space; ``scrub`` vacuums the tables an
erasure deletes from (their freed space is then reused by new rows), which
is what PostgreSQL offers short of ``VACUUM FULL`` (docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...types import Attachment, ConversationId, SiteId, VisitorId, now
from ..erasure import ERASED, Erased
from .engine import PostgresEngine
from .rows import _ATTACHMENT_COLS, add_bytes

SCRUBBED = (
    "visitors",
    "page_views",
    "visitor_events",
    "identities",
    "trigger_firings",
    "conversations",
    "entries",
    "reads",
    "attachments",
    "report_facts",
    "outbox_jobs",
    "archive_text",
    "recordings",
    "recording_marks",
    "recording_chunks",
)


async def _delete_files(db: Any, where: str, *args: Any) -> list[Attachment]:
    rows = await db.fetch(
        f"DELETE FROM attachments WHERE {where} RETURNING {_ATTACHMENT_COLS}", *args
    )
    gone = [Attachment(*r) for r in rows]
    for att in gone:
        await add_bytes(db, att.site_id, unposted=0 if att.conv_id else -att.size, total=-att.size)
    return gone


async def _scrub_jobs(db: Any, site_id: str, needles: Sequence[str]) -> int:
    wanted = [n for n in needles if n]
    if not wanted:
        return 0
    done = await db.execute(
        "UPDATE outbox_jobs SET payload = '{}', state = 'failed', last_error = 'erased',"
        " updated_at = $1 WHERE site_id = $2 AND payload <> '{}'"
        " AND EXISTS (SELECT 1 FROM unnest($3::text[]) n WHERE strpos(payload, n) > 0)",
        now(),
        site_id,
        wanted,
    )
    return int(done.split()[-1])


async def _erase_convs(
    db: Any, conv_ids: Sequence[str], keep_facts: bool, extra: Sequence[str] = ()
) -> Erased:
    out = Erased()
    found = await db.fetch(
        "SELECT id, site_id FROM conversations WHERE id = ANY($1::text[])", list(conv_ids)
    )
    ids = [r[0] for r in found]
    if ids:
        out.conversations = ids
        out.attachments = await _delete_files(db, "conv_id = ANY($1::text[])", ids)
        done = await db.execute("DELETE FROM entries WHERE conv_id = ANY($1::text[])", ids)
        out.entries = int(done.split()[-1])
        await db.execute("DELETE FROM reads WHERE conv_id = ANY($1::text[])", ids)
        await db.execute("DELETE FROM conversations WHERE id = ANY($1::text[])", ids)
        if keep_facts:
            await db.execute(
                "UPDATE report_facts SET visitor_id = $1, comment = ''"
                " WHERE conv_id = ANY($2::text[])",
                ERASED,
                ids,
            )
        else:
            await db.execute("DELETE FROM report_facts WHERE conv_id = ANY($1::text[])", ids)
    for site_id in {r[1] for r in found}:
        mine = [r[0] for r in found if r[1] == site_id]
        out.jobs += await _scrub_jobs(db, site_id, [*mine, *extra])
    return out


class PostgresErasure(PostgresEngine):
    """``ErasureStore`` on PostgreSQL."""

    async def erase_visitor(
        self, visitor_id: VisitorId, *, keep_facts: bool = True, remember: bool = True
    ) -> Erased:
        async def op(db: Any) -> Erased:
            row = await db.fetchrow("SELECT site_id, email FROM visitors WHERE id = $1", visitor_id)
            convs = [
                r[0]
                for r in await db.fetch(
                    "SELECT id FROM conversations WHERE visitor_id = $1", visitor_id
                )
            ]
            extra = [visitor_id, row[1]] if row else [visitor_id]
            out = await _erase_convs(db, convs, keep_facts, extra)
            out.attachments.extend(
                await _delete_files(db, "uploader = $1", f"visitor:{visitor_id}")
            )
            done = await db.execute("DELETE FROM page_views WHERE visitor_id = $1", visitor_id)
            out.page_views = int(done.split()[-1])
            done = await db.execute("DELETE FROM visitor_events WHERE visitor_id = $1", visitor_id)
            out.events = int(done.split()[-1])
            await db.execute("DELETE FROM identities WHERE visitor_id = $1", visitor_id)
            await db.execute("DELETE FROM trigger_firings WHERE visitor_id = $1", visitor_id)
            done = await db.execute("DELETE FROM visitors WHERE id = $1", visitor_id)
            out.visitors = int(done.split()[-1])
            if row is not None and not convs:
                out.jobs += await _scrub_jobs(db, row[0], extra)
            if remember:
                await db.execute(
                    "INSERT INTO erased_visitors (visitor_id, at) VALUES ($1, $2)"
                    " ON CONFLICT (visitor_id) DO NOTHING",
                    visitor_id,
                    now(),
                )
            return out

        return await self._tx(op)

    async def erase_conversations(
        self, conv_ids: Sequence[ConversationId], *, keep_facts: bool = True
    ) -> Erased:
        return await self._tx(lambda db: _erase_convs(db, list(conv_ids), keep_facts))

    async def is_erased(self, visitor_id: VisitorId) -> bool:
        found = await self._fetchval(
            "SELECT 1 FROM erased_visitors WHERE visitor_id = $1", visitor_id
        )
        return found is not None

    async def expired_conversations(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[ConversationId]:
        rows = await self._fetch(
            "SELECT id FROM conversations WHERE site_id = $1 AND closed_at IS NOT NULL"
            " AND closed_at < $2 AND state = 'closed' ORDER BY closed_at LIMIT $3",
            site_id,
            before,
            limit,
        )
        return [r[0] for r in rows]

    async def idle_visitors(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[VisitorId]:
        rows = await self._fetch(
            "SELECT v.id FROM visitors v WHERE v.site_id = $1 AND v.created_at < $2"
            " AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.visitor_id = v.id)"
            " AND NOT EXISTS (SELECT 1 FROM page_views p WHERE p.visitor_id = v.id AND p.ts >= $2)"
            " AND NOT EXISTS (SELECT 1 FROM visitor_events e"
            " WHERE e.visitor_id = v.id AND e.ts >= $2)"
            " ORDER BY v.created_at LIMIT $3",
            site_id,
            before,
            limit,
        )
        return [r[0] for r in rows]

    async def expired_attachments(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[Attachment]:
        rows = await self._fetch(
            f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE site_id = $1 AND created_at < $2"
            " AND conv_id IS NOT NULL ORDER BY created_at LIMIT $3",
            site_id,
            before,
            limit,
        )
        return [Attachment(*r) for r in rows]

    async def delete_attachments(self, attachment_ids: Sequence[str]) -> list[Attachment]:
        ids = list(attachment_ids)
        if not ids:
            return []
        return await self._tx(lambda db: _delete_files(db, "id = ANY($1::text[])", ids))

    async def prune_activity(self, site_id: SiteId, before: float) -> tuple[int, int]:
        async def op(db: Any) -> tuple[int, int]:
            mine = "SELECT id FROM visitors WHERE site_id = $2"
            views = await db.execute(
                f"DELETE FROM page_views WHERE ts < $1 AND visitor_id IN ({mine})", before, site_id
            )
            events = await db.execute(
                f"DELETE FROM visitor_events WHERE ts < $1 AND visitor_id IN ({mine})",
                before,
                site_id,
            )
            return int(views.split()[-1]), int(events.split()[-1])

        return await self._tx(op)

    async def scrub(self) -> None:
        pool = self._started()
        try:
            async with pool.acquire() as db:  # VACUUM runs outside a transaction
                for table in SCRUBBED:
                    await db.execute(f"VACUUM {table}")
        except Exception as exc:
            raise self._error(exc) from None

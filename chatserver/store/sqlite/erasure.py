"""Erasure and retention (``ErasureStore``) on SQLite.

The writer's connection runs with ``PRAGMA secure_delete=ON`` (``engine``):
deleted rows are overwritten with zeros in the file, not just unlinked, and
``scrub`` checkpoints the WAL and truncates it, so the bytes of an erased
visitor are in neither file afterwards (tests/server/test_privacy_erase.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ...types import Attachment, ConversationId, SiteId, VisitorId, now
from ..erasure import ERASED, Erased
from .engine import SQLiteEngine
from .outbox import FEED_FLOOR
from .rows import _ATTACHMENT_COLS, _add_bytes

_CHUNK = 400  # ids per IN (...) list, under SQLite's variable limit


def _marks(ids: Sequence[str]) -> str:
    return ",".join("?" * len(ids))


def _delete_attachments(
    db: sqlite3.Connection, where: str, args: Sequence[object]
) -> list[Attachment]:
    rows = db.execute(
        f"DELETE FROM attachments WHERE {where} RETURNING {_ATTACHMENT_COLS}", tuple(args)
    ).fetchall()
    gone = [Attachment(*r) for r in rows]
    for att in gone:
        _add_bytes(db, att.site_id, unposted=0 if att.conv_id else -att.size, total=-att.size)
    return gone


def _scrub_jobs(db: sqlite3.Connection, site_id: str, needles: Sequence[str]) -> int:
    """Empty and fail the site's outbox jobs whose payload names one of ``needles``."""
    total = 0
    for i in range(0, len(needles), _CHUNK):
        part = needles[i : i + _CHUNK]
        match = " OR ".join("instr(payload, ?) > 0" for _ in part)
        total += db.execute(
            "UPDATE outbox_jobs SET payload = '{}', state = 'failed', last_error = 'erased',"
            f" updated_at = ? WHERE site_id = ? AND payload != '{{}}' AND ({match})",
            (now(), site_id, *part),
        ).rowcount
    return total


def _erase_convs(
    db: sqlite3.Connection, conv_ids: Sequence[str], keep_facts: bool, extra: Sequence[str] = ()
) -> Erased:
    out = Erased()
    for i in range(0, len(conv_ids), _CHUNK):
        part = list(conv_ids[i : i + _CHUNK])
        q = _marks(part)
        found = db.execute(
            f"SELECT id, site_id FROM conversations WHERE id IN ({q})", part
        ).fetchall()
        if not found:
            continue
        ids = [c for c, _ in found]
        q = _marks(ids)
        out.conversations.extend(ids)
        out.attachments.extend(_delete_attachments(db, f"conv_id IN ({q})", ids))
        db.execute(FEED_FLOOR)  # the feed's places of these entries are not handed out again
        out.entries += db.execute(f"DELETE FROM entries WHERE conv_id IN ({q})", ids).rowcount
        db.execute(f"DELETE FROM reads WHERE conv_id IN ({q})", ids)
        db.execute(f"DELETE FROM conversations WHERE id IN ({q})", ids)
        if keep_facts:
            db.execute(
                f"UPDATE report_facts SET visitor_id = ?, comment = '' WHERE conv_id IN ({q})",
                (ERASED, *ids),
            )
        else:
            db.execute(f"DELETE FROM report_facts WHERE conv_id IN ({q})", ids)
        for site_id in {s for _, s in found}:
            mine = [c for c, s in found if s == site_id]
            out.jobs += _scrub_jobs(db, site_id, [*mine, *extra])
    return out


class SQLiteErasure(SQLiteEngine):
    """``ErasureStore`` on SQLite."""

    async def erase_visitor(
        self, visitor_id: VisitorId, *, keep_facts: bool = True, remember: bool = True
    ) -> Erased:
        def op(db: sqlite3.Connection) -> Erased:
            row = db.execute(
                "SELECT site_id, email FROM visitors WHERE id = ?", (visitor_id,)
            ).fetchone()
            convs = [
                c
                for (c,) in db.execute(
                    "SELECT id FROM conversations WHERE visitor_id = ?", (visitor_id,)
                )
            ]
            extra = [n for n in (visitor_id, row[1] if row else "") if n]
            out = _erase_convs(db, convs, keep_facts, extra)
            out.attachments.extend(
                _delete_attachments(db, "uploader = ?", (f"visitor:{visitor_id}",))
            )
            out.page_views = db.execute(
                "DELETE FROM page_views WHERE visitor_id = ?", (visitor_id,)
            ).rowcount
            out.events = db.execute(
                "DELETE FROM visitor_events WHERE visitor_id = ?", (visitor_id,)
            ).rowcount
            db.execute("DELETE FROM identities WHERE visitor_id = ?", (visitor_id,))
            db.execute("DELETE FROM trigger_firings WHERE visitor_id = ?", (visitor_id,))
            out.visitors = db.execute("DELETE FROM visitors WHERE id = ?", (visitor_id,)).rowcount
            if row is not None and not convs:
                out.jobs += _scrub_jobs(db, row[0], extra)
            if remember:
                db.execute(
                    "INSERT OR IGNORE INTO erased_visitors (visitor_id, at) VALUES (?, ?)",
                    (visitor_id, now()),
                )
            return out

        return await self._run(op)

    async def erase_conversations(
        self, conv_ids: Sequence[ConversationId], *, keep_facts: bool = True
    ) -> Erased:
        return await self._run(lambda db: _erase_convs(db, list(conv_ids), keep_facts))

    async def is_erased(self, visitor_id: VisitorId) -> bool:
        row = await self._read_one(
            "SELECT 1 FROM erased_visitors WHERE visitor_id = ?", (visitor_id,)
        )
        return row is not None

    async def expired_conversations(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[ConversationId]:
        rows = await self._read_all(
            "SELECT id FROM conversations WHERE site_id = ? AND closed_at IS NOT NULL"
            " AND closed_at < ? AND state = 'closed' ORDER BY closed_at LIMIT ?",
            (site_id, before, limit),
        )
        return [r[0] for r in rows]

    async def idle_visitors(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[VisitorId]:
        rows = await self._read_all(
            "SELECT v.id FROM visitors v WHERE v.site_id = ? AND v.created_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.visitor_id = v.id)"
            " AND NOT EXISTS (SELECT 1 FROM page_views p WHERE p.visitor_id = v.id AND p.ts >= ?)"
            " AND NOT EXISTS (SELECT 1 FROM visitor_events e"
            " WHERE e.visitor_id = v.id AND e.ts >= ?)"
            " ORDER BY v.created_at LIMIT ?",
            (site_id, before, before, before, limit),
        )
        return [r[0] for r in rows]

    async def expired_attachments(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[Attachment]:
        rows = await self._read_all(
            f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE site_id = ? AND created_at < ?"
            " AND conv_id IS NOT NULL ORDER BY created_at LIMIT ?",
            (site_id, before, limit),
        )
        return [Attachment(*r) for r in rows]

    async def delete_attachments(self, attachment_ids: Sequence[str]) -> list[Attachment]:
        ids = list(attachment_ids)[:_CHUNK]
        if not ids:
            return []
        return await self._run(lambda db: _delete_attachments(db, f"id IN ({_marks(ids)})", ids))

    async def prune_activity(self, site_id: SiteId, before: float) -> tuple[int, int]:
        def op(db: sqlite3.Connection) -> tuple[int, int]:
            mine = "SELECT id FROM visitors WHERE site_id = ?"
            views = db.execute(
                f"DELETE FROM page_views WHERE ts < ? AND visitor_id IN ({mine})",
                (before, site_id),
            ).rowcount
            events = db.execute(
                f"DELETE FROM visitor_events WHERE ts < ? AND visitor_id IN ({mine})",
                (before, site_id),
            ).rowcount
            return views, events

        return await self._run(op)

    async def scrub(self) -> None:
        """Checkpoint the WAL into the file and truncate it: the old pages written
        there (the rows before they were zeroed) are gone from the disk's files."""
        await self._run(lambda db: None)  # everything submitted before is committed
        await self.checkpoint()

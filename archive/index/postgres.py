"""The archive index on PostgreSQL: ``tsvector`` with a GIN index, in the store's database.

Tables (step 4 of ``chatserver/migrations_postgres.py``, which also fills them):

* ``archive_convs (seq bigserial PRIMARY KEY, conv_id UNIQUE, site_id)``:
  the archive's order, as on SQLite.  Index ``(site_id, seq)``.
* ``archive_text (seq, "offset", body, tsv)``: one row per searched text
  (offset 0: the visitor's "name e-mail"); ``tsv`` is
  ``to_tsvector('simple', <folded body>)`` with a GIN index, and a B-tree
  on ``(seq, "offset")`` for reading matches newest first.

Folding is ``lower`` then ``translate`` of the accented Latin letters to
their base letter (``FOLD_FROM`` / ``FOLD_TO``), on the text and on the
query alike: "envio" finds "envío" with no extension (``unaccent`` needs
one, which a managed database may not allow), and the ``simple``
configuration neither stems nor drops stop words, so a search matches what
was written in any language.  Words are prefixes (``word:*``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from chatserver.migrations_postgres import ARCHIVE_REBUILD, ARCHIVE_TIMEOUT, FOLDED, tsvector_of
from chatserver.proactive.names import PROACTIVE_TAG
from chatserver.store.postgres.engine import PostgresEngine
from chatserver.store.postgres.rows import _CONV_COLS, _conv
from chatserver.types import Conversation, ConversationId, Entry, SiteId

from ..query import MAX_WORD, MAX_WORDS, ArchiveHit, ArchivePage, ArchiveQuery, indexed
from .paging import parse_cursor, text_page

Connection = Any
_C_COLS = ", ".join(f"c.{c.strip()}" for c in _CONV_COLS.split(","))
_WORD = re.compile(r"\w+", re.UNICODE)
WINDOW = 1000  # conversations read newest first by the B-tree before the GIN index
_FILES = (
    "EXISTS (SELECT 1 FROM entries e WHERE e.conv_id = c.id AND e.data LIKE '%\"attachment\"%')"
)


def tsquery(text: str) -> str:
    """``w1:* & w2:*`` of the words typed (lower-cased; PostgreSQL folds accents)."""
    found: list[str] = []
    for w in _WORD.findall(text.lower()):
        w = w[:MAX_WORD].replace("_", "")
        if w and w not in found:
            found.append(w)
    return " & ".join(f"{w}:*" for w in found[:MAX_WORDS])


def filters_sql(q: ArchiveQuery, args: list[Any]) -> str:
    """``AND ...`` conditions on ``c`` for the filters of ``q``; appends to ``args``."""

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    sql: list[str] = []
    if q.states:
        sql.append(f"c.state = ANY({arg([s.value for s in q.states])}::text[])")
    if q.agent is not None:
        sql.append(f"c.agents::jsonb ? {arg(q.agent)}")
    if q.department is not None:
        sql.append(f"c.department = {arg(q.department)}")
    if q.tag is not None:
        sql.append(f"c.tags::jsonb ? {arg(q.tag)}")
    if q.rating is not None:
        sql.append(f"c.rating = {arg(q.rating)}")
    if q.since is not None:
        sql.append(f"c.created_at >= {arg(q.since)}")
    if q.until is not None:
        sql.append(f"c.created_at < {arg(q.until)}")
    if q.offline is not None:
        sql.append(f"c.offline = {arg(q.offline)}")
    if q.trigger is not None:
        sql.append(f"{'' if q.trigger else 'NOT '}(c.tags::jsonb ? {arg(PROACTIVE_TAG)})")
    if q.attachments is not None:
        sql.append(_FILES if q.attachments else f"NOT {_FILES}")
    return "".join(f" AND {s}" for s in sql)


async def _seq(db: Connection, conv_id: ConversationId) -> int | None:
    seq = await db.fetchval("SELECT seq FROM archive_convs WHERE conv_id = $1", conv_id)
    if seq is not None:
        return int(seq)
    seq = await db.fetchval(
        "INSERT INTO archive_convs (conv_id, site_id) SELECT id, site_id FROM conversations"
        " WHERE id = $1 ON CONFLICT (conv_id) DO NOTHING RETURNING seq",
        conv_id,
    )
    if seq is None:  # no such conversation, or indexed meanwhile
        seq = await db.fetchval("SELECT seq FROM archive_convs WHERE conv_id = $1", conv_id)
    return int(seq) if seq is not None else None


async def _put(db: Connection, seq: int, offset: int, text: str) -> None:
    if not text.strip():
        await db.execute('DELETE FROM archive_text WHERE seq = $1 AND "offset" = $2', seq, offset)
        return
    await db.execute(
        'INSERT INTO archive_text (seq, "offset", body, tsv)'
        f" VALUES ($1, $2, $3, {tsvector_of('$3')})"
        ' ON CONFLICT (seq, "offset") DO UPDATE SET body = excluded.body, tsv = excluded.tsv',
        seq,
        offset,
        text,
    )


class PostgresArchive:
    """``ArchiveIndex`` on PostgreSQL (module docstring)."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def start(self) -> None:
        pass  # the index is tables of the store's own database

    async def close(self) -> None:
        pass

    async def note_conversation(self, conv_id: ConversationId) -> None:
        await self.note_batch([conv_id], [])

    async def note_entry(self, entry: Entry) -> None:
        await self.note_batch([], [entry])

    async def note_batch(
        self, conv_ids: Sequence[ConversationId], entries: Sequence[Entry]
    ) -> None:
        texts = [e for e in entries if indexed(e)]
        if not conv_ids and not texts:
            return

        async def op(db: Connection) -> None:
            for conv_id in dict.fromkeys(conv_ids):
                seq = await _seq(db, conv_id)
                if seq is None:
                    continue
                row = await db.fetchrow(
                    "SELECT v.name, v.email FROM conversations c JOIN visitors v"
                    " ON v.id = c.visitor_id WHERE c.id = $1",
                    conv_id,
                )
                await _put(db, seq, 0, f"{row[0]} {row[1]}" if row else "")
            seqs: dict[ConversationId, int | None] = {}
            for entry in texts:
                conv_id = entry.conversation_id
                if conv_id not in seqs:
                    seqs[conv_id] = await _seq(db, conv_id)
                seq = seqs[conv_id]
                if seq is not None:
                    await _put(db, seq, entry.offset, entry.body)

        await self.engine.run(op)

    async def forget(self, site_id: SiteId, conv_ids: Sequence[ConversationId]) -> int:
        if not conv_ids:
            return 0

        async def op(db: Connection) -> int:
            seqs = await db.fetch(
                "DELETE FROM archive_convs WHERE site_id = $1 AND conv_id = ANY($2::text[])"
                " RETURNING seq",
                site_id,
                list(conv_ids),
            )
            if seqs:
                await db.execute(
                    "DELETE FROM archive_text WHERE seq = ANY($1::bigint[])", [r[0] for r in seqs]
                )
            return len(seqs)

        return await self.engine.run(op)

    async def reindex(self) -> int:
        async def op(db: Connection) -> int:
            for statement in ARCHIVE_REBUILD:
                await db.execute(statement, timeout=ARCHIVE_TIMEOUT)
            return int(await db.fetchval("SELECT count(*) FROM archive_convs"))

        return await self.engine.run(op)

    async def catch_up(self, since: float) -> int:
        recent = "(c.state <> 'closed' OR c.closed_at >= $1)"
        unlisted = await self.engine.fetch(
            f"SELECT c.id FROM conversations c WHERE {recent}"
            " AND NOT EXISTS (SELECT 1 FROM archive_convs a WHERE a.conv_id = c.id)",
            since,
        )
        if unlisted:
            await self.note_batch([r[0] for r in unlisted], [])
        missing = await self.engine.fetch(
            'SELECT a.seq, e."offset", e.body FROM conversations c'
            " JOIN archive_convs a ON a.conv_id = c.id JOIN entries e ON e.conv_id = c.id"
            f" WHERE {recent} AND e.kind IN ('text', 'note') AND trim(e.body) <> ''"
            " AND NOT EXISTS (SELECT 1 FROM archive_text t"
            ' WHERE t.seq = a.seq AND t."offset" = e."offset")',
            since,
        )
        if missing:

            async def op(db: Connection) -> None:
                for seq, offset, body in missing:
                    await _put(db, int(seq), int(offset), str(body))

            await self.engine.run(op)
        return len(unlisted) + len(missing)

    async def search(
        self, query: ArchiveQuery, cursor: str | None = None, limit: int = 25
    ) -> ArchivePage:
        below = parse_cursor(cursor)
        words = tsquery(query.text)
        if not words:
            args: list[Any] = [query.site_id, below]
            where = filters_sql(query, args)
            args.append(limit + 1)
            rows = await self.engine.fetch(
                f"SELECT a.seq, {_C_COLS} FROM archive_convs a JOIN conversations c"
                f" ON c.id = a.conv_id WHERE a.site_id = $1 AND a.seq < $2{where}"
                f" ORDER BY a.seq DESC LIMIT ${len(args)}",
                *args,
            )
            hits = [ArchiveHit(_conv(r[1:])) for r in rows[:limit]]
            more = len(rows) > limit
            return ArchivePage(hits, str(rows[limit - 1][0]) if more else None)

        match = f"tsv @@ to_tsquery('simple', {FOLDED.format('$1')})"

        newest_seq: list[int] = []

        async def fetch(upper: tuple[int, int], size: int) -> list[tuple[int, int, str]]:
            # The newest WINDOW conversations by the (seq, offset) B-tree, read
            # newest first until the batch is full (a common word fills it at
            # once); bitmap scans are off there, as the GIN index only has those
            # and the planner cannot tell a common prefix from a rare one.  Then
            # the older ones by the GIN index (``seq + 0`` keeps the planner off
            # the B-tree, whose backward scan would read the whole table for a
            # word nobody wrote).
            if not newest_seq:  # the first page's cursor is above every seq
                top = await self.engine.fetch("SELECT coalesce(max(seq), 0) FROM archive_convs")
                newest_seq.append(int(top[0][0]))
            lo = max(0, min(upper[0], newest_seq[0] + 1) - WINDOW)

            async def op(db: Connection) -> list[Any]:
                # Plans made for these values (a generic plan of a prepared
                # statement would not know the window is small).
                await db.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                await db.execute("SET LOCAL enable_bitmapscan = off")
                rows = list(
                    await db.fetch(
                        f'SELECT seq, "offset", body FROM archive_text WHERE {match}'
                        ' AND seq >= $2 AND (seq, "offset") < ($3, $4)'
                        ' ORDER BY seq DESC, "offset" DESC LIMIT $5',
                        words,
                        lo,
                        upper[0],
                        upper[1],
                        size,
                    )
                )
                if len(rows) < size and lo > 0:
                    await db.execute("SET LOCAL enable_bitmapscan = on")
                    rows += await db.fetch(
                        f'SELECT seq, "offset", body FROM archive_text WHERE {match}'
                        ' AND seq < $2 ORDER BY seq + 0 DESC, "offset" DESC LIMIT $3',
                        words,
                        lo,
                        size - len(rows),
                    )
                return rows

            rows = await self.engine.run(op)
            return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]

        async def passing(seqs: list[int]) -> dict[int, Conversation]:
            args: list[Any] = [seqs, query.site_id]
            where = filters_sql(query, args)
            rows = await self.engine.fetch(
                f"SELECT a.seq, {_C_COLS} FROM archive_convs a JOIN conversations c"
                f" ON c.id = a.conv_id WHERE a.seq = ANY($1::bigint[]) AND a.site_id = $2{where}",
                *args,
            )
            return {int(r[0]): _conv(r[1:]) for r in rows}

        return await text_page(fetch, passing, below, limit)

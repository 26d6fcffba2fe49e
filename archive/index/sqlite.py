"""The archive index on SQLite: FTS5 over entry bodies and visitors, in a file of its
own beside the store's (``sqlite_file.py``: its own writer thread, the record
attached read-only).

Tables (``ARCHIVE_FILE_MIGRATIONS`` of ``chatserver/migrations_sqlite.py``, which
also fills them from the record):

* ``archive_convs (seq INTEGER PRIMARY KEY, conv_id UNIQUE, site_id)``: the
  archive's order, a number per conversation given when it is first indexed
  (by creation time on a rebuild).  Index ``(site_id, seq)``.
* ``archive_fts``: FTS5, one column ``text``, tokenizer ``unicode61
  remove_diacritics 2`` (case and accents ignored).  The rowid of a text is
  ``seq << 24 | offset``: the entry at ``offset`` of conversation ``seq``,
  offset 0 for the visitor's "name e-mail".  So the texts of newer
  conversations have larger rowids, and a search reads FTS5 in rowid order
  from the cursor down, in batches, keeping the conversations that pass the
  filters: a page costs about the same at any depth and any archive size.

Writes run on the archive file's writer lane, searches on its reader; the
record's tables (``conversations``, ``entries``, ``visitors``) are read
through the attachment, by their plain names.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

from chatserver.migrations_sqlite import ARCHIVE_REBUILD
from chatserver.proactive.names import PROACTIVE_TAG
from chatserver.store.sqlite.engine import SQLiteEngine
from chatserver.store.sqlite.rows import _conv, conv_cols
from chatserver.types import Conversation, ConversationId, Entry, SiteId

from ..query import ArchiveHit, ArchivePage, ArchiveQuery, indexed
from .paging import parse_cursor, text_page
from .sqlite_file import ArchiveFile

SHIFT = 24  # bits of a rowid for the entry offset
_OFFSET = (1 << SHIFT) - 1
_C_COLS = conv_cols("c")
_FILES = (
    "EXISTS (SELECT 1 FROM entries e WHERE e.conv_id = c.id AND e.data LIKE '%\"attachment\"%')"
)


def filters_sql(q: ArchiveQuery) -> tuple[str, list[Any]]:
    """``AND ...`` conditions on ``c`` (conversations) for the filters of ``q``."""
    sql: list[str] = []
    args: list[Any] = []
    if q.states:
        sql.append(f"c.state IN ({', '.join('?' for _ in q.states)})")
        args.extend(s.value for s in q.states)
    if q.agent is not None:
        sql.append("EXISTS (SELECT 1 FROM json_each(c.agents) WHERE value = ?)")
        args.append(q.agent)
    if q.department is not None:
        sql.append("c.department = ?")
        args.append(q.department)
    if q.tag is not None:
        sql.append("EXISTS (SELECT 1 FROM json_each(c.tags) WHERE value = ?)")
        args.append(q.tag)
    if q.rating is not None:
        sql.append("c.rating = ?")
        args.append(q.rating)
    if q.since is not None:
        sql.append("c.created_at >= ?")
        args.append(q.since)
    if q.until is not None:
        sql.append("c.created_at < ?")
        args.append(q.until)
    if q.offline is not None:
        sql.append("c.offline = ?")
        args.append(int(q.offline))
    if q.trigger is not None:
        neg = "" if q.trigger else "NOT "
        sql.append(f"{neg}EXISTS (SELECT 1 FROM json_each(c.tags) WHERE value = ?)")
        args.append(PROACTIVE_TAG)
    if q.attachments is not None:
        sql.append(_FILES if q.attachments else f"NOT {_FILES}")
    return "".join(f" AND {s}" for s in sql), args


def _seq(db: sqlite3.Connection, conv_id: ConversationId) -> int | None:
    row = db.execute("SELECT seq FROM archive_convs WHERE conv_id = ?", (conv_id,)).fetchone()
    if row is not None:
        return int(row[0])
    conv = db.execute("SELECT site_id FROM conversations WHERE id = ?", (conv_id,)).fetchone()
    if conv is None:
        return None
    cur = db.execute(
        "INSERT INTO archive_convs (conv_id, site_id) VALUES (?, ?)", (conv_id, conv[0])
    )
    return int(cur.lastrowid or 0)


def _put(db: sqlite3.Connection, rowid: int, text: str) -> None:
    db.execute("DELETE FROM archive_fts WHERE rowid = ?", (rowid,))
    if text.strip():
        db.execute("INSERT INTO archive_fts (rowid, text) VALUES (?, ?)", (rowid, text))


class SQLiteArchive:
    """``ArchiveIndex`` on SQLite (module docstring)."""

    def __init__(self, store: SQLiteEngine) -> None:
        self.engine = ArchiveFile(store.path)
        self._open = False
        self._opening = asyncio.Lock()

    async def start(self) -> None:
        """Open the archive's file (made from the record when new); every other
        method opens it first if it is not open yet."""
        if self._open:
            return
        async with self._opening:
            if not self._open:
                await self.engine.start()
                self._open = True

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self.engine.close()

    async def note_conversation(self, conv_id: ConversationId) -> None:
        await self.note_batch([conv_id], [])

    async def note_entry(self, entry: Entry) -> None:
        await self.note_batch([], [entry])

    async def note_batch(
        self, conv_ids: Sequence[ConversationId], entries: Sequence[Entry]
    ) -> None:
        await self.start()
        texts = [e for e in entries if indexed(e)]
        if not conv_ids and not texts:
            return

        def op(db: sqlite3.Connection) -> None:
            for conv_id in dict.fromkeys(conv_ids):
                seq = _seq(db, conv_id)
                if seq is None:
                    continue
                row = db.execute(
                    "SELECT v.name, v.email FROM conversations c JOIN visitors v"
                    " ON v.id = c.visitor_id WHERE c.id = ?",
                    (conv_id,),
                ).fetchone()
                _put(db, seq << SHIFT, f"{row[0]} {row[1]}" if row else "")
            seqs: dict[ConversationId, int | None] = {}
            rows: list[tuple[int, str]] = []
            for entry in texts:
                conv_id = entry.conversation_id
                if conv_id not in seqs:
                    seqs[conv_id] = _seq(db, conv_id)
                seq = seqs[conv_id]
                if seq is not None:
                    rows.append((seq << SHIFT | entry.offset, entry.body))
            # In ascending rowids: FTS5 writes its pending terms out as a segment
            # whenever a rowid is not above the previous one, and the batch holds
            # many conversations' texts in the order they came (2-3x the CPU).
            rows.sort()
            try:  # new entries: their rowids are new, so no DELETE before each INSERT
                db.execute("SAVEPOINT archive_rows")
                db.executemany("INSERT INTO archive_fts (rowid, text) VALUES (?, ?)", rows)
                db.execute("RELEASE archive_rows")
            except sqlite3.IntegrityError:  # one was indexed already (reindex, a retry)
                db.execute("ROLLBACK TO archive_rows")
                db.execute("RELEASE archive_rows")
                for rowid, text in rows:
                    _put(db, rowid, text)

        await self.engine.run(op)

    async def forget(self, site_id: SiteId, conv_ids: Sequence[ConversationId]) -> int:
        await self.start()

        def op(db: sqlite3.Connection) -> int:
            gone = 0
            for conv_id in conv_ids:
                row = db.execute(
                    "DELETE FROM archive_convs WHERE conv_id = ? AND site_id = ? RETURNING seq",
                    (conv_id, site_id),
                ).fetchone()
                if row is not None:
                    low = int(row[0]) << SHIFT
                    db.execute(
                        "DELETE FROM archive_fts WHERE rowid BETWEEN ? AND ?", (low, low | _OFFSET)
                    )
                    gone += 1
            return gone

        gone = await self.engine.run(op)
        if gone:
            await self._merge()
            # The pages before the zeroing are still in the WAL: copied back and cut
            # off, so the erased words are in neither of the archive's files (as the
            # store's ``scrub``).
            await self.engine.checkpoint()
        return gone

    async def _merge(self) -> None:
        # FTS5 (before SQLite 3.42's secure-delete) deletes by writing a tombstone:
        # the words stay in the older segments until those are merged.  A negative
        # 'merge' merges every segment, a few hundred pages a transaction, so the
        # writer is held for tens of milliseconds at a time (0.24 s in all at
        # 100,000 texts); with secure_delete the old pages are zeroed as they go.
        def step(db: sqlite3.Connection) -> int:
            before = db.total_changes
            db.execute("INSERT INTO archive_fts (archive_fts, rank) VALUES ('merge', -200)")
            return db.total_changes - before

        for _ in range(10_000):
            if await self.engine.run(step) < 2:
                return

    async def reindex(self) -> int:
        await self.start()

        def op(db: sqlite3.Connection) -> int:
            for statement in ARCHIVE_REBUILD:
                db.execute(statement)
            return int(db.execute("SELECT count(*) FROM archive_convs").fetchone()[0])

        return await self.engine.run(op)

    async def catch_up(self, since: float) -> int:
        await self.start()
        # Read and written on the index's writer, whose thread runs on spare CPU
        # (sqlite_file.py): after an overload the listener catches up this way
        # what it skipped, and the scan must not take the core from the event
        # loop either (the reader's thread has the ordinary priority, for
        # searches).  ``_put`` replaces, so a text the events index meanwhile is
        # written twice, not duplicated.
        recent = "(c.state != 'closed' OR c.closed_at >= ?)"
        unlisted = await self.engine._all(
            f"SELECT c.id FROM conversations c WHERE {recent}"
            " AND NOT EXISTS (SELECT 1 FROM archive_convs a WHERE a.conv_id = c.id)",
            (since,),
        )
        if unlisted:
            await self.note_batch([r[0] for r in unlisted], [])
        missing = await self.engine._all(
            "SELECT a.seq, e.offset, e.body FROM conversations c"
            " JOIN archive_convs a ON a.conv_id = c.id JOIN entries e ON e.conv_id = c.id"
            f" WHERE {recent} AND e.kind IN ('text', 'note') AND trim(e.body) != ''"
            " AND NOT EXISTS (SELECT 1 FROM archive_fts f"
            f" WHERE f.rowid = a.seq << {SHIFT} | e.offset)",
            (since,),
        )
        if missing:

            def op(db: sqlite3.Connection) -> None:
                for seq, offset, body in missing:
                    _put(db, seq << SHIFT | offset, body)

            await self.engine.run(op)
        return len(unlisted) + len(missing)

    async def search(
        self, query: ArchiveQuery, cursor: str | None = None, limit: int = 25
    ) -> ArchivePage:
        await self.start()
        below = min(parse_cursor(cursor), 2**38)
        where, args = filters_sql(query)
        wanted = query.words
        if not wanted:
            sql = (
                f"SELECT a.seq, {_C_COLS} FROM archive_convs a JOIN conversations c"
                f" ON c.id = a.conv_id WHERE a.site_id = ? AND a.seq < ?{where}"
                " ORDER BY a.seq DESC LIMIT ?"
            )
            rows = await self.engine._read_all(sql, (query.site_id, below, *args, limit + 1))
            hits = [ArchiveHit(_conv(r[1:])) for r in rows[:limit]]
            more = len(rows) > limit
            return ArchivePage(hits, str(rows[limit - 1][0]) if more else None)
        match = " ".join(f'"{w}"*' for w in wanted)

        async def fetch(upper: tuple[int, int], size: int) -> list[tuple[int, int, str]]:
            rows = await self.engine._read_all(
                "SELECT rowid, text FROM archive_fts WHERE archive_fts MATCH ? AND rowid < ?"
                " ORDER BY rowid DESC LIMIT ?",
                (match, upper[0] << SHIFT | upper[1], size),
            )
            return [(r >> SHIFT, r & _OFFSET, text) for r, text in rows]

        async def passing(seqs: list[int]) -> dict[int, Conversation]:
            marks = ", ".join("?" for _ in seqs)
            rows = await self.engine._read_all(
                f"SELECT a.seq, {_C_COLS} FROM archive_convs a JOIN conversations c"
                f" ON c.id = a.conv_id WHERE a.seq IN ({marks}) AND a.site_id = ?{where}",
                (*seqs, query.site_id, *args),
            )
            return {int(r[0]): _conv(r[1:]) for r in rows}

        return await text_page(fetch, passing, below, limit)

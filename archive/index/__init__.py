"""The archive index: full-text search and filters over every conversation of a site.

Its own store domain beside the core Store (like the recordings index):
``ArchiveIndex`` is the contract, ``sqlite.py``, ``postgres.py`` and
``redis.py`` implement it over the engine of the store they are given;
``open_archive`` picks the backend.  What each keeps:

* SQLite: an FTS5 table (``archive_fts``, tokenizer ``unicode61
  remove_diacritics 2``) and ``archive_convs`` (a sequence number per
  conversation, the order of the archive), in a file of its own beside the
  store's with its own writer thread (``sqlite_file.py``), made from the
  record when new.
  Kept current by the conversation events (``note_entry``,
  ``note_conversation``); ``reindex`` rebuilds both from the record.
* PostgreSQL: the same two roles, ``archive_convs`` and ``archive_text``
  (a ``tsvector`` per text, ``simple`` configuration over accent-folded
  lower-case text, GIN index), step 4 of ``migrations_postgres.py``.
* Redis: no index.  A search walks the site's conversations newest first
  (``archive:<site>``, a sorted set kept by the events and by ``reindex``),
  reads each one's entries and matches in Python, examining at most
  ``SCAN_BUDGET`` conversations per page; a page can come back short with a
  cursor to go on.  Fine for a small shop, not for a large archive.

The contract tests are ``tests/contracts/test_archive_index.py`` (every backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chatserver.store import Store
from chatserver.store.postgres.engine import PostgresEngine
from chatserver.store.redis.engine import RedisEngine
from chatserver.store.sqlite.engine import SQLiteEngine
from chatserver.types import ConversationId, Entry, EntryKind, SiteId

from ..query import ArchivePage, ArchiveQuery
from .postgres import PostgresArchive
from .redis import RedisArchive
from .sqlite import SQLiteArchive

__all__ = ["ArchiveIndex", "PostgresArchive", "RedisArchive", "SQLiteArchive", "open_archive"]

# The entries whose body is searched: messages, notes and files (a file's body is its name).
SEARCHED = (EntryKind.TEXT, EntryKind.NOTE)


class ArchiveIndex(Protocol):
    """Search and filters over a site's conversations, newest first.

    * **Complete after reindex.**  After ``reindex`` every conversation of
      the record is found by its filters and every text entry and note by
      its words; the visitor's name and e-mail as they are then.
    * **Current by events.**  ``note_conversation`` (a conversation opened
      or closed) and ``note_entry`` (an entry appended) make it findable;
      both may be repeated (nothing changes the second time).
    * **Caught up at start.**  ``catch_up`` indexes what events lost in a
      crash left out, for the conversations open or recently closed.
    * **Filters read the record**: state, agents, tags and rating are those
      of the conversation as it is now, not as it was indexed.
    * **Keyset pages.**  ``search`` returns at most ``limit`` hits and a
      cursor; following cursors visits each matching conversation once, in
      the index's order, also while new conversations arrive.
    """

    async def start(self) -> None:
        """Open what the index keeps apart from the store (SQLite: its own file, made
        from the record when new); the other methods open it too when needed."""

    async def close(self) -> None:
        """Close what ``start`` opened (the store itself stays open)."""

    async def note_conversation(self, conv_id: ConversationId) -> None:
        """Index the conversation (if new) and its visitor's name and e-mail (again)."""

    async def note_entry(self, entry: Entry) -> None:
        """Index an appended entry (a text or note; other kinds change nothing)."""

    async def note_batch(
        self, conv_ids: Sequence[ConversationId], entries: Sequence[Entry]
    ) -> None:
        """``note_conversation`` for each of ``conv_ids`` and ``note_entry`` for each of
        ``entries``, in one write (what the events' listener calls, a batch at a time)."""

    async def search(
        self, query: ArchiveQuery, cursor: str | None = None, limit: int = 25
    ) -> ArchivePage:
        """A page of conversations passing the filters and containing every word.

        Raises ``BadCursor`` for a cursor this backend did not make.
        """

    async def forget(self, site_id: SiteId, conv_ids: Sequence[ConversationId]) -> int:
        """Take conversations and all their texts out of the index (an erasure),
        from its storage too where it keeps words apart (SQLite merges its FTS5
        segments); a later ``note_*`` of a conversation no longer in the record
        adds nothing.  How many of the site's were in it."""

    async def reindex(self) -> int:
        """Rebuild the index from the record; the number of conversations indexed."""

    async def catch_up(self, since: float) -> int:
        """Index what the events did not: every conversation open now or closed at or
        after ``since`` becomes findable with all its texts (what a process that died
        held in its batch).  The number of conversations and texts it added."""


def open_archive(store: Store) -> ArchiveIndex:
    """The archive index kept beside ``store``; ``TypeError`` for another backend."""
    if isinstance(store, SQLiteEngine):
        return SQLiteArchive(store)
    if isinstance(store, RedisEngine):
        return RedisArchive(store)
    if isinstance(store, PostgresEngine):
        return PostgresArchive(store)
    raise TypeError(f"no archive index for a {type(store).__name__}")

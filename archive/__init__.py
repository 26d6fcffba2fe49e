"""The conversation archive: every conversation of a site, filtered and searched.

* ``query``    what a search asks and answers; folding and highlighting
* ``index/``   the index beside the core Store (SQLite FTS5, PostgreSQL
               ``tsvector``, a bounded walk on Redis) and its contract
* ``pages``    ``/console/conversations`` (the list) and
               ``/console/conversations/{id}`` (one conversation)
* ``cli``      ``chatserver archive reindex``

``Archive`` is the service a node holds: its index and the conversation
events' listener that keeps it current (``install``).  docs/archive.md
tells the whole story.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from chatserver.events import ConversationEvent, EventKind
from chatserver.store import Store
from chatserver.tasks import stop
from chatserver.types import ConversationId, Entry, now

from .index import ArchiveIndex, open_archive
from .query import indexed

if TYPE_CHECKING:
    from chatserver.node import Node

log = logging.getLogger("chatserver.archive")


_FOLLOWED = (EventKind.ENTRY, EventKind.OPENED, EventKind.CLOSED)


class Archive:
    """The archive index of a node's store, and the listener that keeps it current.

    The listener gathers what the events say and writes it a batch at a time
    (``note_batch``: one store transaction) of at most ``BATCH`` items, or
    ``DELAY`` seconds after the first.  One write per message cost the SQLite
    writer a commit of its own beside the message's (1.65x the instructions
    per relayed message, ``bench.probe instructions``).  The index has a writer
    of its own now (SQLite: its own file), so a batch of hundreds holds no
    message's commit, and larger batches cost less a text (FTS5: 64 texts
    about 30 µs each, 256 about 13; 1,024 or 1 s, not 256 or 0.25 s: about 40 %
    less of the index thread's CPU per message; docs/performance.md).  A batch waiting
    when a process dies is written when one starts again: ``catch_up``
    indexes the texts missing from conversations open then or closed in the
    ``CATCH_UP`` seconds before, in the background (``chatserver archive
    reindex`` mends anything older).

    The index may fall behind: on SQLite its writer runs on spare CPU only
    (``index/sqlite_file.py``).  While ``BEHIND`` full batches wait to be
    written, the listener gathers nothing more, so a busy machine does not
    hold ever more texts in memory; once the index has written them, it
    catches up from the record what it skipped (``catch_up`` from the moment
    it began to skip), in the background.
    """

    BATCH = 1024
    DELAY = 1.0
    CATCH_UP = 2 * 86400.0
    BEHIND = 8  # full batches waiting for the index before the listener skips

    def __init__(self, store: Store) -> None:
        self.store = store
        self.index: ArchiveIndex = open_archive(store)
        self._convs: list[ConversationId] = []
        self._entries: list[Entry] = []
        self._timer: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Future[None]] = set()  # full batches being written
        self._full = False  # a flush of a full batch is on its way
        self._catching_up: asyncio.Task[int] | None = None
        self._skipped_since: float | None = None  # when the listener began to skip
        self._mending: asyncio.Task[None] | None = None  # catching up what it skipped
        self._closing = False
        self.skipped = 0  # events skipped while the index was behind (``/metrics``)

    def install(self, node: Node) -> None:
        """Follow the node's conversation events (before the node starts).

        Inline (``ConversationEvents.listen_inline``): noting an event is a list
        append, so it needs no queue and no task wake-up per message; the
        writes happen in ``flush``, a task of their own."""
        node.convs.events.listen_inline("archive", self.note, lambda e: e.kind in _FOLLOWED)
        node.hub.add_service(self.start, self.close)

    async def start(self) -> None:
        """Open the index (SQLite: its own file, made from the record when new), then
        catch up in the background what a process that died left out."""
        await self.index.start()
        self._catching_up = asyncio.ensure_future(self._catch_up())

    async def _catch_up(self) -> int:
        try:
            added = await self.index.catch_up(now() - self.CATCH_UP)
        except Exception:
            log.exception("archive: the catch-up at start failed (run: chatserver archive reindex)")
            return 0
        if added:
            log.warning("archive: %d conversations and texts the events left out indexed", added)
        return added

    async def caught_up(self) -> int:
        """Wait for the catch-up at start (tests); what it added."""
        return await self._catching_up if self._catching_up is not None else 0

    def note(self, event: ConversationEvent) -> None:
        """An entry is indexed; an opened or closed conversation (again, with its
        visitor): gathered now, written by ``flush`` (a full batch at once,
        else ``DELAY`` seconds after the first)."""
        if len(self._flushes) >= self.BEHIND:
            self.skipped += 1
            if self._skipped_since is None:  # written afterwards by ``_mend``
                self._skipped_since = now()
                log.warning(
                    "archive: the index is %d batches behind; skipping until it catches up",
                    len(self._flushes),
                )
            return
        if event.kind is EventKind.ENTRY:
            if event.entry is None or not indexed(event.entry):
                return
            self._entries.append(event.entry)
        else:
            self._convs.append(event.conv_id)
        if len(self._convs) + len(self._entries) >= self.BATCH:
            if not self._full:  # one flush for a full batch, however many notes follow
                self._full = True
                flush = asyncio.ensure_future(self.flush())
                self._flushes.add(flush)
                flush.add_done_callback(self._flushed)
        elif self._timer is None:
            self._timer = asyncio.ensure_future(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(self.DELAY)
        self._timer = None
        await self.flush()

    async def flush(self) -> None:
        """Write what is gathered (a failure is logged; ``reindex`` mends it)."""
        convs, entries = self._convs, self._entries
        self._convs, self._entries = [], []
        self._full = False
        if not convs and not entries:
            return
        try:
            await self.index.note_batch(convs, entries)
        except Exception:
            log.exception("archive: %d items not indexed", len(entries) + len(convs))

    def _flushed(self, flush: asyncio.Future[None]) -> None:
        self._flushes.discard(flush)
        self._mend_when_caught_up()

    def _mend_when_caught_up(self) -> None:
        """The full batches are written and the listener skipped meanwhile: index
        what it skipped, from the record (once at a time)."""
        if (
            self._closing
            or self._flushes
            or self._skipped_since is None
            or self._mending is not None
        ):
            return
        since, self._skipped_since = self._skipped_since, None
        self._mending = asyncio.ensure_future(self._mend(since))

    async def _mend(self, since: float) -> None:
        try:
            # a conversation with a skipped text was open when it came: it is
            # open still or was closed since (what ``catch_up`` looks at)
            added = await self.index.catch_up(since - 1.0)
            log.warning("archive: caught up, %d conversations and texts indexed", added)
        except Exception:
            log.exception("archive: the catch-up failed (run: chatserver archive reindex)")
        finally:
            self._mending = None
        self._mend_when_caught_up()  # it skipped again meanwhile

    def waiting(self) -> int:
        """Full batches waiting for the index's writer (``/metrics``)."""
        return len(self._flushes)

    async def mended(self) -> None:
        """Wait until what the listener skipped is indexed (tests)."""
        while self._mending is not None or self._flushes:
            if self._mending is not None:
                await asyncio.shield(self._mending)
            if self._flushes:
                await asyncio.gather(*self._flushes)

    async def close(self) -> None:
        """Write what is still gathered (the node is closing; the store is still open)."""
        self._closing = True  # what was skipped, the next start catches up (``CATCH_UP``)
        timer, self._timer = self._timer, None
        if timer is not None:
            await stop(timer)
        mending, self._mending = self._mending, None
        if mending is not None:
            await stop(mending)
        catching_up, self._catching_up = self._catching_up, None
        if catching_up is not None:
            await stop(catching_up)
        if self._flushes:
            await asyncio.gather(*self._flushes)
        await self.flush()
        await self.index.close()

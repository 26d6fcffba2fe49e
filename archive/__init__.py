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
    """

    BATCH = 1024
    DELAY = 1.0
    CATCH_UP = 2 * 86400.0

    def __init__(self, store: Store) -> None:
        self.store = store
        self.index: ArchiveIndex = open_archive(store)
        self._convs: list[ConversationId] = []
        self._entries: list[Entry] = []
        self._timer: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Future[None]] = set()  # full batches being written
        self._full = False  # a flush of a full batch is on its way
        self._catching_up: asyncio.Task[int] | None = None

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
                flush.add_done_callback(self._flushes.discard)
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

    async def close(self) -> None:
        """Write what is still gathered (the node is closing; the store is still open)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            await stop(timer)
        catching_up, self._catching_up = self._catching_up, None
        if catching_up is not None:
            await stop(catching_up)
        if self._flushes:
            await asyncio.gather(*self._flushes)
        await self.flush()
        await self.index.close()

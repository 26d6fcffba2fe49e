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

import logging
from typing import TYPE_CHECKING

from chatserver.events import ConversationEvent, EventKind
from chatserver.store import Store

from .index import ArchiveIndex, open_archive

if TYPE_CHECKING:
    from chatserver.node import Node

log = logging.getLogger("chatserver.archive")

_FOLLOWED = (EventKind.ENTRY, EventKind.OPENED, EventKind.CLOSED)


class Archive:
    """The archive index of a node's store, and the listener that keeps it current."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.index: ArchiveIndex = open_archive(store)

    def install(self, node: Node) -> None:
        """Follow the node's conversation events (before the node starts)."""
        node.convs.events.listen("archive", self.on_event, lambda e: e.kind in _FOLLOWED)

    async def on_event(self, event: ConversationEvent) -> None:
        """An entry is indexed; an opened or closed conversation (again, with its visitor)."""
        if event.kind is EventKind.ENTRY and event.entry is not None:
            await self.index.note_entry(event.entry)
        else:
            await self.index.note_conversation(event.conv_id)

"""Session recording and replay: ingest of rrweb batches, storage, index, replay API.

``Recordings`` puts the parts together for the app (``chatserver/node.py``):

* ``ingest``     the ``rec`` frame of visitor connections (``ingest.py``);
* chunks         a recording's batches, one compressed frame each
                 (``format.py``), sealed from its live tail into immutable
                 BlobStore objects (``chunks.py``); recordings of earlier
                 versions are one appended segment;
* ``index``      rows and marks, its own store domain beside the core Store
                 (``index/``: SQLite or Redis, whichever the Store is);
* ``reader``     events by time range from the nearest full snapshot;
* ``api``        the HTTP replay API for analysts (``api.py``, ``auth.py``);
* ``rewind``     the last seconds of a chatting visitor's recording, for the
                 conversation's agents (``rewind.py``);
* ``pages``      the analysts' console pages: session list and replay
                 (``pages.py``, ``templates/``, ``agent_console/static/replay.js``);
* retention      a periodic purge by each site's retention, and deletion of
                 one visitor's recordings (``retention.py``, ``chatserver
                 recordings purge|delete-visitor``).

``docs/recordings.md`` is the reader's guide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from starlette.routing import Mount

from chatserver.blobs import BlobStore
from chatserver.conversations import frame_event, site_channel
from chatserver.store import Store
from chatserver.types import JSON, ClientKind, RecordingMark, VisitorId

from . import api, pages, retention, rewind
from .index import RecordingIndex, open_index
from .ingest import Ingest, RecordingLimits

if TYPE_CHECKING:
    from chatserver.node import Node
    from chatserver.session import Session

__all__ = ["Ingest", "RecordingIndex", "RecordingLimits", "Recordings", "pages"]

log = logging.getLogger("recordings")

PURGE_EVERY = 3600.0  # seconds between retention runs
PURGE_FIRST = 60.0  # seconds after start before the first


class Recordings:
    """The recordings feature of one server process.

    ``store`` is the core Store (sites, conversations); the recordings index
    is kept beside it, on the same backend (``index.open_index``).
    """

    def __init__(self, store: Store, blobs: BlobStore, limits: RecordingLimits | None = None):
        self.store = store
        self.index: RecordingIndex = open_index(store)
        self.blobs = blobs
        self.ingest = Ingest(self.index, blobs, limits)
        self._purger: asyncio.Task[None] | None = None

    def install(self, node: Node) -> None:
        """Serve visitors' ``rec`` frames on ``hub``; their signals go to the triggers."""
        node.hub.add_handler(ClientKind.VISITOR, "rec", self.ingest.handle)

        async def signals(session: Session, rec_id: str, marks: list[RecordingMark]) -> None:
            await node.triggers.signals(session, marks)
            if session.site is None or session.visitor_id is None:
                return
            channel = site_channel(session.site.id)
            for mark in marks:  # the console's visitor panel lists them as they come
                frame: JSON = {
                    "t": "signal",
                    "visitor": session.visitor_id,
                    "kind": mark.kind,
                    "url": str(mark.data.get("url", "")),
                    "ts": mark.ts,
                    "session": rec_id,
                    "detail": {k: v for k, v in mark.data.items() if k != "url"},
                }
                await node.broker.publish(channel, frame_event(frame, "agents"))

        self.ingest.on_signals = signals

    def mount(self, path: str = "/console/api/recordings") -> Mount:
        """The replay API's routes (the app reaches it as ``app.state.node.recordings``)."""
        return Mount(path, routes=api.routes)

    def rewind_mount(self, path: str = "/console/api/rewind") -> Mount:
        """The agents' rewind (``rewind.py``): a chatting visitor's last seconds."""
        return Mount(path, routes=rewind.routes)

    async def start(self, every: float = PURGE_EVERY, first: float = PURGE_FIRST) -> None:
        """Run the retention purge now and then (``every`` seconds; 0: never)."""
        if every > 0:
            self._purger = asyncio.ensure_future(self._purge_loop(every, first))

    async def close(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
            self._purger = None
        await self.ingest.close()  # seal every recording's tail

    async def _purge_loop(self, every: float, first: float) -> None:
        await asyncio.sleep(first)
        while True:
            try:
                await self.purge()
            except Exception:
                log.exception("retention purge failed; trying again later")
            await asyncio.sleep(every)

    async def purge(self, now: float | None = None) -> int:
        """Delete what is past each site's retention (see ``retention.purge``)."""
        return await retention.purge(self.store, self.index, self.blobs, now, self.ingest.forget)

    async def delete_visitor(self, visitor_id: VisitorId) -> int:
        """Delete one visitor's recordings; the console calls this on request."""
        return await retention.delete_visitor(
            self.index, self.blobs, visitor_id, self.ingest.forget
        )

    def stats(self) -> JSON:
        return {**self.ingest.stats(), **self.ingest.tails.stats()}

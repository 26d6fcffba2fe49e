"""Recordings as immutable chunk objects: the live tail, sealed, and indexed.

A blob store that is object storage cannot append, so a recording is no
longer one growing segment.  Each recording's newest batches wait in its
**tail** (this process's memory) until the tail is **sealed**: written as
one new object (a *chunk*: the tail's frames, ``format.py``, one after the
other) when it holds ``seal_bytes`` or its first batch has waited
``seal_seconds``.  Only then is each of its batches indexed (in the order
they came) and acknowledged: a ``recorded`` reply still means "durably
stored", as before.

A chunk is indexed as a ``Chunk`` row (object key, bytes, first and last
seq, first and last event time) beside the recording (``index/``), and each
full snapshot's mark says which chunk it is in (``chunk``) and at which
offset in it.  A replay (``reader.py``) reads the chunks in seq order and
may start at any chunk boundary, or at a snapshot inside one.

Keys are ``<folder>/<first seq>-<writer>-<n>.chk`` where ``<folder>`` is the
recording's ``blob`` (``rec/<site>/<day>/<id>``), ``<writer>`` is random per
process and ``<n>`` counts its chunks: two processes that receive the same
recording (a visitor reconnected elsewhere while a reply was lost) write
different objects, never one over the other; the reader skips a seq it has
already read, so a batch stored twice replays once.

Recordings written by earlier versions (one appended segment whose ``blob``
ends in ``.seg``) are read as they are (``is_segment``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from chatserver.blobs import BlobStore
from chatserver.types import JSON, RecordingId

log = logging.getLogger("recordings.chunks")

SEGMENT_SUFFIX = ".seg"


def is_segment(blob: str) -> bool:
    """Whether a recording's ``blob`` is an old appended segment (not a chunk folder)."""
    return blob.endswith(SEGMENT_SUFFIX)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One sealed chunk of a recording, as the index keeps it."""

    key: str  # the BlobStore key
    first_seq: int
    last_seq: int
    bytes: int
    first_ts: float  # ms, its earliest event
    last_ts: float  # ms, its latest event

    def to_json(self) -> JSON:
        return {
            "key": self.key,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "bytes": self.bytes,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
        }

    @classmethod
    def from_json(cls, d: JSON) -> Chunk:
        return cls(
            str(d["key"]),
            int(d["first_seq"]),
            int(d["last_seq"]),
            int(d["bytes"]),
            float(d["first_ts"]),
            float(d["last_ts"]),
        )


@dataclass(slots=True)
class Pending:
    """A batch's frame waiting in a tail, and what it needs once sealed."""

    frame: bytes
    seq: int
    first_ts: float
    last_ts: float
    make: Callable[[str, int], Any] = lambda key, offset: None  # its index entry at (key, offset)
    offset: int = 0  # in the chunk, set when it joins the tail
    done: asyncio.Future[object] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


# Called once a chunk is written: index it and its batches, in order, and
# settle each pending batch's future (with its result or an exception).
Sealed = Callable[[RecordingId, Chunk, list[Pending]], Awaitable[None]]


@dataclass(slots=True)
class _Tail:
    folder: str
    items: list[Pending] = field(default_factory=list)
    size: int = 0
    timer: asyncio.TimerHandle | None = None


class Tails:
    """The live tails of this process's recordings, and their sealing."""

    def __init__(
        self, blobs: BlobStore, sealed: Sealed, seal_seconds: float, seal_bytes: int
    ) -> None:
        if seal_seconds < 0 or seal_bytes < 1:
            raise ValueError("seal_seconds must be >= 0 and seal_bytes >= 1")
        self.blobs = blobs
        self.sealed = sealed
        self.seal_seconds = seal_seconds
        self.seal_bytes = seal_bytes
        self.writer = secrets.token_hex(4)  # this process's part of every chunk key
        self._n = count()
        self._tails: dict[RecordingId, _Tail] = {}
        self._sealing: set[asyncio.Task[None]] = set()
        self.chunks = 0  # sealed by this process
        self.seal_seconds_total = 0.0

    def add(self, rec_id: RecordingId, folder: str, item: Pending) -> asyncio.Future[object]:
        """Put a batch's frame in the recording's tail; its future settles once sealed."""
        tail = self._tails.get(rec_id)
        if tail is None:
            tail = self._tails[rec_id] = _Tail(folder)
        item.offset = tail.size
        tail.items.append(item)
        tail.size += len(item.frame)
        if tail.size >= self.seal_bytes or self.seal_seconds == 0:
            self._seal(rec_id)
        elif tail.timer is None:
            loop = asyncio.get_running_loop()
            tail.timer = loop.call_later(self.seal_seconds, self._seal, rec_id)
        return item.done

    def _seal(self, rec_id: RecordingId) -> None:
        tail = self._tails.pop(rec_id, None)
        if tail is None or not tail.items:
            return
        if tail.timer is not None:
            tail.timer.cancel()
        task = asyncio.ensure_future(self._write(rec_id, tail))
        self._sealing.add(task)
        task.add_done_callback(self._sealing.discard)

    def key(self, folder: str, first_seq: int) -> str:
        return f"{folder}/{first_seq:010d}-{self.writer}-{next(self._n)}.chk"

    async def _write(self, rec_id: RecordingId, tail: _Tail) -> None:
        items = tail.items
        chunk = Chunk(
            key=self.key(tail.folder, min(i.seq for i in items)),
            first_seq=min(i.seq for i in items),
            last_seq=max(i.seq for i in items),
            bytes=tail.size,
            first_ts=min(i.first_ts for i in items),
            last_ts=max(i.last_ts for i in items),
        )
        started = time.monotonic()
        try:
            await self.blobs.put(chunk.key, b"".join(i.frame for i in items))
            self.chunks += 1
            await self.sealed(rec_id, chunk, items)
        except BaseException as exc:
            for item in items:
                if not item.done.done():
                    item.done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            log.warning("sealing a chunk of recording %s failed: %s", rec_id, exc)
        finally:
            self.seal_seconds_total += time.monotonic() - started

    async def flush(self) -> None:
        """Seal every tail now and wait for every seal under way (at close);
        a batch that still comes afterwards is sealed at once."""
        self.seal_seconds = 0.0
        await self.seal_now()

    async def seal_now(self) -> None:
        """Seal every tail now and wait for every seal under way (an erasure)."""
        for rec_id in list(self._tails):
            self._seal(rec_id)
        if self._sealing:
            await asyncio.gather(*self._sealing, return_exceptions=True)

    def stats(self) -> JSON:
        return {
            "tails": len(self._tails),
            "tail_bytes": sum(t.size for t in self._tails.values()),
            "chunks": self.chunks,
        }


async def drop_chunk(blobs: BlobStore, key: str) -> None:
    """Take back a chunk whose recording was deleted meanwhile (best effort)."""
    with contextlib.suppress(Exception):
        await blobs.delete(key)

"""Reading a recording back: events by time range, from the nearest full snapshot.

A recording is a list of chunk objects (``chunks.py``), or for one written
by an earlier version a single appended segment; either way a sequence of
frames (``format.py``).  The index keeps every full snapshot's chunk and
frame offset (a ``snapshot`` mark), so a read starts there instead of at the
beginning: it reads from that offset in growing pieces, on across the
following chunks, walks the frame headers (which
carry each batch's seq and time range), inflates only the frames it returns
and stops at the first frame that begins after the range.

Frames are returned whole, so a range is answered at batch granularity: the
reply ends with the last frame that begins at or before ``to``, and says the
seq to continue after (``last_seq``) and whether more follows.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from chatserver.blobs import BlobStore
from chatserver.errors import NotFound
from chatserver.types import Recording, RecordingMark

from . import format as fmt
from .chunks import Chunk

CHUNK = 1024 * 1024


@dataclass(slots=True)
class Slice:
    """Events read from a segment, and where the read stopped."""

    events: list[Any] = field(default_factory=list)
    start_ts: float | None = None  # the first event returned
    end_ts: float | None = None  # the last event returned
    last_seq: int | None = None  # continue with ``after_seq=last_seq``
    more: bool = False  # frames follow the last one returned
    raw_bytes: int = 0


def start_point(
    snapshots: list[RecordingMark], at: float | None = None, after_seq: int | None = None
) -> RecordingMark | None:
    """The snapshot a read starts from.

    With ``after_seq``: the last one stored in a batch up to that seq (only
    its offset matters).  Otherwise the last one at or before ``at`` (the
    first one when ``at`` comes before every snapshot or is ``None``).
    """
    if not snapshots:
        return None
    ordered = sorted(snapshots, key=lambda m: (m.data.get("seq", 0), m.data.get("index", 0)))
    if after_seq is not None:
        before = [m for m in ordered if m.data.get("seq", 0) <= after_seq]
        return before[-1] if before else None
    if at is None:
        return ordered[0]
    before = [m for m in ordered if m.ts <= at]
    return max(before, key=lambda m: m.ts) if before else ordered[0]


async def frames(
    blobs: BlobStore, key: str, offset: int = 0
) -> AsyncIterator[tuple[fmt.FrameInfo, bytes]]:
    """The valid frames of a segment from ``offset`` on, with their compressed payloads.

    Reads ``CHUNK`` bytes at a time, doubling the chunk while no whole frame
    fits in it; a missing segment has no frames.
    """
    base, chunk = offset, CHUNK
    while True:
        try:
            data = await blobs.read(key, base, chunk)
        except NotFound:
            return
        end = None
        for info in fmt.scan(data, base):
            end = info.end
            yield info, data[info.offset - base + fmt.HEADER_SIZE : info.end - base]
        if len(data) < chunk:
            return  # the end of the segment (a torn tail, if any, is left out)
        if end is None:
            chunk *= 2
        else:
            base, chunk = end, CHUNK


async def chunk_frames(
    blobs: BlobStore, chunks: list[Chunk], start: int = 0, offset: int = 0
) -> AsyncIterator[tuple[fmt.FrameInfo, bytes]]:
    """The frames of ``chunks[start:]`` in order, the first from ``offset`` on.

    A chunk missing from the store (deleted meanwhile) has no frames.
    """
    for i, chunk in enumerate(chunks[start:]):
        async for found in frames(blobs, chunk.key, offset if i == 0 else 0):
            yield found


def _source(
    blobs: BlobStore,
    rec: Recording,
    chunks: list[Chunk] | None,
    at: RecordingMark | None,
    seq: int | None,
) -> AsyncIterator[tuple[fmt.FrameInfo, bytes]]:
    """Frames from the snapshot ``at`` (its chunk and offset), else from the first
    chunk that may hold a seq after ``seq``, else from the beginning."""
    if chunks is None:  # an appended segment (recordings/chunks.is_segment)
        offset = int(at.data.get("offset", 0)) if at is not None else 0
        return frames(blobs, rec.blob, offset)
    if at is not None:
        key = at.data.get("chunk")
        for i, chunk in enumerate(chunks):
            if chunk.key == key:
                return chunk_frames(blobs, chunks, i, int(at.data.get("offset", 0)))
        return chunk_frames(blobs, chunks)
    if seq is not None:
        for i, chunk in enumerate(chunks):
            if chunk.last_seq > seq:
                return chunk_frames(blobs, chunks, i)
        return chunk_frames(blobs, [])
    return chunk_frames(blobs, chunks)


async def read(
    blobs: BlobStore,
    rec: Recording,
    snapshots: list[RecordingMark],
    *,
    start: float | None = None,
    to: float | None = None,
    after_seq: int | None = None,
    max_raw_bytes: int = 16 * 1024 * 1024,
    chunks: list[Chunk] | None = None,
) -> Slice:
    """Events of ``rec`` from the full snapshot at or before ``start`` up to ``to``.

    With ``after_seq`` instead: the frames after that seq (no snapshot
    seeking; for reading on lazily).  Stops after ``max_raw_bytes`` of JSON,
    at a frame boundary (at least one frame is returned).  ``chunks`` (by
    first seq) are the recording's chunk objects; ``None`` for a recording
    written as one appended segment (``rec.blob``).
    """
    mark = start_point(snapshots, start, after_seq)
    skip: tuple[int, int] | None = None  # (seq, index): the events to start from
    if after_seq is None and mark is not None:
        skip = (int(mark.data.get("seq", 0)), int(mark.data.get("index", 0)))
    # A segment is read from the snapshot's offset also for ``after_seq`` (the
    # last snapshot up to it); chunks are found by seq then.
    at = mark if after_seq is None or chunks is None else None
    source = _source(blobs, rec, chunks, at, after_seq)
    found = await _collect(source, skip, after_seq, to, max_raw_bytes, strict=True)
    if found is None:
        # The frame at the indexed offset is not the snapshot's (two processes
        # raced on one segment): look for it by seq from the beginning.
        source = _source(blobs, rec, chunks, None, None)
        found = await _collect(source, skip, after_seq, to, max_raw_bytes, strict=False)
    assert found is not None
    return found


async def _collect(
    source: AsyncIterator[tuple[fmt.FrameInfo, bytes]],
    skip: tuple[int, int] | None,
    after_seq: int | None,
    to: float | None,
    max_raw_bytes: int,
    *,
    strict: bool,
) -> Slice | None:
    out = Slice()
    last_seen = after_seq if after_seq is not None else -1
    first = True
    async for info, payload in source:
        if first and strict and skip is not None and info.seq != skip[0]:
            return None
        first = False
        if skip is not None and info.seq < skip[0]:
            continue
        if info.seq <= last_seen:
            continue  # a second copy of a stored batch
        if out.events and (
            (to is not None and info.first_ts > to) or out.raw_bytes >= max_raw_bytes
        ):
            out.more = True
            return out
        events: list[Any] = json.loads(fmt.decompress(info.codec, payload, info.raw_len))
        if skip is not None and info.seq == skip[0]:
            events = events[skip[1] :]
            skip = None
        last_seen = info.seq
        out.last_seq = info.seq
        out.raw_bytes += info.raw_len
        if events:
            if out.start_ts is None:
                out.start_ts = float(events[0].get("timestamp", 0))
            out.end_ts = float(events[-1].get("timestamp", 0))
            out.events.extend(events)
    return out

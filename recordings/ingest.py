"""The ``rec`` frame: a visitor's recorder hands over a batch of rrweb events.

A batch is stored once and durably before it is acknowledged: its events
are checked (``events.summarize``, or ``events.summarize_json`` for a batch
sent as JSON text, which reads it without building it as Python objects),
compressed into one segment frame
(``format``), appended to the recording's segment in the BlobStore (which
fsyncs), and only then indexed (``index``) and answered with ``recorded``.
The index write is idempotent by ``seq``, so a batch the client sends again
after a lost acknowledgement is stored once: a copy that arrives after the
first was indexed is answered ``duplicate: true`` and not written at all.

A recording belongs to the visitor that first wrote to it (the id is the
client's, random, one per tab and visit); any other visitor gets ``206``.

A batch comes as ``events`` (an array) or as the JSON text of that array in
``data`` (what the widget sends: the server checks it and stores the text as
it is, without encoding the events again).  A batch too big for one frame
(a full snapshot of a large page) comes in parts: that text cut in
``parts`` pieces sent in order (``part`` 0, 1, ...), each answered ``ok``
until the last, which is handled as a whole batch.  Parts wait in the
connection's memory, bounded per batch and for the whole process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from chatserver.blobs import BlobStore
from chatserver.errors import ErrorCode, FrameError, NotFound
from chatserver.protocol import wire
from chatserver.protocol.frames import Frame
from chatserver.session import Session
from chatserver.types import JSON, ConversationId, Recording, RecordingBatch, RecordingMark

from .chunks import SEGMENT_SUFFIX, Chunk, Pending, Tails, drop_chunk, is_segment
from .events import BadEvents, Summary, summarize, summarize_json
from .format import Codec, encode_frame
from .index import RecordingIndex
from .signals import Watch, detect

# What ``signals.detect`` reads of a batch's marks, and what the index keeps of them.
SIGNAL_INPUTS = frozenset({"page", "click", "error", "request", "submit"})
KEPT = frozenset({"page", "click", "gap"})

if TYPE_CHECKING:
    from chatserver.node import Node

log = logging.getLogger("recordings.ingest")

SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


@dataclass(frozen=True, slots=True)
class RecordingLimits:
    """Caps on what a recorder may send (docs/protocol.md, "Limits")."""

    batch_events: int = 1000  # events in one batch
    batch_bytes: int = 2 * 1024 * 1024  # one batch's events as JSON (parts joined)
    parts: int = 64  # parts of one batch
    session_events: int = 100_000  # events in one recording
    session_seconds: float = 4 * 3600.0  # from its first to its last event
    session_bytes: int = 64 * 1024 * 1024  # stored (compressed) bytes of one recording
    marks: int = 10_000  # click marks kept per recording (clicks are still counted)
    partial_bytes: int = 64 * 1024 * 1024  # parts held in memory by the whole process
    codec: Codec = Codec.ZSTD
    # Whether new recordings are stored as immutable chunk objects (chunks.py)
    # or as one segment appended in place: None chooses chunks exactly where
    # the blob store cannot append (object storage).  On a directory, appends
    # cost less CPU per batch (docs/recordings.md); chunks are for several
    # processes sharing one directory, where two writers may meet on a segment.
    chunks: bool | None = None
    # A recording's tail is sealed into a chunk object when it holds this many
    # bytes, or this long after its first batch came (0: at once).
    seal_bytes: int = 1024 * 1024
    seal_seconds: float = 0.05


class _Parts:
    """A connection's batch in the making (its parts so far)."""

    __slots__ = ("chunks", "key", "size")

    def __init__(self) -> None:
        self.key: tuple[str, int, int] | None = None  # (session, seq, parts)
        self.chunks: list[str] = []
        self.size = 0


def segment_key(site_id: str, rec_id: str, at: float) -> str:
    """The BlobStore key of a recording's segment as earlier versions wrote it."""
    return chunk_folder(site_id, rec_id, at) + SEGMENT_SUFFIX


def chunk_folder(site_id: str, rec_id: str, at: float) -> str:
    """The BlobStore folder of a recording's chunks (by day, for humans and tools)."""
    day = time.strftime("%Y%m%d", time.gmtime(at))
    return f"rec/{site_id}/{day}/{rec_id}"


class Ingest:
    """Stores ``rec`` batches of every visitor connection of this process."""

    CACHE = 10_000  # recordings whose index row this process keeps in memory

    def __init__(
        self, index: RecordingIndex, blobs: BlobStore, limits: RecordingLimits | None = None
    ):
        self.index = index
        self.blobs = blobs
        self.limits = limits or RecordingLimits()
        self.counts: Counter[str] = Counter()
        self._recs: OrderedDict[str, Recording] = OrderedDict()
        self._watches: OrderedDict[str, Watch] = OrderedDict()  # signals' state per recording
        # called with a batch's signals once it is stored (the trigger engine's)
        self.on_signals: Callable[[Session, str, list[RecordingMark]], Awaitable[None]] | None = (
            None
        )
        self._locks = [asyncio.Lock() for _ in range(64)]
        self._parts: weakref.WeakKeyDictionary[Session, _Parts] = weakref.WeakKeyDictionary()
        self._partial = 0  # bytes of parts held, whole process
        self.tails = Tails(blobs, self._sealed, self.limits.seal_seconds, self.limits.seal_bytes)
        chunks = self.limits.chunks
        self.chunked = not blobs.appends if chunks is None else chunks

    # -- the frame ---------------------------------------------------------

    async def handle(self, node: Node, session: Session, frame: Frame) -> None:
        assert session.site is not None and session.visitor_id is not None
        site = node.hub.sites.get(session.site.id, session.site)
        if not site.settings.recording:
            raise self._refuse(session, "off", ErrorCode.NOT_ALLOWED, "recording is off for site")
        rec_id: str = frame.get("session")
        if not SESSION_ID.fullmatch(rec_id):
            raise self._refuse(
                session,
                "bad_session",
                ErrorCode.INVALID_FIELD,
                "field 'session': 8 to 64 of A-Z a-z 0-9 _ -",
            )
        got = self._events(session, frame, rec_id)
        if got is None:
            session.send(wire.ok(frame.rid))
            return
        found: list[RecordingMark] = []
        reply = await self.store_batch(
            session,
            rec_id,
            frame.get("seq"),
            got if isinstance(got, list) else None,
            frame.get("now"),
            got if isinstance(got, bytes) else None,
            found,
        )
        reply["re"] = frame.rid
        session.send(reply)
        if found and self.on_signals is not None:
            await self.on_signals(session, rec_id, found)

    def _events(self, session: Session, frame: Frame, rec_id: str) -> list[Any] | bytes | None:
        """The batch's events, or when they came as text that text (UTF-8);
        ``None`` when a part was kept and more must come."""
        part = frame.get("part")
        if part is None:
            events = frame.get("events")
            if events is None:
                raise self._bad(session, "field 'events' is required (or 'part', 'parts', 'data')")
            return list(events)
        parts, data = frame.get("parts"), frame.get("data")
        if parts is None or data is None:
            raise self._bad(session, "a part needs 'parts' and 'data'")
        if part >= parts:
            raise self._bad(session, "'part' must be below 'parts'")
        if parts == 1:  # a whole batch as text: nothing to hold
            return self._utf8(session, data)
        if parts > self.limits.parts:
            raise self._bad(session, f"more than {self.limits.parts} parts")
        held = self._parts.get(session)
        if held is None:
            held = self._parts[session] = _Parts()
            # A closed connection's parts are released when its session goes.
            weakref.finalize(session, self._drop, held)
        key = (rec_id, frame.get("seq"), parts)
        if part == 0:
            self._drop(held)
            held.key = key
        elif held.key != key or len(held.chunks) != part:
            self._drop(held)
            raise self._bad(session, "parts must come in order, 0 first, with the same seq")
        size = len(data.encode("utf-8")) if not data.isascii() else len(data)
        if held.size + size > self.limits.batch_bytes:
            self._drop(held)
            raise self._refuse(
                session,
                "too_large",
                ErrorCode.FRAME_TOO_LARGE,
                f"batch larger than {self.limits.batch_bytes} bytes",
            )
        if self._partial + size > self.limits.partial_bytes:
            self._drop(held)
            self.counts["refused_busy"] += 1
            raise FrameError(ErrorCode.UNAVAILABLE, "too many batches in parts, retry later")
        held.chunks.append(data)
        held.size += size
        self._partial += size
        if part + 1 < parts:
            return None
        text = "".join(held.chunks)
        self._drop(held)
        return self._utf8(session, text)

    def _utf8(self, session: Session, text: str) -> bytes:
        """A batch sent as JSON text, as the bytes to check and store as they are
        (so the server need not encode the events again)."""
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a JSON frame's "\ud800" escape)
            raise self._bad(session, "'data' is not valid Unicode text") from None

    def _drop(self, held: _Parts) -> None:
        self._partial -= held.size
        held.key, held.chunks, held.size = None, [], 0

    # -- storing -------------------------------------------------------------

    async def store_batch(
        self,
        session: Session,
        rec_id: str,
        seq: int,
        events: list[Any] | None,
        now_ms: Any = None,
        raw: bytes | None = None,
        found: list[RecordingMark] | None = None,
    ) -> JSON:
        """Check, store durably and index one batch; the ``recorded`` reply.

        ``raw`` is the batch's JSON as the client sent it (``data``, UTF-8),
        checked without decoding it whole (``summarize_json``) and stored as
        it is; without it, ``events`` are checked and encoded as compact JSON.
        The batch's signals (``signals.py``) become marks and are added to
        ``found``.
        """
        assert session.site is not None and session.visitor_id is not None
        limits = self.limits
        try:
            summary = summarize(events) if events is not None else summarize_json(raw or b"")
        except BadEvents as exc:
            raise self._bad(session, str(exc)) from None
        if not summary.events:
            raise self._bad(session, "field 'events' is empty")
        if summary.events > limits.batch_events:
            raise self._bad(session, f"more than {limits.batch_events} events in one batch")
        if raw is None:
            try:
                raw = json.dumps(
                    events, separators=(",", ":"), ensure_ascii=False, allow_nan=False
                ).encode()
            except (UnicodeEncodeError, ValueError):  # a lone surrogate, NaN or Infinity
                raise self._bad(session, "events hold values that are not plain JSON") from None
        if len(raw) > limits.batch_bytes:
            raise self._refuse(
                session,
                "too_large",
                ErrorCode.FRAME_TOO_LARGE,
                f"batch larger than {limits.batch_bytes} bytes",
            )
        async with self._lock(rec_id):
            rec = await self._recording(
                session, rec_id, summary.last_ts, now_ms, bool(summary.snapshots)
            )
            if seq <= rec.last_seq:
                self.counts["duplicates"] += 1
                return {"t": "recorded", "session": rec_id, "seq": seq, "duplicate": True}
            self._check_caps(session, rec, summary.events, summary.first_ts, summary.last_ts)
            self._signals(rec_id, summary, found)
            data = encode_frame(
                raw,
                seq=seq,
                events=summary.events,
                first_ts=summary.first_ts,
                last_ts=summary.last_ts,
                codec=limits.codec,
            )
            room = max(0, limits.marks - rec.marks)

            def batch_at(chunk: str | None, offset: int) -> RecordingBatch:
                at: JSON = {"offset": offset, "seq": seq}
                if chunk is not None:
                    at["chunk"] = chunk
                return self._batch(summary, seq, data, raw, room, at, session.conv_id)

            if is_segment(rec.blob):
                # One appended segment (a blob store that appends, or a recording
                # begun by an earlier version): it goes on so.
                offset = await self.blobs.append(rec.blob, data)
                rec, duplicate = await self._index(rec_id, rec.blob, batch_at(None, offset))
                done = None
            else:
                item = Pending(data, seq, summary.first_ts, summary.last_ts, make=batch_at)
                done = self.tails.add(rec_id, rec.blob, item)
        if done is not None:
            # Acknowledged once its chunk is written and indexed (outside the lock:
            # more batches of the recording may join the tail meanwhile).
            # Shielded: a connection closing meanwhile must not cancel the seal's future.
            rec, duplicate = cast(tuple[Recording, bool], await asyncio.shield(done))
        self.counts["duplicates" if duplicate else "batches"] += 1
        if not duplicate:
            self.counts["events"] += summary.events
            self.counts["raw_bytes"] += len(raw)
            self.counts["stored_bytes"] += len(data)
        return {"t": "recorded", "session": rec_id, "seq": seq, "duplicate": duplicate}

    def _signals(self, rec_id: str, summary: Summary, found: list[RecordingMark] | None) -> None:
        """Find the batch's signals (``signals.detect``); its marks become what the
        index keeps: pages, clicks, gaps and the signals."""
        watch = self._watches.get(rec_id)
        if watch is None:
            watch = self._watches[rec_id] = Watch()
            while len(self._watches) > self.CACHE:
                self._watches.popitem(last=False)
        else:
            self._watches.move_to_end(rec_id)
        read = [m for m in summary.marks if m.kind in SIGNAL_INPUTS]
        got = detect(watch, read, summary.changes, summary.inputs_at)
        if got:
            self.counts.update(f"signal_{m.kind}" for m in got)
            if found is not None:
                found.extend(got)
        kept = [m for m in summary.marks if m.kind in KEPT]
        summary.marks = sorted(kept + got, key=lambda m: m.ts)

    def _lock(self, rec_id: str) -> asyncio.Lock:
        return self._locks[hash(rec_id) % len(self._locks)]

    @staticmethod
    def _batch(
        summary: Summary,
        seq: int,
        data: bytes,
        raw: bytes,
        room: int,
        at: JSON,
        conv_id: ConversationId | None,
    ) -> RecordingBatch:
        """The index entry of a stored batch; ``at`` is where its frame is."""
        marks = [
            RecordingMark("snapshot", ts, {**at, "index": index}) for index, ts in summary.snapshots
        ]
        for mark in summary.marks:
            if mark.kind in ("page", "gap") or room > 0:
                marks.append(mark)
                room -= mark.kind not in ("page", "gap")
        return RecordingBatch(
            seq=seq,
            first_ts=summary.first_ts,
            last_ts=summary.last_ts,
            events=summary.events,
            bytes=len(data),
            raw_bytes=len(raw),
            clicks=summary.clicks,
            inputs=summary.inputs,
            marks=tuple(sorted(marks, key=lambda m: m.ts)),
            conv_id=conv_id,
        )

    async def _index(
        self, rec_id: str, blob: str, batch: RecordingBatch, chunk: Chunk | None = None
    ) -> tuple[Recording, bool]:
        """Index a stored batch (its frame at ``blob``: a chunk or a segment)."""
        try:
            rec, duplicate = await self.index.add_recording_batch(rec_id, batch, chunk)
        except NotFound:
            # Deleted (retention, or the visitor's data on request) meanwhile:
            # take back what was just written; the recorder starts afresh.
            self._recs.pop(rec_id, None)
            await drop_chunk(self.blobs, blob)
            raise FrameError(
                ErrorCode.NOT_FOUND, "recording was deleted, start a new one"
            ) from None
        self._remember(rec)
        return rec, duplicate

    async def _sealed(self, rec_id: str, chunk: Chunk, items: list[Pending]) -> None:
        """A chunk is written: index its batches in the order they came, each
        write with the chunk's row (one write per batch, as before chunks)."""
        async with self._lock(rec_id):
            for item in items:
                batch = item.make(chunk.key, item.offset)
                try:
                    result = await self._index(rec_id, chunk.key, batch, chunk)
                except FrameError as exc:
                    for rest in items:
                        if not rest.done.done():
                            rest.done.set_exception(exc)
                    return
                if not item.done.done():
                    item.done.set_result(result)

    async def close(self) -> None:
        """Seal every tail (a stop loses no acknowledged batch: none is acknowledged before)."""
        await self.tails.flush()

    async def _recording(
        self, session: Session, rec_id: str, last_ts: float, now_ms: Any, snapshot: bool
    ) -> Recording:
        """The recording's row (claimed for this visitor if new), if it is theirs.

        Only a batch with a full snapshot starts a recording: a batch for an
        unknown id without one (the recording was deleted meanwhile, or its
        start was lost) could never be replayed, so it gets ``205`` and the
        recorder starts a new recording with a new snapshot.
        """
        assert session.site is not None and session.visitor_id is not None
        rec = self._recs.get(rec_id) or await self.index.get_recording(rec_id)
        if rec is None and not snapshot:
            self.counts["refused_unknown"] += 1
            raise FrameError(ErrorCode.NOT_FOUND, "no such recording: start one with a snapshot")
        if rec is None:
            clock = time.time()
            sent = now_ms if isinstance(now_ms, int | float) and math.isfinite(now_ms) else last_ts
            rec = await self.index.claim_recording(
                rec_id,
                session.site.id,
                session.visitor_id,
                (chunk_folder if self.chunked else segment_key)(session.site.id, rec_id, clock),
                clock * 1000.0 - float(sent),
            )
        if rec.site_id != session.site.id or rec.visitor_id != session.visitor_id:
            raise self._refuse(
                session, "not_yours", ErrorCode.FORBIDDEN, "recording belongs to another visitor"
            )
        self._remember(rec)
        return rec

    def _check_caps(
        self, session: Session, rec: Recording, events: int, first: float, last: float
    ) -> None:
        limits = self.limits
        why = None
        if rec.events + events > limits.session_events:
            why = f"more than {limits.session_events} events"
        elif rec.bytes >= limits.session_bytes:
            why = f"more than {limits.session_bytes} bytes"
        elif rec.events:
            span = max(rec.last_ts, last) - min(rec.first_ts, first)
            if span > limits.session_seconds * 1000.0:
                why = f"longer than {limits.session_seconds:.0f} s"
        elif last - first > limits.session_seconds * 1000.0:
            why = f"longer than {limits.session_seconds:.0f} s"
        if why is not None:
            raise self._refuse(session, "full", ErrorCode.CONFLICT, f"recording full: {why}")

    def _remember(self, rec: Recording) -> None:
        self._recs[rec.id] = rec
        self._recs.move_to_end(rec.id)
        while len(self._recs) > self.CACHE:
            self._recs.popitem(last=False)

    def forget(self, rec_ids: list[str]) -> None:
        """Drop cached rows of deleted recordings."""
        for rec_id in rec_ids:
            self._recs.pop(rec_id, None)
            self._watches.pop(rec_id, None)

    # -- refusals ---------------------------------------------------------------

    def _refuse(self, session: Session, reason: str, code: ErrorCode, message: str) -> FrameError:
        """Count a refused batch (and the client's mistake) and build its error."""
        self.counts[f"refused_{reason}"] += 1
        session.conn.count_error()
        return FrameError(code, message)

    def _bad(self, session: Session, message: str) -> FrameError:
        return self._refuse(session, "malformed", ErrorCode.INVALID_FIELD, message)

    def stats(self) -> JSON:
        return {**self.counts, "partial_bytes": self._partial}

"""Recordings in immutable chunk objects (``recordings/chunks.py``), on a directory and on S3.

Real parts: a SQLite store in a temporary directory (and the index contract
on every store backend), the directory BlobStore or S3Blobs on SeaweedFS,
real sessions of the sans-I/O protocol.  Covers sealing by size and by time,
replay across chunks and from any chunk boundary, two processes receiving
one recording, stopping with batches in a tail, and recordings written by
earlier versions as one appended segment.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chatserver.blobs import BlobStore, DirectoryBlobs
from chatserver.blobs_s3 import S3Blobs, S3Settings
from chatserver.protocol.codec import Codec, Connection
from chatserver.protocol.frames import Limits
from chatserver.session import Session
from chatserver.store import Store
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import ClientKind, Recording, RecordingBatch, RecordingMark, SiteSettings
from recordings import RecordingLimits, Recordings, reader
from recordings import format as fmt
from recordings.chunks import Chunk, is_segment
from recordings.events import summarize
from recordings.index import RecordingIndex, open_index
from recordings.ingest import segment_key

from ..contracts.conftest import FACTORIES
from ..contracts.helpers import site_and_visitor
from ..s3_server import S3Server
from .test_recordings import T0, move, page_load, typed

pytestmark = pytest.mark.anyio


def batches(n: int) -> list[list[dict[str, Any]]]:
    """``n`` batches a second apart; every third begins a page (a full snapshot)."""
    out = []
    for i in range(n):
        ts = T0 + i * 1000
        head = page_load(ts, f"https://shop.example/p{i}") if i % 3 == 0 else [move(ts)]
        out.append([*head, move(ts + 100), typed(ts + 200)])
    return out


class Place:
    """A store, a blob store and one or more "processes" (``Recordings``) on them."""

    def __init__(self, store: SQLiteStore, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs
        self.processes: list[Recordings] = []

    def process(self, **limits: Any) -> Recordings:
        # Chunks on a directory too (where appends would be the default).
        proc = Recordings(self.store, self.blobs, RecordingLimits(**{"chunks": True, **limits}))
        self.processes.append(proc)
        return proc

    async def session(self, visitor_id: str | None = None) -> Session:
        if visitor_id is None:
            visitor_id = (await self.store.create_visitor(self.site.id)).id
        conn = Connection(Codec.JSON, Limits(), time.monotonic())
        conn.accept(ClientKind.VISITOR)
        session = Session(conn, 1 << 20)
        session.kind, session.site, session.visitor_id = ClientKind.VISITOR, self.site, visitor_id
        return session

    async def read(self, rec_id: str, **kw: Any) -> reader.Slice:
        index = open_index(self.store)
        rec = await index.get_recording(rec_id)
        assert rec is not None
        snaps = await index.recording_marks(rec_id, ["snapshot"])
        chunks = None if is_segment(rec.blob) else await index.recording_chunks(rec_id)
        return await reader.read(self.blobs, rec, snaps, chunks=chunks, **kw)

    async def start(self) -> Place:
        await self.store.start()
        self.site = await self.store.create_site("Shop", settings=SiteSettings(recording=True))
        return self


@pytest.fixture(params=["directory", "s3"])
async def place(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Place]:
    blobs: BlobStore
    if request.param == "directory":
        blobs = DirectoryBlobs(tmp_path / "blobs")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        blobs = S3Blobs(S3Settings(**server.settings(request.getfixturevalue("s3_prefix"))))
    p = await Place(SQLiteStore(tmp_path / "chat.db"), blobs).start()
    try:
        yield p
    finally:
        for proc in p.processes:
            await proc.close()
        await p.store.close()


async def send(proc: Recordings, session: Session, rec: str, seq: int, events: Any) -> Any:
    return await proc.ingest.store_batch(session, rec, seq, events, T0)


async def test_batches_in_one_window_share_a_chunk(place: Place) -> None:
    proc = place.process(seal_seconds=0.3)
    session = await place.session()
    sent = batches(4)
    # A recorder that sends without waiting for each reply: one tail, one object.
    replies = await asyncio.gather(
        *(send(proc, session, "rec_window", i, sent[i]) for i in range(4))
    )
    assert [r["seq"] for r in replies] == [0, 1, 2, 3]
    assert not any(r["duplicate"] for r in replies)
    chunks = await proc.index.recording_chunks("rec_window")
    assert len(chunks) == 1 and (chunks[0].first_seq, chunks[0].last_seq) == (0, 3)
    rec = await proc.index.get_recording("rec_window")
    assert rec is not None and rec.last_seq == 3 and rec.bytes == chunks[0].bytes
    assert await place.blobs.size(chunks[0].key) == chunks[0].bytes
    got = await place.read("rec_window")
    assert got.events == [e for b in sent for e in b] and not got.more


async def test_replay_across_chunks_and_from_any_boundary(place: Place) -> None:
    proc = place.process(seal_bytes=1)  # every batch its own chunk
    session = await place.session()
    sent = batches(7)
    for seq, events in enumerate(sent):
        assert (await send(proc, session, "rec_many", seq, events))["duplicate"] is False
    chunks = await proc.index.recording_chunks("rec_many")
    assert [(c.first_seq, c.last_seq) for c in chunks] == [(i, i) for i in range(7)]
    assert len({c.key for c in chunks}) == 7
    everything = [e for b in sent for e in b]
    assert (await place.read("rec_many")).events == everything
    # From the snapshot of page 3 (chunk 3) and of page 6 (the last chunk).
    got = await place.read("rec_many", start=T0 + 4500)
    assert got.start_ts == T0 + 3000 and got.events == [e for b in sent[3:] for e in b]
    got = await place.read("rec_many", start=T0 + 6001)
    assert got.events == sent[6]
    # Reading on from every chunk boundary, and a range that ends inside.
    for seq in range(7):
        got = await place.read("rec_many", after_seq=seq)
        assert got.events == [e for b in sent[seq + 1 :] for e in b]
    got = await place.read("rec_many", start=T0, to=T0 + 1500)
    assert got.events == sent[0] + sent[1] and got.more and got.last_seq == 1
    # Marks name the chunk their snapshot is in.
    snaps = await proc.index.recording_marks("rec_many", ["snapshot"])
    assert [m.data["chunk"] for m in snaps] == [chunks[i].key for i in (0, 3, 6)]


async def test_two_processes_receiving_one_recording_never_corrupt_it(place: Place) -> None:
    one, two = place.process(seal_seconds=0.05), place.process(seal_seconds=0.05)
    first = await place.session()
    again = await place.session(first.visitor_id)  # the same visitor, reconnected elsewhere
    sent = batches(6)
    for seq in (0, 1):
        await send(one, first, "rec_moved", seq, sent[seq])
    # The reply to seq 2 was lost: the recorder sends it again on the new socket
    # while the first process is still storing it; then goes on there.
    await asyncio.gather(
        send(one, first, "rec_moved", 2, sent[2]), send(two, again, "rec_moved", 2, sent[2])
    )
    for seq in (3, 4, 5):
        await send(two, again, "rec_moved", seq, sent[seq])
    await send(one, first, "rec_moved", 4, sent[4])  # a late copy on the old socket
    chunks = await one.index.recording_chunks("rec_moved")
    keys = [c.key for c in chunks]
    assert len(keys) == len(set(keys)) >= 6  # each write its own object
    for c in chunks:
        assert await place.blobs.size(c.key) == c.bytes
    got = await place.read("rec_moved")
    assert got.events == [e for b in sent for e in b]  # every batch once, in order
    rec = await one.index.get_recording("rec_moved")
    assert rec is not None and rec.last_seq == 5
    assert rec.events == sum(summarize(b).events for b in sent)


async def test_stopping_seals_every_tail(place: Place) -> None:
    proc = place.process(seal_seconds=30.0)
    session = await place.session()
    sent = batches(2)
    pending = [asyncio.ensure_future(send(proc, session, "rec_stop", i, sent[i])) for i in (0, 1)]
    await asyncio.sleep(0.05)
    assert not any(p.done() for p in pending)  # waiting in the tail
    assert proc.stats()["tails"] == 1
    await proc.close()
    replies = await asyncio.wait_for(asyncio.gather(*pending), 10)
    assert [r["seq"] for r in replies] == [0, 1]
    assert (await place.read("rec_stop")).events == sent[0] + sent[1]


async def test_a_sender_gone_meanwhile_spoils_nothing(place: Place) -> None:
    proc = place.process(seal_seconds=0.3)
    session = await place.session()
    sent = batches(3)
    first = asyncio.ensure_future(send(proc, session, "rec_cancel", 0, sent[0]))
    await asyncio.sleep(0.05)
    rest = [asyncio.ensure_future(send(proc, session, "rec_cancel", i, sent[i])) for i in (1, 2)]
    await asyncio.sleep(0.05)
    first.cancel()  # its connection closed while the batch waited in the tail
    replies = await asyncio.wait_for(asyncio.gather(*rest), 10)
    assert [r["seq"] for r in replies] == [1, 2]
    # the cancelled one was stored all the same (a resend is a duplicate)
    assert (await place.read("rec_cancel")).events == [e for b in sent for e in b]
    assert (await send(proc, session, "rec_cancel", 0, sent[0]))["duplicate"] is True


async def test_deleting_removes_every_chunk(place: Place) -> None:
    proc = place.process(seal_bytes=1)
    session = await place.session()
    for seq, events in enumerate(batches(3)):
        await send(proc, session, "rec_gone", seq, events)
    chunks = await proc.index.recording_chunks("rec_gone")
    assert len(chunks) == 3
    assert await proc.delete_visitor(session.visitor_id or "") == 1
    for c in chunks:
        assert await place.blobs.size(c.key) is None
    assert await proc.index.recording_chunks("rec_gone") == []


# -- recordings written by earlier versions ----------------------------------------


async def old_segment(store: SQLiteStore, blobs: BlobStore, site_id: str, visitor: str) -> str:
    """A recording exactly as earlier versions stored it: one appended segment,
    marks with offsets into it, no chunk rows."""
    index = open_index(store)
    key = segment_key(site_id, "rec_old_way", T0 / 1000)
    await index.claim_recording("rec_old_way", site_id, visitor, key, 0.0)
    for seq, events in enumerate(batches(4)):
        raw = json.dumps(events, separators=(",", ":")).encode()
        s = summarize(events)
        frame = fmt.encode_frame(
            raw,
            seq=seq,
            events=s.events,
            first_ts=s.first_ts,
            last_ts=s.last_ts,
            codec=fmt.Codec.ZSTD,
        )
        offset = await blobs.append(key, frame)
        marks = tuple(
            RecordingMark("snapshot", ts, {"offset": offset, "seq": seq, "index": i})
            for i, ts in s.snapshots
        )
        batch = RecordingBatch(
            seq, s.first_ts, s.last_ts, s.events, len(frame), len(raw), marks=marks
        )
        await index.add_recording_batch("rec_old_way", batch)
    return key


async def test_a_recording_written_the_old_way_replays_and_goes_on(tmp_path: Path) -> None:
    place = await Place(SQLiteStore(tmp_path / "chat.db"), DirectoryBlobs(tmp_path / "b")).start()
    try:
        session = await place.session()
        key = await old_segment(place.store, place.blobs, place.site.id, session.visitor_id or "")
        assert key.endswith(".seg") and (tmp_path / "b" / key).is_file()
        sent = batches(5)
        assert (await place.read("rec_old_way")).events == [e for b in sent[:4] for e in b]
        got = await place.read("rec_old_way", start=T0 + 3500)
        assert got.events == sent[3] and got.start_ts == T0 + 3000
        # The same visitor's recorder goes on: appended to the same segment.
        proc = place.process()
        await send(proc, session, "rec_old_way", 4, sent[4])
        assert await proc.index.recording_chunks("rec_old_way") == []
        assert (await place.read("rec_old_way", after_seq=3)).events == sent[4]
        assert (await place.read("rec_old_way")).events == [e for b in sent for e in b]
        # and retention deletes the segment
        assert await proc.delete_visitor(session.visitor_id or "") == 1
        assert not (tmp_path / "b" / key).exists()
    finally:
        for proc in place.processes:
            await proc.close()
        await place.store.close()


# -- the index's chunk rows, on every store backend ---------------------------------


@pytest.fixture(params=sorted(FACTORIES))
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    make: Callable[[Path, pytest.FixtureRequest], Store] = FACTORIES[request.param]
    store = make(tmp_path, request)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def test_index_keeps_chunks_in_seq_order(any_store: Store) -> None:
    store = any_store
    index: RecordingIndex = open_index(store)
    site, visitor = await site_and_visitor(store)
    await index.claim_recording("rec_idx", site.id, visitor.id, "rec/x/rec_idx", 0.0)
    late = Chunk("rec/x/rec_idx/0000000005-bb-0.chk", 5, 6, 100, T0 + 5, T0 + 6)
    early = Chunk("rec/x/rec_idx/0000000000-aa-0.chk", 0, 4, 200, T0, T0 + 4)
    twin = Chunk("rec/x/rec_idx/0000000005-aa-1.chk", 5, 5, 50, T0 + 5, T0 + 5)
    for chunk in (late, early, twin, late):  # the same chunk twice: kept once
        await index.add_recording_chunk("rec_idx", chunk)
    assert await index.recording_chunks("rec_idx") == [early, twin, late]
    assert await index.recording_chunks("rec_none") == []
    # A batch's write carries its chunk's row, also when the batch is a duplicate.
    batch = RecordingBatch(7, T0 + 7, T0 + 8, 2, 60, 90)
    next_one = Chunk("rec/x/rec_idx/0000000007-aa-2.chk", 7, 7, 60, T0 + 7, T0 + 8)
    again = Chunk("rec/x/rec_idx/0000000007-bb-1.chk", 7, 7, 60, T0 + 7, T0 + 8)
    rec, duplicate = await index.add_recording_batch("rec_idx", batch, next_one)
    assert not duplicate and rec.last_seq == 7
    rec, duplicate = await index.add_recording_batch("rec_idx", batch, again)
    assert duplicate and rec.last_seq == 7 and rec.events == 2
    assert await index.recording_chunks("rec_idx") == [early, twin, late, next_one, again]
    assert await index.delete_recordings(["rec_idx"]) == 1
    assert await index.recording_chunks("rec_idx") == []


def test_recording_row_type_unchanged() -> None:
    # The chunk folder lives in the row's ``blob`` (no new column): earlier rows stay valid.
    assert "blob" in Recording.__dataclass_fields__

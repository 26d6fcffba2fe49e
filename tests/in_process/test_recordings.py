"""Recordings: segment format, event checks, ingest, reading back, seeking, retention.

Real parts throughout: a SQLite store in a temporary directory, the
directory BlobStore, real sessions of the sans-I/O protocol.  The wire side
(the ``rec`` frame through a server) is in ``test_recordings_protocol.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatserver.blobs import DirectoryBlobs
from chatserver.errors import ConnectionClosing, ErrorCode, FrameError
from chatserver.protocol.codec import Codec, Connection
from chatserver.protocol.frames import Limits
from chatserver.session import Session
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import ClientKind, Recording, RecordingMark, Site, SiteSettings, Visitor
from recordings import RecordingLimits, Recordings, reader
from recordings import format as fmt
from recordings.chunks import is_segment
from recordings.events import BadEvents, Summary, summarize, summarize_json

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000_000.0  # ms


# -- rrweb-shaped events -----------------------------------------------------------


def meta(ts: float, href: str = "https://shop.example/") -> dict[str, Any]:
    return {"type": 4, "data": {"href": href, "width": 1280, "height": 800}, "timestamp": ts}


def snapshot(ts: float, text: str = "Welcome") -> dict[str, Any]:
    node = {"type": 0, "childNodes": [{"type": 3, "textContent": text, "id": 2}], "id": 1}
    return {
        "type": 2,
        "data": {"node": node, "initialOffset": {"top": 0, "left": 0}},
        "timestamp": ts,
    }


def move(ts: float) -> dict[str, Any]:
    return {
        "type": 3,
        "data": {"source": 1, "positions": [{"x": 10, "y": 20, "id": 5, "timeOffset": 0}]},
        "timestamp": ts,
    }


def typed(ts: float) -> dict[str, Any]:
    return {
        "type": 3,
        "data": {"source": 5, "text": "****", "isChecked": False, "id": 9},
        "timestamp": ts,
    }


def custom(ts: float, tag: str, **payload: Any) -> dict[str, Any]:
    return {"type": 5, "data": {"tag": tag, "payload": payload}, "timestamp": ts}


def page_load(ts: float, url: str) -> list[dict[str, Any]]:
    return [meta(ts, url), snapshot(ts + 1), custom(ts + 2, "page", url=url, title="T")]


# -- segment format ----------------------------------------------------------------


@pytest.mark.parametrize("codec", list(fmt.Codec))
def test_frames_round_trip(codec: fmt.Codec) -> None:
    raws = [json.dumps([move(T0 + i)]).encode() * (i + 1) for i in range(3)]
    data = b"".join(
        fmt.encode_frame(r, seq=i, events=1, first_ts=T0 + i, last_ts=T0 + i, codec=codec)
        for i, r in enumerate(raws)
    )
    found = list(fmt.scan(data))
    assert [f.seq for f in found] == [0, 1, 2]
    assert [fmt.payload(data, f) for f in found] == raws
    assert found[0].offset == 0 and found[1].offset == found[0].end
    assert found[2].first_ts == T0 + 2 and found[2].codec is codec


def test_frames_of_earlier_zstd_levels_read_back() -> None:
    """Segments written before the level changed (3, and any other) stay readable:
    the level is not part of the format."""
    import zlib

    import zstandard

    raw = json.dumps([*page_load(T0, "https://shop.example/"), move(T0 + 5)]).encode()
    for level in (1, 3, 9):
        payload = zstandard.ZstdCompressor(level=level).compress(raw)
        header = fmt.HEADER.pack(
            fmt.MAGIC, int(fmt.Codec.ZSTD), 0, len(payload), len(raw), zlib.crc32(payload),
            3, 7, T0, T0 + 5,
        )  # fmt: skip
        data = header + payload
        (found,) = fmt.scan(data)
        assert found.seq == 7 and fmt.payload(data, found) == raw


def test_scan_skips_damage_and_stops_at_a_torn_tail() -> None:
    def frame(seq: int) -> bytes:
        raw = json.dumps([move(T0 + seq)]).encode()
        return fmt.encode_frame(
            raw, seq=seq, events=1, first_ts=T0, last_ts=T0, codec=fmt.Codec.ZSTD
        )

    torn = frame(1)[:30]  # an append cut short by a crash, then later appends
    damaged = bytearray(frame(3))
    damaged[-1] ^= 0xFF  # payload no longer matches its CRC
    data = frame(0) + torn + frame(2) + bytes(damaged) + frame(4) + frame(5)[:-3]
    assert [f.seq for f in fmt.scan(data)] == [0, 2, 4]
    with pytest.raises(ValueError):
        fmt.decompress(fmt.Codec.ZSTD, b"not zstd", 10)


def test_summarize_indexes_pages_clicks_inputs_snapshots() -> None:
    events = [
        *page_load(T0, "https://shop.example/a"),
        typed(T0 + 10),
        custom(T0 + 20, "click", selector="#buy", text="Buy now"),
        custom(T0 + 30, "gap", dropped=12),
        move(T0 + 40),
        snapshot(T0 + 50),  # a checkout without a Meta before it
    ]
    s = summarize(events)
    assert (s.events, s.first_ts, s.last_ts) == (8, T0, T0 + 50)
    assert (s.inputs, s.clicks) == (1, 1)
    assert s.snapshots == [(0, T0), (7, T0 + 50)]
    assert [(m.kind, m.data) for m in s.marks] == [
        ("page", {"url": "https://shop.example/a", "title": "T"}),
        ("click", {"selector": "#buy", "text": "Buy now"}),
        ("gap", {"dropped": 12}),
    ]


@pytest.mark.parametrize(
    "event",
    [
        "not a map",
        {"type": 9, "timestamp": T0},
        {"type": True, "timestamp": T0},
        {"type": 3},
        {"type": 3, "timestamp": "soon"},
        {"type": 3, "timestamp": float("nan")},
        {"type": 3, "timestamp": -1},
    ],
)
def test_summarize_refuses_what_is_not_an_event(event: Any) -> None:
    with pytest.raises(BadEvents):
        summarize([move(T0), event])


def _full_reading(raw: bytes) -> Summary | str:
    """What the plain reading makes of a batch's JSON: ``json`` (NaN and
    Infinity refused) and ``summarize``; a refusal as ``"refused"``."""

    def constant(name: str) -> Any:
        raise ValueError(name)

    try:
        events = json.loads(raw, parse_constant=constant)
        if not isinstance(events, list):
            return "refused"
        return summarize(events)
    except (ValueError, RecursionError):  # BadEvents is a ValueError
        return "refused"


def _fast_reading(raw: bytes) -> Summary | str:
    try:
        return summarize_json(raw)
    except BadEvents:
        return "refused"


FIXTURE = Path(__file__).resolve().parents[2] / "bench" / "fixtures" / "demo_session.json.gz"
EV = '{"type":3,"timestamp":5,"data":{"source":1}}'


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "{}",
        "[1]",
        '"[]"',
        f"[{EV}] x",
        f"[{EV},]",
        '[{"type":3,"timestamp":NaN}]',
        '[{"type":3,"timestamp":5,"data":{"x":Infinity}}]',
        '[{"type":3,"timestamp":5,"data":{"x":-Infinity}}]',
        '[{"type":3,"timestamp":1e400}]',
        '[{"type":3,"timestamp":-1}]',
        '[{"type":3}]',
        '[{"type":1.0,"timestamp":5}]',
        '[{"type":true,"timestamp":5}]',
        '[{"type":7,"timestamp":5}]',
        '[{"type":9,"type":3,"timestamp":5}]',  # the last of a repeated key counts
        '[{"type":3,"type":9,"timestamp":5}]',
        '[{"type":3,"timestamp":5,"data":null}]',
        '[{"type":3,"timestamp":5,"data":[1,2]}]',
        '[{"type":5,"timestamp":5,"data":"click"}]',
        '[{"type":3,"timestamp":5,"data":{"source":5.0}}]',
        '[{"type":3,"timestamp":5,"data":{"source":"5"}}]',
        '[{"type":3,"timestamp":5,"data":{"source":5,"source":1}}]',
        '[{"type":5,"timestamp":5,"data":{"tag":"click","payload":"x"}}]',
        '[{"type":5,"timestamp":5,"data":{"tag":"click","payload":{"text":"\\ud83d"}}}]',
        '[{"type":5,"timestamp":5,"data":{"tag":"page","payload":{"url":"\\u00e9","title":7}}}]',
        '[{"type":5,"timestamp":5,"data":{"tag":"gap","payload":{"dropped":true}}}]',
        '[{"type":3,"timestamp":5,"data":{"x":"\\x"}}]',
        '[{"type":3,"timestamp":5,"data":{"x":01}}]',
        '[{"type":3,"timestamp":5,"data":{"x":"tab\there"}}]',
        '[{"type":3,"timestamp":5,"data":' + "[" * 5000 + "]" * 5000 + "}]",
        '[{"type":3,"timestamp":5,"data":' + "[" * 50 + "]" * 50 + "}]",
        '[{"type":4,"timestamp":5,"data":{}},{"type":2,"timestamp":6,"data":{"node":{}}}]',
        json.dumps(
            [
                *page_load(T0, "https://shop.example/é"),
                typed(T0 + 10),
                custom(T0 + 20, "click", selector="#buy", text="Buy ☃"),
                custom(T0 + 30, "gap", dropped=12),
                snapshot(T0 + 50),
            ],
            ensure_ascii=False,
        ),
    ],
)
def test_fast_reading_agrees_with_the_full_reading(text: str) -> None:
    """``summarize_json`` accepts exactly what ``json.loads`` + ``summarize`` accept,
    with the same index; its fast path and its fallback both decide some of these."""
    raw = text.encode("utf-8")
    assert _fast_reading(raw) == _full_reading(raw)


def test_fast_reading_agrees_on_a_recorded_visit() -> None:
    import gzip

    batches = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    assert len(batches) > 20
    for batch in batches:
        raw = json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode()
        got = summarize_json(raw)
        assert got == summarize(batch)
        assert got.events == len(batch)


# -- ingest and reading back --------------------------------------------------------


class World:
    """A store, blobs, the feature, a site with recording on and sessions of its visitors."""

    def __init__(self, tmp: Path, limits: RecordingLimits | None = None) -> None:
        self.store = SQLiteStore(tmp / "chat.db")
        self.blobs = DirectoryBlobs(tmp / "blobs")
        self.recordings = Recordings(self.store, self.blobs, limits)
        self.site: Site
        self.visitors: list[Visitor] = []

    async def start(self) -> None:
        await self.store.start()
        self.site = await self.store.create_site("Shop", settings=SiteSettings(recording=True))

    async def session(self) -> Session:
        visitor = await self.store.create_visitor(self.site.id)
        self.visitors.append(visitor)
        conn = Connection(Codec.JSON, Limits(), time.monotonic())
        conn.accept(ClientKind.VISITOR)
        session = Session(conn, 1 << 20)
        session.kind, session.site, session.visitor_id = ClientKind.VISITOR, self.site, visitor.id
        return session

    async def send(self, session: Session, rec: str, seq: int, events: list[Any]) -> dict[str, Any]:
        return await self.recordings.ingest.store_batch(session, rec, seq, events, T0)

    async def keys(self, rec: Recording) -> list[str]:
        """The objects of a recording: its chunks in seq order, or its one segment
        (a directory appends in place unless chunks are asked for)."""
        if is_segment(rec.blob):
            return [rec.blob]
        return [c.key for c in await self.recordings.index.recording_chunks(rec.id)]

    async def stored(self, rec: Recording) -> bytes:
        """Every byte stored for a recording, its chunks one after the other."""
        return b"".join([await self.blobs.read(k) for k in await self.keys(rec)])

    async def stored_size(self, keys: list[str]) -> int | None:
        """The bytes of ``keys`` together; ``None`` when none of them is there."""
        sizes = [await self.blobs.size(k) for k in keys]
        found = [s for s in sizes if s is not None]
        return sum(found) if found else None

    async def read(self, rec: Recording, snaps: list[RecordingMark], **kw: Any) -> reader.Slice:
        chunks = (
            None if is_segment(rec.blob) else await self.recordings.index.recording_chunks(rec.id)
        )
        return await reader.read(self.blobs, rec, snaps, chunks=chunks, **kw)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path)
    await w.start()
    try:
        yield w
    finally:
        await w.store.close()


def visit() -> list[list[dict[str, Any]]]:
    """Three batches: page a (snapshot), activity, page b (snapshot) and a click."""
    return [
        [*page_load(T0, "https://shop.example/a"), move(T0 + 100), typed(T0 + 200)],
        [move(T0 + 1000 + i) for i in range(50)],
        [
            *page_load(T0 + 5000, "https://shop.example/b"),
            custom(T0 + 5100, "click", selector="a.next", text="Next"),
            move(T0 + 5200),
        ],
        [move(T0 + 9000), typed(T0 + 9100)],
    ]


async def test_batch_text_the_fast_reading_refuses_is_stored_as_sent(world: World) -> None:
    """A click text cut inside an emoji is a lone surrogate's escape in the
    browser's JSON: ``msgspec`` refuses it, ``json`` accepts it; stored as sent."""
    session = await world.session()
    text = json.dumps(
        [*page_load(T0, "https://shop.example/"), custom(T0 + 5, "click", text="Buy \ud83d")]
    )
    assert "\\ud83d" in text
    raw = text.encode()
    reply = await world.recordings.ingest.store_batch(session, "rec_cut_emoji", 0, None, T0, raw)
    assert reply["t"] == "recorded" and not reply["duplicate"]
    rec = await world.recordings.index.get_recording("rec_cut_emoji")
    assert rec is not None and (rec.events, rec.clicks, rec.raw_bytes) == (4, 1, len(raw))
    data = await world.stored(rec)
    (frame,) = fmt.scan(data)
    assert fmt.payload(data, frame) == raw
    snaps = await world.recordings.index.recording_marks(rec.id, ["snapshot"])
    assert (await world.read(rec, snaps)).events == json.loads(text)


async def test_what_is_written_reads_back_identical(world: World) -> None:
    session = await world.session()
    batches = visit()
    for seq, events in enumerate(batches):
        reply = await world.send(session, "rec_one_visit", seq, events)
        assert reply == {
            "t": "recorded",
            "session": "rec_one_visit",
            "seq": seq,
            "duplicate": False,
        }
    rec = await world.recordings.index.get_recording("rec_one_visit")
    assert rec is not None
    everything = [e for b in batches for e in b]
    assert rec.events == len(everything) and rec.last_seq == 3
    assert (rec.pages, rec.clicks, rec.inputs) == (2, 1, 2)
    assert rec.first_ts == T0 and rec.last_ts == T0 + 9100
    assert rec.raw_bytes == sum(len(json.dumps(b, separators=(",", ":")).encode()) for b in batches)
    assert rec.bytes == await world.stored_size(await world.keys(rec))
    snaps = await world.recordings.index.recording_marks(rec.id, ["snapshot"])
    got = await world.read(rec, snaps)
    assert got.events == everything and got.last_seq == 3 and not got.more
    # and the segment holds exactly those frames, in order
    data = await world.stored(rec)
    frames = list(fmt.scan(data))
    assert [json.loads(fmt.payload(data, f)) for f in frames] == batches


async def test_seeking_lands_on_the_nearest_full_snapshot(world: World) -> None:
    session = await world.session()
    batches = visit()
    for seq, events in enumerate(batches):
        await world.send(session, "rec_seeking", seq, events)
    rec = await world.recordings.index.get_recording("rec_seeking")
    assert rec is not None
    snaps = await world.recordings.index.recording_marks(rec.id, ["snapshot"])
    assert [(m.ts, m.data["seq"], m.data["index"]) for m in snaps] == [
        (T0, 0, 0),
        (T0 + 5000, 2, 0),
    ]
    # inside page b: starts at b's Meta + snapshot
    got = await world.read(rec, snaps, start=T0 + 7000)
    assert got.events[:2] == batches[2][:2] and got.start_ts == T0 + 5000
    assert got.events == batches[2] + batches[3]
    # inside page a, before b: from a's snapshot, up to the frame that starts after `to`
    got = await world.read(rec, snaps, start=T0 + 1500, to=T0 + 2000)
    assert got.events == batches[0] + batches[1] and got.more and got.last_seq == 1
    # exactly at b's snapshot, and before every snapshot
    assert (await world.read(rec, snaps, start=T0 + 5000)).start_ts == T0 + 5000
    assert (await world.read(rec, snaps, start=T0 - 50)).start_ts == T0
    # reading on lazily from a seq
    got = await world.read(rec, snaps, after_seq=1, to=T0 + 6000)
    assert got.events == batches[2] and got.more and got.last_seq == 2
    got = await world.read(rec, snaps, after_seq=got.last_seq)
    assert got.events == batches[3] and not got.more
    # a snapshot in the middle of a batch: the read skips the events before it
    await world.send(
        session,
        "rec_seeking",
        4,
        [move(T0 + 9500), *page_load(T0 + 9600, "https://shop.example/c")],
    )
    rec = await world.recordings.index.get_recording("rec_seeking")
    assert rec is not None
    snaps = await world.recordings.index.recording_marks(rec.id, ["snapshot"])
    got = await world.read(rec, snaps, start=T0 + 9700)
    assert got.events[0] == meta(T0 + 9600, "https://shop.example/c") and len(got.events) == 3


async def test_a_resent_batch_is_stored_once(world: World) -> None:
    session = await world.session()
    first = visit()[0]
    await world.send(session, "rec_resend", 0, first)
    rec = await world.recordings.index.get_recording("rec_resend")
    assert rec is not None
    size = await world.stored_size(await world.keys(rec))
    again = await world.send(session, "rec_resend", 0, first)
    assert again["duplicate"] is True
    # a new connection of the same visitor (after a reconnect) too
    fresh = await world.session()
    fresh.visitor_id = session.visitor_id
    assert (await world.send(fresh, "rec_resend", 0, first))["duplicate"] is True
    assert await world.stored_size(await world.keys(rec)) == size
    assert (await world.recordings.index.get_recording("rec_resend")) == rec


async def test_a_recording_is_its_visitors_only(world: World) -> None:
    owner, other = await world.session(), await world.session()
    await world.send(owner, "rec_owned_1", 0, visit()[0])
    with pytest.raises(FrameError) as err:
        await world.send(other, "rec_owned_1", 1, visit()[1])
    assert err.value.code is ErrorCode.FORBIDDEN
    rec = await world.recordings.index.get_recording("rec_owned_1")
    assert rec is not None and rec.events == len(visit()[0])
    assert world.recordings.stats()["refused_not_yours"] == 1
    assert other.conn.errors == 1


async def test_caps(tmp_path: Path) -> None:
    limits = RecordingLimits(batch_events=10, session_events=25, session_seconds=60.0, marks=2)
    w = World(tmp_path, limits)
    await w.start()
    try:
        session = await w.session()
        with pytest.raises(FrameError) as err:
            await w.send(session, "rec_caps_1", 0, [move(T0 + i) for i in range(11)])
        assert err.value.code is ErrorCode.INVALID_FIELD
        with pytest.raises(FrameError) as err:
            await w.send(session, "rec_caps_1", 0, [])
        assert err.value.code is ErrorCode.INVALID_FIELD
        clicks = [custom(T0 + i, "click", selector=f"#b{i}", text="") for i in range(3, 10)]
        await w.send(session, "rec_caps_1", 0, [*page_load(T0, "https://shop/"), *clicks])
        await w.send(session, "rec_caps_1", 1, [move(T0 + 20 + i) for i in range(10)])
        with pytest.raises(FrameError) as err:  # 20 + 10 > 25 events
            await w.send(session, "rec_caps_1", 2, [move(T0 + 40 + i) for i in range(10)])
        assert err.value.code is ErrorCode.CONFLICT
        with pytest.raises(FrameError) as err:  # 61 s after the first event
            await w.send(session, "rec_caps_1", 2, [move(T0 + 61_000)])
        assert err.value.code is ErrorCode.CONFLICT
        rec = await w.recordings.index.get_recording("rec_caps_1")
        # click marks are capped (snapshot and page marks are not), the count is not
        assert rec is not None and rec.clicks == 7 and rec.marks == 4
        with pytest.raises(FrameError) as err:  # one batch longer than the session may be
            await w.send(session, "rec_caps_2", 0, [*page_load(T0, "u"), move(T0 + 61_000)])
        assert err.value.code is ErrorCode.CONFLICT
        with pytest.raises(FrameError):
            await w.send(session, "rec_caps_3", 0, [move(T0), {"type": "x"}])
        assert w.recordings.stats()["refused_malformed"] == 3
        # the connection's error budget counts refused batches
        for _ in range(60):
            try:
                await w.send(session, "rec_caps_3", 0, [])
            except FrameError:
                pass
            except ConnectionClosing:
                break
        else:
            raise AssertionError("refused batches never closed the connection")
    finally:
        await w.store.close()


async def test_retention_deletes_index_and_blobs(world: World) -> None:
    session = await world.session()
    month = 40 * 86400 * 1000.0
    await world.send(session, "rec_retain_old", 0, visit()[0])
    # the same recorder clock, 40 days later
    await world.send(session, "rec_retain_new", 0, page_load(T0 + month, "https://shop.example/"))
    old = await world.recordings.index.get_recording("rec_retain_old")
    new = await world.recordings.index.get_recording("rec_retain_new")
    assert old is not None and new is not None
    old_keys, new_keys = await world.keys(old), await world.keys(new)
    days = world.site.settings.recording_retention_days
    assert days == 30
    now = old.ended + days * 86400 + 1
    assert await world.recordings.purge(now=now) == 1
    assert await world.recordings.index.get_recording("rec_retain_old") is None
    assert old_keys and await world.stored_size(old_keys) is None
    assert await world.recordings.index.recording_marks(old.id) == []
    assert await world.recordings.index.get_recording("rec_retain_new") == new
    assert await world.stored_size(new_keys) == new.bytes
    # a site that keeps recordings forever (0 days) is left alone
    import dataclasses

    forever = dataclasses.replace(
        world.site, settings=SiteSettings(recording=True, recording_retention_days=0)
    )
    await world.store.save_site(forever)
    assert await world.recordings.purge(now=now + 1000 * 86400) == 0
    assert await world.recordings.index.get_recording("rec_retain_new") == new


async def test_delete_visitor(world: World) -> None:
    alice, bob = await world.session(), await world.session()
    for i in range(2):
        await world.send(alice, f"rec_alice_{i}", 0, visit()[0])
    await world.send(bob, "rec_bob_0", 0, visit()[0])
    alice_recs = await world.recordings.index.visitor_recordings(alice.visitor_id or "")
    alice_keys = [await world.keys(rec) for rec in alice_recs]
    assert await world.recordings.delete_visitor(alice.visitor_id or "") == 2
    for rec, keys in zip(alice_recs, alice_keys, strict=True):
        assert await world.recordings.index.get_recording(rec.id) is None
        assert keys and await world.stored_size(keys) is None
    bob_rec = await world.recordings.index.get_recording("rec_bob_0")
    assert bob_rec is not None
    assert await world.stored_size(await world.keys(bob_rec)) == bob_rec.bytes
    # the deleted visitor's recorder keeps sending on its old session: refused,
    # nothing is left behind, and a new session id works
    with pytest.raises(FrameError) as err:
        await world.send(alice, "rec_alice_0", 1, visit()[1])
    assert err.value.code is ErrorCode.NOT_FOUND
    assert await world.stored_size(alice_keys[0]) is None
    assert await world.blobs.delete_prefix(alice_recs[0].blob) == 0  # no chunk left behind
    await world.send(alice, "rec_alice_2", 0, visit()[0])


async def test_values_json_cannot_carry_are_refused(world: World) -> None:
    """NaN and Infinity (which Python's JSON reads) would break every replay."""
    session = await world.session()
    events = [
        *page_load(T0, "https://shop.example/"),
        {**move(T0 + 5), "data": {"x": float("nan")}},
    ]
    with pytest.raises(FrameError) as err:
        await world.send(session, "rec_nan_1", 0, events)
    assert err.value.code is ErrorCode.INVALID_FIELD
    text = (
        json.dumps(page_load(T0, "u"))[:-1]
        + ', {"type": 3, "data": {"x": Infinity}, "timestamp": 1}]'
    )
    with pytest.raises(FrameError):
        await world.recordings.ingest.store_batch(session, "rec_nan_2", 0, None, T0, text.encode())
    assert await world.recordings.index.get_recording("rec_nan_1") is None
    assert await world.recordings.index.get_recording("rec_nan_2") is None
    # a JSON frame's "\ud800" escape makes a text that is not Unicode: refused
    with pytest.raises(FrameError) as err:
        world.recordings.ingest._utf8(session, '[{"type":3,"timestamp":1,"data":"\ud800"}]')
    assert err.value.code is ErrorCode.INVALID_FIELD

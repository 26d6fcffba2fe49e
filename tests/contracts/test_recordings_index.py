"""The recordings index's contract (``recordings.index.RecordingIndex``), for every backend.

The index is kept beside the core Store, on its engine: every test runs once
per backend of the Store contract tests (``tests/contracts/conftest.py``'s
``FACTORIES``), with a real store and the index ``open_index`` gives for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chatserver.errors import NotFound, StoreError
from chatserver.store import Store
from chatserver.store.postgres import PostgresStore
from chatserver.store_redis import RedisStore
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import (
    RecordingBatch,
    RecordingMark,
)
from recordings.index import (
    PostgresRecordingIndex,
    RecordingIndex,
    RedisRecordingIndex,
    SQLiteRecordingIndex,
    open_index,
)

from .conftest import FACTORIES
from .helpers import new_conv, site_and_visitor


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=sorted(FACTORIES))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Build a new (unstarted) store on this test's storage."""
    factory = FACTORIES[request.param]
    return lambda: factory(tmp_path, request)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    s = make_store()
    await s.start()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def index(store: Store) -> RecordingIndex:
    return open_index(store)


pytestmark = pytest.mark.anyio


def rec_batch(seq: int, t0: float, **kw: Any) -> RecordingBatch:
    """A batch of 10 events from ``t0`` ms to ``t0 + 900`` ms."""
    fields: dict[str, Any] = {
        "seq": seq,
        "first_ts": t0,
        "last_ts": t0 + 900,
        "events": 10,
        "bytes": 500,
        "raw_bytes": 4000,
        **kw,
    }
    return RecordingBatch(**fields)


async def test_claim_recording_creates_once(store: Store, index: RecordingIndex) -> None:
    site, visitor = await site_and_visitor(store)
    other = await store.create_visitor(site.id)
    claims = await asyncio.gather(
        index.claim_recording("r_abc12345", site.id, visitor.id, "rec/x.seg", 250.0),
        index.claim_recording("r_abc12345", site.id, other.id, "rec/y.seg", 0.0),
    )
    assert claims[0] == claims[1]
    rec = claims[0]
    assert rec.visitor_id in (visitor.id, other.id) and rec.site_id == site.id
    assert (rec.last_seq, rec.events, rec.marks) == (-1, 0, 0)
    assert await index.get_recording("r_abc12345") == rec
    assert await index.get_recording("r_nothing") is None
    # an existing row comes back as it is, whoever asks
    again = await index.claim_recording("r_abc12345", site.id, other.id, "rec/z.seg", 1.0)
    assert again == rec


async def test_recording_batches_apply_once_in_seq_order(
    store: Store, index: RecordingIndex
) -> None:
    site, visitor = await site_and_visitor(store)
    await index.claim_recording("r_1", site.id, visitor.id, "rec/1.seg", 5000.0)
    page = RecordingMark("page", 1000.0, {"url": "https://shop/a", "title": "A"})
    click = RecordingMark("click", 1500.0, {"selector": "#buy", "text": "Buy"})
    snap = RecordingMark("snapshot", 1000.0, {"offset": 0, "seq": 0, "index": 0})
    first = rec_batch(0, 1000.0, clicks=1, inputs=2, marks=(snap, page, click))
    rec, dup = await index.add_recording_batch("r_1", first)
    assert not dup
    assert (rec.last_seq, rec.events, rec.bytes, rec.raw_bytes) == (0, 10, 500, 4000)
    assert (rec.clicks, rec.inputs, rec.pages, rec.marks) == (1, 2, 1, 3)
    assert (rec.first_ts, rec.last_ts) == (1000.0, 1900.0)
    assert rec.started == pytest.approx(6.0) and rec.ended == pytest.approx(6.9)
    # a resent batch changes nothing
    again, dup = await index.add_recording_batch("r_1", first)
    assert dup and again == rec
    conv = await new_conv(store)
    page2 = RecordingMark("page", 4000.0, {"url": "https://shop/b?x=1", "title": "B"})
    rec, dup = await index.add_recording_batch(
        "r_1", rec_batch(3, 3000.0, marks=(page2,), conv_id=conv.id)
    )
    assert not dup and rec.last_seq == 3 and rec.events == 20 and rec.pages == 2
    assert rec.conv_id == conv.id and rec.duration == pytest.approx(2.9)
    _, dup = await index.add_recording_batch("r_1", rec_batch(2, 2000.0))
    assert dup  # below last_seq: a late copy of something already dropped or stored
    assert await index.get_recording("r_1") == rec
    assert await index.recording_marks("r_1") == [snap, page, click, page2]
    assert await index.recording_marks("r_1", ["page"]) == [page, page2]
    assert await index.recording_marks("r_1", []) == []
    with pytest.raises(NotFound):
        await index.add_recording_batch("r_missing", rec_batch(0, 0.0))


async def test_batches_of_many_recordings_at_once(store: Store, index: RecordingIndex) -> None:
    """Batches of many recordings indexed at the same moment (one blob group's,
    which SQLite commits in one transaction) each apply once, and a recording
    that is gone fails its own batch only.  (One recording's batches
    come one at a time: ingest holds the recording's lock.)"""
    site, visitor = await site_and_visitor(store)
    ids = [f"r_many{i}" for i in range(5)]
    for rec_id in ids:
        await index.claim_recording(rec_id, site.id, visitor.id, f"rec/{rec_id}.seg", 1000.0)
    first = await asyncio.gather(
        *(index.add_recording_batch(rec_id, rec_batch(0, 2000.0)) for rec_id in ids),
        index.add_recording_batch("r_gone", rec_batch(0, 0.0)),
        return_exceptions=True,
    )
    assert isinstance(first[-1], NotFound)
    for rec, dup in first[:-1]:  # type: ignore[misc]
        assert not dup
        assert (rec.last_seq, rec.events, rec.first_ts, rec.last_ts) == (0, 10, 2000.0, 2900.0)
    # Then seq 1 of each but the first, which gets a copy of its seq 0: a duplicate.
    # Seq 1 began earlier (the browser's clock): first_ts and started move back.
    click = RecordingMark("click", 2500.0, {"selector": "#a", "text": "A"})
    second = await asyncio.gather(
        index.add_recording_batch(ids[0], rec_batch(0, 2000.0)),
        *(index.add_recording_batch(i, rec_batch(1, 1000.0, marks=(click,))) for i in ids[1:]),
    )
    assert second[0] == (first[0][0], True)  # type: ignore[index]
    for rec_id, (rec, dup) in zip(ids[1:], second[1:], strict=True):
        assert not dup
        assert (rec.last_seq, rec.events, rec.marks) == (1, 20, 1)
        assert (rec.first_ts, rec.last_ts) == (1000.0, 2900.0)
        assert rec.started == pytest.approx(2.0) and rec.ended == pytest.approx(3.9)
        assert await index.get_recording(rec_id) == rec
        assert await index.recording_marks(rec_id) == [click]


async def test_list_recordings_filters_and_pages(store: Store, index: RecordingIndex) -> None:
    site, visitor = await site_and_visitor(store)
    other_site, stranger = await site_and_visitor(store)
    second = await store.create_visitor(site.id)
    conv = await new_conv(store)
    made = []
    for i in range(7):
        who = second if i == 6 else visitor
        rec_id = f"r_list{i}"
        await index.claim_recording(rec_id, site.id, who.id, f"rec/{i}.seg", 0.0)
        url = "https://shop/checkout" if i % 2 else "https://shop/home"
        marks = (RecordingMark("page", i * 10_000.0, {"url": url, "title": ""}),)
        batch = rec_batch(
            0,
            i * 10_000.0,
            marks=marks,
            conv_id=conv.id if i == 3 else None,
            last_ts=i * 10_000.0 + i * 1000.0,
        )
        made.append((await index.add_recording_batch(rec_id, batch))[0])
    await index.claim_recording("r_empty", site.id, visitor.id, "rec/e.seg", 0.0)
    await index.claim_recording("r_foreign", other_site.id, stranger.id, "rec/f.seg", 0.0)
    await index.add_recording_batch("r_foreign", rec_batch(0, 1.0))

    async def ids(**kw: Any) -> list[str]:
        return [r.id for r in await index.list_recordings(site.id, **kw)]

    newest_first = [f"r_list{i}" for i in reversed(range(7))]
    assert await ids() == newest_first  # empty and foreign ones are left out
    assert await ids(limit=3) == newest_first[:3]
    page = await index.list_recordings(site.id, limit=3)
    cursor = (page[-1].started, page[-1].id)
    assert await ids(limit=3, before=cursor) == newest_first[3:6]
    assert await ids(since=20.0, until=50.0) == ["r_list4", "r_list3", "r_list2"]
    assert await ids(url="checkout") == ["r_list5", "r_list3", "r_list1"]
    assert await ids(url="nowhere") == []
    assert await ids(min_duration=4.0) == ["r_list6", "r_list5", "r_list4"]
    assert await ids(had_chat=True) == ["r_list3"]
    assert "r_list3" not in await ids(had_chat=False)
    assert await ids(visitor_id=second.id) == ["r_list6"]
    assert await ids(visitor_id=visitor.id, url="checkout", limit=2) == ["r_list5", "r_list3"]
    assert await ids(visitor_id=stranger.id) == []
    assert await index.list_recordings(site.id, limit=0) == []


async def test_expired_and_deleted_recordings(store: Store, index: RecordingIndex) -> None:
    site, visitor = await site_and_visitor(store)
    for i in range(3):
        await index.claim_recording(f"r_old{i}", site.id, visitor.id, f"rec/{i}.seg", 0.0)
        await index.add_recording_batch(
            f"r_old{i}", rec_batch(0, i * 1000.0, marks=(RecordingMark("click", 1.0),))
        )
    fresh = await index.claim_recording("r_new", site.id, visitor.id, "rec/n.seg", 0.0)
    expired = await index.expired_recordings(site.id, ended_before=2.5)
    assert [r.id for r in expired] == ["r_old0", "r_old1"]
    assert [r.id for r in await index.expired_recordings(site.id, 2.5, limit=1)] == ["r_old0"]
    assert {r.id for r in await index.visitor_recordings(visitor.id)} == {
        "r_old0",
        "r_old1",
        "r_old2",
        "r_new",
    }
    assert await index.delete_recordings(["r_old0", "r_old1", "r_nothing"]) == 2
    assert await index.get_recording("r_old0") is None
    assert await index.recording_marks("r_old0") == []
    assert [r.id for r in await index.list_recordings(site.id)] == ["r_old2"]
    assert [r.id for r in await index.expired_recordings(site.id, 1e12)] == ["r_old2", fresh.id]
    assert {r.id for r in await index.visitor_recordings(visitor.id)} == {"r_old2", "r_new"}
    # a deleted recording can be claimed afresh
    again = await index.claim_recording("r_old0", site.id, visitor.id, "rec/0.seg", 0.0)
    assert again.last_seq == -1 and again.events == 0


async def test_recordings_survive_a_restart(make_store: Callable[[], Store]) -> None:
    store = make_store()
    index = open_index(store)
    await store.start()
    try:
        site, visitor = await site_and_visitor(store)
        await index.claim_recording("r_keep", site.id, visitor.id, "rec/k.seg", 12.5)
        mark = RecordingMark("page", 5.0, {"url": "u", "title": "t"})
        rec, _ = await index.add_recording_batch("r_keep", rec_batch(0, 5.0, marks=(mark,)))
    finally:
        await store.close()
    reopened = make_store()
    again = open_index(reopened)
    await reopened.start()
    try:
        assert await again.get_recording("r_keep") == rec
        assert await again.recording_marks("r_keep") == [mark]
    finally:
        await reopened.close()


async def test_the_index_follows_its_store_backend(make_store: Callable[[], Store]) -> None:
    store = make_store()
    index = open_index(store)
    expected = {
        SQLiteStore: SQLiteRecordingIndex,
        RedisStore: RedisRecordingIndex,
        PostgresStore: PostgresRecordingIndex,
    }[type(store)]
    assert isinstance(index, expected)
    with pytest.raises(StoreError):  # the store is not started: no index either
        await index.get_recording("r_x")
    await store.start()
    try:
        assert await index.get_recording("r_x") is None
    finally:
        await store.close()
    with pytest.raises(StoreError):
        await index.list_recordings("s_x")


def test_no_index_for_another_store() -> None:
    with pytest.raises(TypeError):
        open_index(object())  # type: ignore[arg-type]

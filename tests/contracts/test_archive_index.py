"""The archive index's contract (``archive.index.ArchiveIndex``), for every backend.

Each test runs once per backend of the Store contract tests, with a real
store and the index ``open_archive`` gives for it, kept current the way the
server does it (``note_*`` after each write, as the events listener calls).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from archive.index import ArchiveIndex, open_archive, paging
from archive.index import postgres as pg_index
from archive.index import redis as redis_index
from archive.query import ArchiveQuery, BadCursor, highlight
from chatserver.store import Store
from chatserver.types import AuthorKind, Conversation, ConvState, EntryKind, Site

from .conftest import FACTORIES

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=sorted(FACTORIES))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
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
async def index(store: Store) -> AsyncIterator[ArchiveIndex]:
    opened = open_archive(store)
    await opened.start()  # as a node does at start (SQLite: its file made from the record)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches, windows and budgets of a few rows, so that these small archives
    take every path a large one does (a page over several batches, a match
    list cut between two, the GIN query below the B-tree window, a page
    ended by its budget)."""
    monkeypatch.setattr(paging, "FIRST_BATCH", 2)
    monkeypatch.setattr(paging, "BATCH", 4)
    monkeypatch.setattr(paging, "MAX_BATCHES", 3)
    monkeypatch.setattr(pg_index, "WINDOW", 2)
    monkeypatch.setattr(redis_index, "STEP", 2)
    monkeypatch.setattr(redis_index, "SCAN_BUDGET", 4)


async def chat(
    store: Store,
    index: ArchiveIndex,
    site: Site,
    *bodies: str,
    name: str = "",
    email: str = "",
    note: str = "",
    offline: bool = False,
) -> Conversation:
    """A conversation of a new visitor with ``bodies`` (visitor messages), indexed."""
    visitor = await store.create_visitor(site.id)
    if name or email:
        await store.update_visitor(visitor.id, name=name, email=email)
    conv, _ = await store.open_conversation(site.id, visitor.id, offline=offline)
    await index.note_conversation(conv.id)
    for body in bodies:
        entry, _ = await store.append(
            conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", body
        )
        await index.note_entry(entry)
    if note:
        entry, _ = await store.append(conv.id, EntryKind.NOTE, AuthorKind.AGENT, "a_1", "A", note)
        await index.note_entry(entry)
    return conv


def ids(page_hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.conv.id for h in page_hits]


async def test_words_find_messages_accents_and_case_ignored(
    store: Store, index: ArchiveIndex
) -> None:
    site = await store.create_site("Shop")
    envio = await chat(store, index, site, "¿Cuándo llega mi ENVÍO?", "gracias")
    await chat(store, index, site, "hello there")
    page = await index.search(ArchiveQuery(site.id, text="envio"))
    assert ids(page.hits) == [envio.id]
    assert page.cursor is None
    offset, text = page.hits[0].matches[0]
    assert (offset, text) == (1, "¿Cuándo llega mi ENVÍO?")
    assert ("ENVÍO", True) in highlight(text, ArchiveQuery(site.id, text="envio").words)
    # prefixes, every word, notes too; nothing for a word nobody wrote
    assert ids((await index.search(ArchiveQuery(site.id, text="llega envi"))).hits) == [envio.id]
    assert (await index.search(ArchiveQuery(site.id, text="envio hello"))).hits == []
    assert (await index.search(ArchiveQuery(site.id, text="zzzz"))).hits == []


async def test_visitor_name_and_email_and_notes_are_found(
    store: Store, index: ArchiveIndex
) -> None:
    site = await store.create_site("Shop")
    conv = await chat(
        store, index, site, "hi", name="María Pérez", email="maria@example.com", note="VIP refund"
    )
    await chat(store, index, site, "hi")
    for text in ("maria", "perez", "example", "refund"):
        assert ids((await index.search(ArchiveQuery(site.id, text=text))).hits) == [conv.id], text


async def test_other_sites_are_never_found(store: Store, index: ArchiveIndex) -> None:
    mine, other = await store.create_site("Mine"), await store.create_site("Other")
    await chat(store, index, other, "envío perdido")
    assert (await index.search(ArchiveQuery(mine.id, text="envio"))).hits == []
    assert (await index.search(ArchiveQuery(mine.id))).hits == []


async def test_filters(store: Store, index: ArchiveIndex) -> None:
    site = await store.create_site("Shop")
    a = await chat(store, index, site, "parcel one")
    b = await chat(store, index, site, "parcel two", offline=True)
    c = await chat(store, index, site, "parcel three")
    await store.update_conversation(a.id, state=ConvState.ACTIVE, agents=["a_x"])
    await store.update_conversation(c.id, state=ConvState.CLOSED, department="sales")
    await store.set_tags(b.id, add=["vip", "proactive"])
    await store.rate_conversation(c.id, "great")
    entry, _ = await store.append(
        a.id, EntryKind.TEXT, AuthorKind.VISITOR, "v", "", "photo.png",
        data={"attachment": {"id": "f_1", "name": "photo.png"}},
    )  # fmt: skip
    await index.note_entry(entry)

    async def found(text: str = "", **kw: object) -> list[str]:
        return ids((await index.search(ArchiveQuery(site.id, text=text, **kw))).hits)  # type: ignore[arg-type]

    for text in ("", "parcel"):
        assert await found(text) == [c.id, b.id, a.id]
        assert await found(text, states=(ConvState.CLOSED,)) == [c.id]
        assert await found(text, states=(ConvState.QUEUED, ConvState.ACTIVE)) == [b.id, a.id]
        assert await found(text, agent="a_x") == [a.id]
        assert await found(text, department="sales") == [c.id]
        assert await found(text, tag="vip") == [b.id]
        assert await found(text, rating="great") == [c.id]
        assert await found(text, offline=True) == [b.id]
        assert await found(text, offline=False) == [c.id, a.id]
        assert await found(text, trigger=True) == [b.id]
        assert await found(text, trigger=False) == [c.id, a.id]
        assert await found(text, attachments=True) == [a.id]
        assert await found(text, attachments=False) == [c.id, b.id]
        assert await found(text, since=b.created_at) == [c.id, b.id]
        assert await found(text, until=b.created_at) == [a.id]
    assert await found("photo") == [a.id]


async def test_keyset_pages_visit_each_conversation_once(store: Store, index: ArchiveIndex) -> None:
    site = await store.create_site("Shop")
    made = [await chat(store, index, site, f"order {i}", "order again") for i in range(7)]
    everyone = [c.id for c in made]  # oldest first; every one of them says "order"
    for text in ("", "order"):
        newest_first = everyone[::-1]
        seen: list[str] = []
        cursor = None
        for _ in range(30):
            page = await index.search(ArchiveQuery(site.id, text=text), cursor, limit=3)
            assert len(page.hits) <= 3
            seen += ids(page.hits)
            if page.cursor is None:
                break
            cursor = page.cursor
            # a conversation opened meanwhile does not shift the pages
            everyone.append((await chat(store, index, site, "order new")).id)
        assert seen == newest_first, text


async def test_a_bad_cursor_is_refused(store: Store, index: ArchiveIndex) -> None:
    site = await store.create_site("Shop")
    for cursor in ("nope", "-3", "0"):
        with pytest.raises(BadCursor):
            await index.search(ArchiveQuery(site.id), cursor)


async def test_reindex_rebuilds_from_the_record(store: Store, index: ArchiveIndex) -> None:
    site = await store.create_site("Shop")
    visitor = await store.create_visitor(site.id)
    old, _ = await store.open_conversation(site.id, visitor.id)
    await store.append(old.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "envío roto")
    await store.update_conversation(old.id, state=ConvState.CLOSED)
    new, _ = await store.open_conversation(site.id, visitor.id)
    await store.append(new.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "otro envío")
    # never indexed (as if the events were lost): only the rebuild finds them
    before = await index.search(ArchiveQuery(site.id, text="envio"))
    assert before.hits == []
    assert await index.reindex() == 2
    assert await index.reindex() == 2  # again: the same, nothing doubled
    page = await index.search(ArchiveQuery(site.id, text="envio"))
    assert ids(page.hits) == [new.id, old.id]
    assert [len(h.matches) for h in page.hits] == [1, 1]


async def test_catch_up_indexes_what_the_events_left_out(store: Store, index: ArchiveIndex) -> None:
    """A batch lost with its process: the next start's ``catch_up`` finds the texts
    of conversations open now or closed since ``since``, and only those."""
    site = await store.create_site("Shop")
    half = await chat(store, index, site, "envío uno")  # indexed by its events
    lost = "envío dos"  # appended, but its event's batch died with the process
    await store.append(half.id, EntryKind.TEXT, AuthorKind.VISITOR, half.visitor_id, "", lost)

    async def unindexed(body: str) -> Conversation:
        visitor = await store.create_visitor(site.id)
        conv, _ = await store.open_conversation(site.id, visitor.id)
        await store.append(conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", body)
        await store.update_conversation(conv.id, state=ConvState.CLOSED)
        return conv

    await unindexed("envío viejo")  # closed before the window: left to reindex
    await asyncio.sleep(0.02)
    since = time.time()
    recent = await unindexed("envío reciente")
    added = await index.catch_up(since)
    # SQL: the recent conversation and its text, and the lost text; Redis: the membership
    assert added == (1 if isinstance(index, redis_index.RedisArchive) else 3)
    page = await index.search(ArchiveQuery(site.id, text="envio"))
    assert ids(page.hits) == [recent.id, half.id]
    assert [len(h.matches) for h in page.hits] == [1, 2]
    assert await index.catch_up(since) == 0  # nothing left out now

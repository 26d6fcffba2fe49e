"""The Store contract: conversations, entries, tags, ratings, read markers (``ConversationStore``).

Every test runs on each backend of ``conftest.FACTORIES``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest

from chatserver.errors import Closed, NotFound, NotMember, StoreError
from chatserver.store import Store
from chatserver.store.common import CID_WINDOW
from chatserver.types import (
    AuthorKind,
    Conversation,
    ConvState,
    EntryKind,
    new_id,
)

from .helpers import new_conv, say, site_and_visitor

pytestmark = pytest.mark.anyio


async def test_open_conversation_creates_a_queued_one(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    before = time.time()
    conv, created = await store.open_conversation(site.id, visitor.id, "sales", offline=True)
    assert created
    assert (conv.site_id, conv.visitor_id, conv.state) == (site.id, visitor.id, ConvState.QUEUED)
    assert (conv.department, conv.offline, conv.agents, conv.last_offset) == (
        "sales",
        True,
        (),
        0,
    )
    assert conv.epoch
    assert conv.closed_at is None
    assert before <= conv.created_at <= time.time()
    assert conv.queued_at == conv.created_at
    assert await store.get_conversation(conv.id) == conv
    assert await store.current_conversation(visitor.id) == conv


async def test_ids_sort_by_creation_and_old_ids_keep_working(store: Store) -> None:
    """Conversation and visitor ids made later sort later (``types.sorted_id``: the
    active chats' rows sit together in the B-trees); an id of the old, all-random
    format (``new_id``) is an opaque key like any other."""
    site = await store.create_site("Shop")
    visitors, convs = [], []
    for _ in range(3):
        visitor = await store.create_visitor(site.id)
        conv, _ = await store.open_conversation(site.id, visitor.id)
        visitors.append(visitor.id)
        convs.append(conv.id)
        await asyncio.sleep(0.002)  # the next millisecond at least
    assert visitors == sorted(visitors) and convs == sorted(convs)
    old = await store.create_visitor(site.id, new_id("v"))
    conv, created = await store.open_conversation(site.id, old.id)
    assert created and conv.id > convs[-1]
    entry, _ = await say(store, conv.id, "hello", author=old.id, cid="c1")
    assert await store.entries(conv.id) == [entry]
    assert await store.current_conversation(old.id) == await store.get_conversation(conv.id)


async def test_open_conversation_returns_the_open_one(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    conv, _ = await store.open_conversation(site.id, visitor.id)
    again, created = await store.open_conversation(site.id, visitor.id, "other-dept")
    assert not created
    assert again == conv
    # also once it is active
    active = await store.update_conversation(conv.id, state=ConvState.ACTIVE, agents=["a_1"])
    again, created = await store.open_conversation(site.id, visitor.id)
    assert (again, created) == (active, False)


async def test_open_conversation_is_atomic_under_concurrency(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    other = await store.create_visitor(site.id)
    results = await asyncio.gather(
        *(store.open_conversation(site.id, visitor.id) for _ in range(50)),
        *(store.open_conversation(site.id, other.id) for _ in range(10)),
    )
    mine, theirs = results[:50], results[50:]
    assert len({conv.id for conv, _ in mine}) == 1
    assert sum(created for _, created in mine) == 1
    assert len({conv.id for conv, _ in theirs}) == 1
    assert sum(created for _, created in theirs) == 1
    assert mine[0][0].id != theirs[0][0].id
    assert len(await store.visitor_conversations(visitor.id)) == 1


async def test_new_conversation_after_close(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    first, _ = await store.open_conversation(site.id, visitor.id)
    await store.update_conversation(first.id, state=ConvState.CLOSED)
    assert await store.current_conversation(visitor.id) is None
    second, created = await store.open_conversation(site.id, visitor.id)
    assert created
    assert second.id != first.id
    assert second.state is ConvState.QUEUED
    assert second.last_offset == 0
    closed = await store.get_conversation(first.id)
    assert closed is not None
    assert closed.state is ConvState.CLOSED


async def test_concurrent_open_after_close(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    first, _ = await store.open_conversation(site.id, visitor.id)
    await store.update_conversation(first.id, state=ConvState.CLOSED)
    results = await asyncio.gather(
        *(store.open_conversation(site.id, visitor.id) for _ in range(20))
    )
    assert len({c.id for c, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_current_conversation_of_unknown_visitor(store: Store) -> None:
    assert await store.current_conversation("v_nope") is None
    assert await store.get_conversation("c_nope") is None


async def test_update_conversation_fields(store: Store) -> None:
    conv = await new_conv(store, department="sales")
    updated = await store.update_conversation(conv.id, state=ConvState.ACTIVE, agents=["a1", "a2"])
    assert updated == dataclasses.replace(conv, state=ConvState.ACTIVE, agents=("a1", "a2"))
    assert await store.get_conversation(conv.id) == updated
    # nothing given: nothing changes
    assert await store.update_conversation(conv.id) == updated
    # department: KEEP (the default) vs a value vs None
    assert (await store.update_conversation(conv.id, agents=["a2"])).department == "sales"
    assert (await store.update_conversation(conv.id, department="vip")).department == "vip"
    cleared = await store.update_conversation(conv.id, department=None)
    assert cleared.department is None
    assert cleared.agents == ("a2",)
    requeued = await store.update_conversation(
        conv.id, state=ConvState.QUEUED, agents=[], queued_at=conv.queued_at + 60
    )
    assert (requeued.state, requeued.agents, requeued.queued_at) == (
        ConvState.QUEUED,
        (),
        conv.queued_at + 60,
    )
    assert requeued.created_at == conv.created_at
    assert await store.get_conversation(conv.id) == requeued


async def test_closing_sets_closed_at(store: Store) -> None:
    conv = await new_conv(store)
    active = await store.update_conversation(conv.id, state=ConvState.ACTIVE, agents=["a1"])
    assert active.closed_at is None
    before = time.time()
    closed = await store.update_conversation(conv.id, state=ConvState.CLOSED)
    assert closed.state is ConvState.CLOSED
    assert closed.closed_at is not None
    assert before <= closed.closed_at <= time.time()
    assert await store.get_conversation(conv.id) == closed


async def test_update_unknown_conversation_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.update_conversation("c_nope", state=ConvState.CLOSED)
    with pytest.raises(NotFound):
        await store.update_conversation("c_nope")
    assert issubclass(NotFound, StoreError)


async def test_list_conversations_order_and_filter(store: Store) -> None:
    site = await store.create_site("Shop")
    other_site = await store.create_site("Other")
    convs = []
    for _ in range(4):
        visitor = await store.create_visitor(site.id)
        convs.append((await store.open_conversation(site.id, visitor.id))[0])
    stranger = await store.create_visitor(other_site.id)
    await store.open_conversation(other_site.id, stranger.id)
    c0, c1, c2, c3 = convs
    base = c0.queued_at
    # make queued_at disagree with creation order
    await store.update_conversation(c0.id, queued_at=base + 30)
    await store.update_conversation(c1.id, queued_at=base + 10, state=ConvState.ACTIVE)
    await store.update_conversation(c2.id, queued_at=base + 20)
    await store.update_conversation(c3.id, state=ConvState.CLOSED)

    def names(cs: list[Conversation]) -> list[str]:
        return [c.id for c in cs]

    assert names(await store.list_conversations(site.id, [ConvState.QUEUED])) == [c2.id, c0.id]
    assert names(await store.list_conversations(site.id, [ConvState.ACTIVE])) == [c1.id]
    assert names(await store.list_conversations(site.id, [ConvState.CLOSED])) == [c3.id]
    both = await store.list_conversations(site.id, [ConvState.QUEUED, ConvState.ACTIVE])
    assert names(both) == [c1.id, c2.id, c0.id]
    every = await store.list_conversations(site.id, list(ConvState))
    assert [c.queued_at for c in every] == sorted(c.queued_at for c in every)
    assert len(every) == 4
    assert names(await store.list_conversations(site.id, list(ConvState), limit=2)) == names(
        every[:2]
    )
    assert await store.list_conversations(site.id, []) == []
    assert len(await store.list_conversations(other_site.id, list(ConvState))) == 1
    assert await store.list_conversations("s_nope", list(ConvState)) == []


async def test_visitor_conversations_newest_first(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    ids = []
    for _ in range(4):
        conv, _ = await store.open_conversation(site.id, visitor.id)
        await store.update_conversation(conv.id, state=ConvState.CLOSED)
        ids.append(conv.id)
    current, _ = await store.open_conversation(site.id, visitor.id)
    ids.append(current.id)
    listed = await store.visitor_conversations(visitor.id)
    assert [c.id for c in listed] == ids[::-1]
    assert listed[0] == current
    assert [c.id for c in await store.visitor_conversations(visitor.id, limit=2)] == ids[:2:-1]
    assert await store.visitor_conversations("v_nope") == []


async def test_append_numbers_entries_from_one(store: Store) -> None:
    conv = await new_conv(store)
    before = time.time()
    entry, dup = await store.append(
        conv.id,
        EntryKind.TEXT,
        AuthorKind.VISITOR,
        conv.visitor_id,
        "Visitor",
        "hello",
        cid="m1",
        data={"page": "/cart"},
    )
    assert not dup
    assert entry.conversation_id == conv.id
    assert entry.offset == 1
    assert (entry.kind, entry.author_kind, entry.author_id, entry.author_name) == (
        EntryKind.TEXT,
        AuthorKind.VISITOR,
        conv.visitor_id,
        "Visitor",
    )
    assert (entry.body, entry.cid, entry.data) == ("hello", "m1", {"page": "/cart"})
    assert before <= entry.ts <= time.time()
    second, _ = await say(store, conv.id, "second")
    event, _ = await store.append(
        conv.id, EntryKind.EVENT, AuthorKind.SYSTEM, "system", "", "", data={"event": "joined"}
    )
    assert (second.offset, event.offset) == (2, 3)
    assert (second.cid, second.data) == (None, {})
    assert await store.entries(conv.id) == [entry, second, event]
    stored = await store.get_conversation(conv.id)
    assert stored is not None
    assert stored.last_offset == 3


async def test_concurrent_appends_are_gapless(store: Store) -> None:
    conv = await new_conv(store)
    other = await new_conv(store)
    results = await asyncio.gather(
        *(say(store, conv.id, f"m{i}", cid=f"c{i}") for i in range(200)),
        *(say(store, other.id, f"o{i}") for i in range(20)),
    )
    offsets = sorted(e.offset for e, dup in results[:200] if not dup)
    assert offsets == list(range(1, 201))
    assert sorted(e.offset for e, _ in results[200:]) == list(range(1, 21))
    stored = await store.entries(conv.id, limit=500)
    assert [e.offset for e in stored] == list(range(1, 201))
    # each entry is stored at the offset its append returned
    assert {e.offset: e.body for e, _ in results[:200]} == {e.offset: e.body for e in stored}
    got = await store.get_conversation(conv.id)
    assert got is not None
    assert got.last_offset == 200


async def test_append_is_idempotent_per_author_and_cid(store: Store) -> None:
    conv = await new_conv(store)
    first, dup = await say(store, conv.id, "hello", cid="m1")
    assert not dup
    again, dup = await say(store, conv.id, "hello (resent)", cid="m1")
    assert dup
    assert again == first  # the first entry, as stored
    # same cid, another author: another entry
    theirs, dup = await say(store, conv.id, "hi", author="a_9", cid="m1")
    assert not dup
    assert theirs.offset == 2
    # no cid: never deduplicated
    e1, d1 = await say(store, conv.id, "same")
    e2, d2 = await say(store, conv.id, "same")
    assert (d1, d2) == (False, False)
    assert (e1.offset, e2.offset) == (3, 4)
    assert [e.offset for e in await store.entries(conv.id)] == [1, 2, 3, 4]
    stored = await store.get_conversation(conv.id)
    assert stored is not None
    assert stored.last_offset == 4


async def test_a_resend_is_recognised_while_among_the_newest_entries(store: Store) -> None:
    """The contract's bound (``CID_WINDOW``): a resend whose first copy has
    ``CID_WINDOW - 1`` newer entries after it is still a duplicate."""
    conv = await new_conv(store)
    first, _ = await say(store, conv.id, "the first copy", cid="m1")
    for k in range(CID_WINDOW - 1):  # the others' messages, and the sender's own
        await say(store, conv.id, f"n{k}", author="a_9" if k % 2 else "v_1", cid=f"n{k}")
    again, dup = await say(store, conv.id, "resent", cid="m1")
    assert dup and again == first
    assert (await store.get_conversation(conv.id)).last_offset == CID_WINDOW  # type: ignore[union-attr]


async def test_same_cid_in_another_conversation_is_a_new_entry(store: Store) -> None:
    conv = await new_conv(store)
    other = await new_conv(store)
    await say(store, conv.id, "x", cid="m1")
    entry, dup = await say(store, other.id, "x", cid="m1")
    assert not dup
    assert (entry.conversation_id, entry.offset) == (other.id, 1)


async def test_concurrent_duplicates_store_once(store: Store) -> None:
    conv = await new_conv(store)
    results = await asyncio.gather(*(say(store, conv.id, "retry", cid="m1") for _ in range(20)))
    assert sum(not dup for _, dup in results) == 1
    assert all(entry == results[0][0] for entry, _ in results)
    assert len(await store.entries(conv.id)) == 1


async def test_append_to_unknown_conversation_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await say(store, "c_nope", "hello")
    with pytest.raises(NotFound):
        await say(store, "c_nope", "hello", cid="m1")
    assert await store.entries("c_nope") == []


async def test_entries_paging(store: Store) -> None:
    conv = await new_conv(store)
    for i in range(1, 11):
        await say(store, conv.id, f"m{i}")

    async def offsets(**kwargs: Any) -> list[int]:
        return [e.offset for e in await store.entries(conv.id, **kwargs)]

    assert await offsets() == list(range(1, 11))
    assert await offsets(limit=3) == [8, 9, 10]  # the newest
    assert await offsets(after=0, limit=3) == [1, 2, 3]  # the first after
    assert await offsets(after=4, limit=3) == [5, 6, 7]
    assert await offsets(after=8, limit=5) == [9, 10]
    assert await offsets(after=10) == []
    assert await offsets(after=99) == []
    assert await offsets(before=5, limit=3) == [2, 3, 4]  # the last below, in order
    assert await offsets(before=3, limit=5) == [1, 2]
    assert await offsets(before=1) == []
    assert await offsets(before=99, limit=2) == [9, 10]


async def test_entries_of_empty_conversation(store: Store) -> None:
    conv = await new_conv(store)
    assert await store.entries(conv.id) == []
    assert await store.entries(conv.id, after=0) == []
    assert await store.entries(conv.id, before=5) == []


async def test_entries_can_hide_notes(store: Store) -> None:
    conv = await new_conv(store)
    kinds = [EntryKind.TEXT, EntryKind.NOTE, EntryKind.TEXT, EntryKind.EVENT, EntryKind.NOTE]
    for i, kind in enumerate(kinds, start=1):
        await say(store, conv.id, f"e{i}", kind=kind, author="a_1")

    async def offsets(**kwargs: Any) -> list[int]:
        return [e.offset for e in await store.entries(conv.id, **kwargs)]

    assert await offsets() == [1, 2, 3, 4, 5]
    assert await offsets(include_notes=False) == [1, 3, 4]
    assert await offsets(include_notes=False, after=1) == [3, 4]
    assert await offsets(include_notes=False, after=0, limit=2) == [1, 3]
    assert await offsets(include_notes=False, before=5, limit=2) == [3, 4]
    assert await offsets(include_notes=False, limit=1) == [4]
    assert all(e.agents_only for e in await store.entries(conv.id) if e.offset in (2, 5))


async def test_set_read_only_moves_forward(store: Store) -> None:
    conv = await new_conv(store)
    assert await store.set_read(conv.id, "visitor", 3) == 3
    assert await store.set_read(conv.id, "visitor", 1) == 3
    assert await store.set_read(conv.id, "visitor", 3) == 3
    assert await store.set_read(conv.id, "visitor", 7) == 7
    # markers are per reader and per conversation
    assert await store.set_read(conv.id, "a_1", 2) == 2
    assert await store.set_read(conv.id, "visitor", 0) == 7
    other = await new_conv(store)
    assert await store.set_read(other.id, "visitor", 0) == 0


async def test_concurrent_set_read_keeps_the_highest(store: Store) -> None:
    conv = await new_conv(store)
    marks = [5, 2, 9, 1, 7, 9, 3]
    await asyncio.gather(*(store.set_read(conv.id, "a_1", m) for m in marks))
    assert await store.set_read(conv.id, "a_1", 0) == 9


async def test_append_open_only_refuses_a_closed_conversation(store: Store) -> None:
    site = await store.create_site("s")
    visitor = await store.create_visitor(site.id)
    conv, _ = await store.open_conversation(site.id, visitor.id)
    first, _ = await store.append(
        conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "hi", cid="c1", open_only=True
    )
    await store.update_conversation(conv.id, state=ConvState.CLOSED)
    with pytest.raises(Closed):
        await store.append(
            conv.id,
            EntryKind.TEXT,
            AuthorKind.VISITOR,
            visitor.id,
            "",
            "late",
            cid="c2",
            open_only=True,
        )
    # A resend of an acknowledged message still gets its first entry back.
    again, duplicate = await store.append(
        conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "hi", cid="c1", open_only=True
    )
    assert duplicate and again.offset == first.offset
    # Events (like "closed" itself) and writes without open_only still go in.
    event, _ = await store.append(conv.id, EntryKind.EVENT, AuthorKind.SYSTEM, "", "", "")
    assert event.offset == first.offset + 1
    assert (await store.get_conversation(conv.id)).last_offset == event.offset  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await store.append(
            "c_missing", EntryKind.TEXT, AuthorKind.VISITOR, "v", "", "x", open_only=True
        )


async def test_append_with_member_refuses_a_stranger_atomically(store: Store) -> None:
    site = await store.create_site("s")
    visitor = await store.create_visitor(site.id)
    conv, _ = await store.open_conversation(site.id, visitor.id)
    await store.update_conversation(conv.id, agents=["a_in"])

    def say(author: str, cid: str, **kw: Any) -> Any:
        return store.append(
            conv.id, EntryKind.TEXT, AuthorKind.AGENT, author, "", "x", cid=cid, **kw
        )

    entry, duplicate = await say("a_in", "c1", member="a_in", open_only=True)
    assert not duplicate and entry.offset == 1
    with pytest.raises(NotMember) as refused:
        await say("a_out", "c2", member="a_out")
    assert refused.value.site_id == site.id  # the caller can hide other sites' conversations
    # Checked before the cid: a stranger cannot read an entry back by replaying its cid.
    with pytest.raises(NotMember):
        await say("a_in", "c1", member="a_out")
    # Transferred away: the former agent's next message is refused.
    await store.update_conversation(conv.id, agents=["a_other"])
    with pytest.raises(NotMember):
        await say("a_in", "c3", member="a_in")
    assert (await store.get_conversation(conv.id)).last_offset == 1  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await store.append(
            "c_missing", EntryKind.TEXT, AuthorKind.AGENT, "a_in", "", "x", member="a_in"
        )


async def test_tags(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    conv, _ = await store.open_conversation(site.id, visitor.id)
    assert conv.tags == ()
    tagged = await store.set_tags(conv.id, add=["vip", "billing"])
    assert tagged.tags == ("billing", "vip")
    await asyncio.gather(*(store.set_tags(conv.id, add=[f"t{i}"]) for i in range(10)))
    again = await store.set_tags(conv.id, add=["vip"], remove=["billing", "t3"])
    assert again.tags == tuple(sorted({"vip"} | {f"t{i}" for i in range(10)} - {"t3"}))
    got = await store.get_conversation(conv.id)
    assert got is not None and got.tags == again.tags
    assert got.summary()["tags"] == list(again.tags)
    with pytest.raises(NotFound):
        await store.set_tags("c_missing", add=["x"])


async def test_rate_conversation(store: Store) -> None:
    conv = await new_conv(store)
    assert conv.rating is None and conv.rated_at is None
    assert conv.summary()["rating"] is None
    closed = await store.update_conversation(conv.id, state=ConvState.CLOSED)
    before = time.time()
    rated = await store.rate_conversation(conv.id, "okay", "slow at first")
    assert rated == dataclasses.replace(
        closed, rating="okay", rating_comment="slow at first", rated_at=rated.rated_at
    )
    assert rated.rated_at is not None and before <= rated.rated_at <= time.time()
    assert await store.get_conversation(conv.id) == rated
    assert rated.summary()["rating"] == {
        "value": "okay",
        "comment": "slow at first",
        "ts": rated.rated_at,
    }
    # a later rating replaces the earlier one
    again = await store.rate_conversation(conv.id, "great")
    assert (again.rating, again.rating_comment) == ("great", "")
    assert await store.get_conversation(conv.id) == again
    # other fields keep living their lives
    listed = await store.list_conversations(conv.site_id, [ConvState.CLOSED])
    assert listed == [again]
    with pytest.raises(NotFound):
        await store.rate_conversation("c_nope", "great")


async def test_read_markers_of_a_conversation(store: Store) -> None:
    conv = await new_conv(store)
    other = await new_conv(store)
    assert await store.read_markers(conv.id) == {}
    assert await store.read_markers("c_unknown") == {}
    await store.set_read(conv.id, "visitor:v_1", 3)
    await store.set_read(conv.id, "agent:a_1", 5)
    await store.set_read(conv.id, "agent:a_2", 0)
    await store.set_read(other.id, "agent:a_1", 9)
    assert await store.read_markers(conv.id) == {"visitor:v_1": 3, "agent:a_1": 5, "agent:a_2": 0}
    assert await store.read_markers(other.id) == {"agent:a_1": 9}


async def test_read_markers_only_move_forward(store: Store) -> None:
    conv = await new_conv(store)
    await store.set_read(conv.id, "agent:a_1", 6)
    await store.set_read(conv.id, "agent:a_1", 2)
    assert await store.read_markers(conv.id) == {"agent:a_1": 6}
    await asyncio.gather(*(store.set_read(conv.id, "visitor:v_1", m) for m in (4, 8, 1, 7)))
    assert await store.read_markers(conv.id) == {"agent:a_1": 6, "visitor:v_1": 8}


async def test_read_markers_survive_a_restart(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.start()
    try:
        conv = await new_conv(store)
        await store.set_read(conv.id, "agent:a_keep", 4)
        await store.set_read(conv.id, "visitor:v_keep", 2)
    finally:
        await store.close()
    reopened = make_store()
    await reopened.start()
    try:
        assert await reopened.read_markers(conv.id) == {"agent:a_keep": 4, "visitor:v_keep": 2}
    finally:
        await reopened.close()


# -- operations: readiness (docs/operations.md) --------------------------------


async def test_ping_answers_while_started_and_fails_once_closed(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    await store.start()
    try:
        assert await store.ping() is None
        await store.create_site("Pinged shop")
        await asyncio.gather(*(store.ping() for _ in range(5)))
    finally:
        await store.close()
    with pytest.raises(StoreError):
        await store.ping()

"""The ``Store`` contract (see the docstring of ``chatserver/store.py``), for every backend.

Add a backend by adding a factory to ``FACTORIES``: it gets the test's
``tmp_path`` and the pytest request (for fixtures such as the Redis server)
and returns a new, unstarted store; two stores built from the same path must
see the same data (the durability tests reopen the store that way; for Redis
the "path" is the server's URL and the test's key prefix).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chatserver.errors import Closed, NotFound, NotMember, StoreError
from chatserver.store import MAX_PAGE_VIEWS, VISIT_GAP, Store
from chatserver.store_redis import RedisStore
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import (
    AuthorKind,
    Conversation,
    ConvState,
    Entry,
    EntryKind,
    Firing,
    RecordingBatch,
    RecordingMark,
    Role,
    Site,
    SiteSettings,
    Visitor,
)

from .redis_server import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _redis_store(path: Path, request: pytest.FixtureRequest) -> Store:
    server: RedisServer = request.getfixturevalue("redis_server")
    return RedisStore(server.url, prefix=request.getfixturevalue("redis_prefix"))


FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], Store]] = {
    "sqlite": lambda path, request: SQLiteStore(path / "chat.db"),
    "redis": _redis_store,
}


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


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


async def site_and_visitor(store: Store) -> tuple[Site, Visitor]:
    site = await store.create_site("Shop")
    return site, await store.create_visitor(site.id)


async def new_conv(store: Store, **kwargs: Any) -> Conversation:
    site, visitor = await site_and_visitor(store)
    conv, created = await store.open_conversation(site.id, visitor.id, **kwargs)
    assert created
    return conv


async def say(
    store: Store,
    conv_id: str,
    body: str,
    *,
    kind: EntryKind = EntryKind.TEXT,
    author: str = "v_1",
    cid: str | None = None,
) -> tuple[Entry, bool]:
    author_kind = AuthorKind.AGENT if author.startswith("a") else AuthorKind.VISITOR
    return await store.append(conv_id, kind, author_kind, author, author.upper(), body, cid=cid)


# ---------------------------------------------------------------------------
# sites
# ---------------------------------------------------------------------------


async def test_create_and_get_site(store: Store) -> None:
    before = time.time()
    settings = SiteSettings(typing_preview=False, routing="manual", greeting="Hi!", language="de")
    site = await store.create_site(
        "Shop", ["https://shop.example"], settings, departments=["sales", "support"]
    )
    assert site.id and site.key and site.id != site.key
    assert site.name == "Shop"
    assert site.allowed_origins == ("https://shop.example",)
    assert site.settings == settings
    assert site.departments == ("sales", "support")
    assert before <= site.created_at <= time.time()
    assert await store.get_site(site.id) == site
    assert await store.site_by_key(site.key) == site


async def test_site_defaults(store: Store) -> None:
    site = await store.create_site("Plain")
    assert site.allowed_origins == ()
    assert site.settings == SiteSettings()
    assert site.departments == ()
    assert await store.get_site(site.id) == site


async def test_unknown_site(store: Store) -> None:
    site = await store.create_site("Shop")
    assert await store.get_site("s_nope") is None
    assert await store.site_by_key("nope") is None
    assert await store.get_site(site.key) is None  # a key is not an id
    assert await store.site_by_key(site.id) is None  # and the other way round


async def test_sites_get_distinct_ids_and_keys(store: Store) -> None:
    sites = [await store.create_site(f"Shop {i}") for i in range(5)]
    assert len({s.id for s in sites}) == 5
    assert len({s.key for s in sites}) == 5


async def test_save_site(store: Store) -> None:
    site = await store.create_site("Shop", ["https://a.example"])
    changed = dataclasses.replace(
        site,
        name="Renamed",
        allowed_origins=("https://b.example", "*"),
        settings=SiteSettings(color="#000000", greeting="Moin"),
        departments=("vip",),
    )
    await store.save_site(changed)
    assert await store.get_site(site.id) == changed
    assert await store.site_by_key(site.key) == changed


async def test_save_unknown_site_is_not_found(store: Store) -> None:
    site = await store.create_site("Shop")
    with pytest.raises(NotFound):
        await store.save_site(dataclasses.replace(site, id="s_ghost"))


async def test_list_sites(store: Store) -> None:
    assert await store.list_sites() == []
    a = await store.create_site("A")
    b = await store.create_site("B")
    assert sorted(await store.list_sites(), key=lambda s: s.name) == [a, b]


async def test_records_are_frozen(store: Store) -> None:
    site = await store.create_site("Shop")
    with pytest.raises(dataclasses.FrozenInstanceError):
        site.name = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------------
# agents
# ---------------------------------------------------------------------------


async def test_create_and_get_agent(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(
        site.id, "ann@example.com", "Ann", "hash1", Role.ADMIN, capacity=7, departments=["sales"]
    )
    assert agent.id
    assert (agent.site_id, agent.email, agent.name, agent.password_hash) == (
        site.id,
        "ann@example.com",
        "Ann",
        "hash1",
    )
    assert (agent.role, agent.capacity, agent.departments, agent.disabled) == (
        Role.ADMIN,
        7,
        ("sales",),
        False,
    )
    assert await store.get_agent(agent.id) == agent
    assert await store.agent_by_email("ann@example.com") == agent


async def test_agent_defaults(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "bob@example.com", "Bob", "h")
    assert (agent.role, agent.capacity, agent.departments) == (Role.AGENT, 5, ())
    assert await store.get_agent(agent.id) == agent


async def test_agent_by_email_is_case_insensitive(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "Ann.Lee@Example.com", "Ann", "h")
    for spelling in ("ann.lee@example.com", "ANN.LEE@EXAMPLE.COM", "Ann.Lee@Example.com"):
        assert await store.agent_by_email(spelling) == agent
    assert await store.agent_by_email("ann@example.com") is None


async def test_unknown_agent(store: Store) -> None:
    assert await store.get_agent("a_nope") is None
    assert await store.agent_by_email("nobody@example.com") is None


@pytest.mark.parametrize("taken", ["ann@example.com", "ANN@example.com", "Ann@Example.COM"])
async def test_duplicate_email_raises_store_error(store: Store, taken: str) -> None:
    site = await store.create_site("Shop")
    other_site = await store.create_site("Other")
    first = await store.create_agent(site.id, "ann@example.com", "Ann", "h")
    for site_id in (site.id, other_site.id):
        with pytest.raises(StoreError):
            await store.create_agent(site_id, taken, "Impostor", "h2")
    assert await store.list_agents(site.id) == [first]
    assert await store.list_agents(other_site.id) == []
    assert await store.agent_by_email(taken) == first


async def test_save_agent_overwrites_all_but_id_and_site(store: Store) -> None:
    site = await store.create_site("Shop")
    other = await store.create_site("Other")
    agent = await store.create_agent(site.id, "ann@example.com", "Ann", "h")
    changed = dataclasses.replace(
        agent,
        email="ann.new@example.com",
        name="Ann Lee",
        password_hash="h2",
        role=Role.ADMIN,
        capacity=1,
        departments=("sales", "vip"),
        disabled=True,
    )
    await store.save_agent(dataclasses.replace(changed, site_id=other.id))
    assert await store.get_agent(agent.id) == changed  # site unchanged
    assert await store.agent_by_email("ann.new@example.com") == changed
    assert await store.agent_by_email("ann@example.com") is None
    assert await store.list_agents(other.id) == []


async def test_set_password_hash_only_over_the_hash_read(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "ann@example.com", "Ann", "old", Role.ADMIN)
    assert await store.set_password_hash(agent.id, "old", "new") is True
    assert await store.get_agent(agent.id) == dataclasses.replace(agent, password_hash="new")
    # The hash changed meanwhile (a password reset): nothing is written.
    assert await store.set_password_hash(agent.id, "old", "stale") is False
    assert (await store.agent_by_email("ann@example.com")) == dataclasses.replace(
        agent, password_hash="new"
    )
    assert await store.set_password_hash("a_none", "new", "x") is False
    assert await store.get_agent("a_none") is None
    # Of concurrent upgrades from one hash read, exactly one wins.
    got = await asyncio.gather(
        *(store.set_password_hash(agent.id, "new", f"up{i}") for i in range(10))
    )
    assert got.count(True) == 1
    winner = f"up{got.index(True)}"
    assert (await store.get_agent(agent.id)) == dataclasses.replace(agent, password_hash=winner)


async def test_save_agent_frees_old_email(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "ann@example.com", "Ann", "h")
    await store.save_agent(dataclasses.replace(agent, email="ann2@example.com"))
    again = await store.create_agent(site.id, "ann@example.com", "Another Ann", "h")
    assert await store.agent_by_email("ANN@example.com") == again


async def test_save_agent_to_a_taken_email_raises_store_error(store: Store) -> None:
    site = await store.create_site("Shop")
    ann = await store.create_agent(site.id, "ann@example.com", "Ann", "h")
    bob = await store.create_agent(site.id, "bob@example.com", "Bob", "h")
    with pytest.raises(StoreError):
        await store.save_agent(dataclasses.replace(bob, email="ANN@example.com"))
    assert await store.get_agent(bob.id) == bob
    assert await store.agent_by_email("ann@example.com") == ann


async def test_list_agents_per_site(store: Store) -> None:
    site = await store.create_site("Shop")
    other = await store.create_site("Other")
    assert await store.list_agents(site.id) == []
    mine = [await store.create_agent(site.id, f"a{i}@example.com", f"A{i}", "h") for i in range(3)]
    theirs = await store.create_agent(other.id, "x@example.com", "X", "h")
    assert sorted(await store.list_agents(site.id), key=lambda a: a.id) == sorted(
        mine, key=lambda a: a.id
    )
    assert await store.list_agents(other.id) == [theirs]


# ---------------------------------------------------------------------------
# visitors
# ---------------------------------------------------------------------------


async def test_visitors(store: Store) -> None:
    site = await store.create_site("Shop")
    before = time.time()
    visitor = await store.create_visitor(site.id)
    other = await store.create_visitor(site.id)
    assert visitor.id != other.id
    assert visitor.site_id == site.id
    assert before <= visitor.created_at <= time.time()
    assert (visitor.name, visitor.email, visitor.attributes, visitor.last_agent_id) == (
        "",
        "",
        {},
        None,
    )
    assert await store.get_visitor(visitor.id) == visitor
    assert await store.get_visitor("v_nope") is None


async def test_set_last_agent(store: Store) -> None:
    site = await store.create_site("Shop")
    visitor = await store.create_visitor(site.id)
    agent = await store.create_agent(site.id, "ann@example.com", "Ann", "h")
    await store.set_last_agent(visitor.id, agent.id)
    assert await store.get_visitor(visitor.id) == dataclasses.replace(
        visitor, last_agent_id=agent.id
    )
    await store.set_last_agent(visitor.id, "a_other")
    got = await store.get_visitor(visitor.id)
    assert got is not None
    assert got.last_agent_id == "a_other"


async def test_update_visitor_sets_name_and_email(store: Store) -> None:
    site = await store.create_site("Shop")
    visitor = await store.create_visitor(site.id)
    updated = await store.update_visitor(visitor.id, name="Ann", email="ann@example.com")
    assert updated == dataclasses.replace(visitor, name="Ann", email="ann@example.com")
    assert await store.get_visitor(visitor.id) == updated
    # fields left out (None) keep their value
    again = await store.update_visitor(visitor.id, email="a@example.com")
    assert (again.name, again.email) == ("Ann", "a@example.com")
    assert await store.get_visitor(visitor.id) == again


async def test_update_visitor_merges_attributes(store: Store) -> None:
    site = await store.create_site("Shop")
    visitor = await store.create_visitor(site.id)
    cart = {"items": 2, "total": 19.5, "currency": "EUR"}
    await store.update_visitor(visitor.id, attributes={"plan": "pro", "vip": True, "cart": cart})
    got = await store.update_visitor(visitor.id, attributes={"vip": None, "age": 41})
    assert got.attributes == {"plan": "pro", "cart": cart, "age": 41}
    stored = await store.get_visitor(visitor.id)
    assert stored is not None and stored.attributes == got.attributes
    # deleting a key that is not there is no error
    got = await store.update_visitor(visitor.id, attributes={"nope": None})
    assert got.attributes == {"plan": "pro", "cart": cart, "age": 41}


async def test_concurrent_attribute_merges_all_land(store: Store) -> None:
    site = await store.create_site("Shop")
    visitor = await store.create_visitor(site.id)
    await asyncio.gather(
        *(store.update_visitor(visitor.id, attributes={f"k{i}": i}) for i in range(10))
    )
    got = await store.get_visitor(visitor.id)
    assert got is not None and got.attributes == {f"k{i}": i for i in range(10)}


async def test_update_unknown_visitor_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.update_visitor("v_nope", name="x")
    with pytest.raises(NotFound):
        await store.add_page_view("v_nope", "https://shop.test/")


async def test_page_views_newest_first(store: Store) -> None:
    site = await store.create_site("Shop")
    visitor = await store.create_visitor(site.id)
    assert visitor.visits == 0
    assert await store.page_views(visitor.id) == []
    before = time.time()
    first = await store.add_page_view(visitor.id, "https://shop.test/", "Home", "https://x.test/")
    assert before <= first.ts <= time.time()
    assert (first.visitor_id, first.url, first.title, first.referrer, first.visit) == (
        visitor.id,
        "https://shop.test/",
        "Home",
        "https://x.test/",
        1,
    )
    second = await store.add_page_view(visitor.id, "https://shop.test/cart", "Cart", "")
    assert second.visit == 1
    assert await store.page_views(visitor.id) == [second, first]
    assert await store.page_views(visitor.id, limit=1) == [second]
    got = await store.get_visitor(visitor.id)
    assert got is not None and got.visits == 1


async def test_page_view_after_the_gap_starts_a_visit(store: Store) -> None:
    site = await store.create_site("Shop")
    visitor = await store.create_visitor(site.id)
    t = 1_700_000_000.25
    a = await store.add_page_view(visitor.id, "/a", ts=t)
    b = await store.add_page_view(visitor.id, "/b", ts=t + VISIT_GAP)  # not more than the gap
    c = await store.add_page_view(visitor.id, "/c", ts=t + 2 * VISIT_GAP + 1)
    d = await store.add_page_view(visitor.id, "/d", ts=t + 2 * VISIT_GAP + 2)
    assert [v.visit for v in (a, b, c, d)] == [1, 1, 2, 2]
    assert [v.ts for v in await store.page_views(visitor.id)] == [d.ts, c.ts, b.ts, a.ts]
    got = await store.get_visitor(visitor.id)
    assert got is not None and got.visits == 2
    other = await store.create_visitor(site.id)
    assert await store.page_views(other.id) == []


async def test_page_history_is_bounded(store: Store) -> None:
    site = await store.create_site("Shop")
    visitor = await store.create_visitor(site.id)
    for i in range(MAX_PAGE_VIEWS + 5):
        await store.add_page_view(visitor.id, f"/p{i}")
    views = await store.page_views(visitor.id, limit=MAX_PAGE_VIEWS + 100)
    assert len(views) == MAX_PAGE_VIEWS
    assert views[0].url == f"/p{MAX_PAGE_VIEWS + 4}"
    assert views[-1].url == "/p5"


# ---------------------------------------------------------------------------
# conversations
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# entries
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# durability
# ---------------------------------------------------------------------------


async def test_everything_survives_a_restart(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.start()
    try:
        site = await store.create_site(
            "Shop", ["https://shop.example"], SiteSettings(greeting="Hallo"), ["sales"]
        )
        agent = await store.create_agent(site.id, "Ann@example.com", "Ann", "h", capacity=2)
        await store.save_agent(dataclasses.replace(agent, disabled=True))
        visitor = await store.create_visitor(site.id)
        await store.set_last_agent(visitor.id, agent.id)
        old, _ = await store.open_conversation(site.id, visitor.id)
        await say(store, old.id, "old")
        old = await store.update_conversation(old.id, state=ConvState.CLOSED)
        conv, _ = await store.open_conversation(site.id, visitor.id, "sales", offline=True)
        written = [
            (await say(store, conv.id, f"m{i}", cid=f"c{i}", kind=kind))[0]
            for i, kind in enumerate([EntryKind.TEXT, EntryKind.NOTE, EntryKind.TEXT])
        ]
        conv = await store.update_conversation(conv.id, state=ConvState.ACTIVE, agents=[agent.id])
        await store.set_read(conv.id, "visitor", 2)
        saved_agent = await store.get_agent(agent.id)
        saved_visitor = await store.get_visitor(visitor.id)
    finally:
        await store.close()

    reopened = make_store()
    await reopened.start()
    try:
        assert await reopened.get_site(site.id) == site
        assert await reopened.site_by_key(site.key) == site
        assert await reopened.list_sites() == [site]
        assert await reopened.get_agent(agent.id) == saved_agent
        assert await reopened.agent_by_email("ann@EXAMPLE.com") == saved_agent
        assert await reopened.list_agents(site.id) == [saved_agent]
        assert await reopened.get_visitor(visitor.id) == saved_visitor
        assert await reopened.get_conversation(old.id) == old
        assert await reopened.get_conversation(conv.id) == conv
        assert await reopened.current_conversation(visitor.id) == conv
        assert [c.id for c in await reopened.visitor_conversations(visitor.id)] == [
            conv.id,
            old.id,
        ]
        assert await reopened.entries(conv.id) == written
        assert await reopened.set_read(conv.id, "visitor", 0) == 2
        # still one open conversation per visitor, and no reused offsets or cids
        assert await reopened.open_conversation(site.id, visitor.id) == (conv, False)
        entry, dup = await say(reopened, conv.id, "again", cid="c0")
        assert (entry, dup) == (written[0], True)
        entry, dup = await say(reopened, conv.id, "next", cid="c9")
        assert (entry.offset, dup) == (4, False)
        with pytest.raises(StoreError):
            await reopened.create_agent(site.id, "ANN@example.com", "Again", "h")
    finally:
        await reopened.close()


async def test_writes_acknowledged_before_close_are_durable(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    await store.start()
    conv = await new_conv(store)
    await asyncio.gather(*(say(store, conv.id, f"m{i}") for i in range(50)))
    await store.close()
    reopened = make_store()
    await reopened.start()
    try:
        assert [e.offset for e in await reopened.entries(conv.id, limit=100)] == list(range(1, 51))
    finally:
        await reopened.close()


async def test_sqlite_migrates_an_old_file(tmp_path: Path) -> None:
    """A file made before page tracking gains ``visits`` and ``page_views``."""
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE visitors (id TEXT PRIMARY KEY, site_id TEXT NOT NULL,"
        " created_at REAL NOT NULL, name TEXT NOT NULL DEFAULT '',"
        " email TEXT NOT NULL DEFAULT '', attributes TEXT NOT NULL DEFAULT '{}',"
        " last_agent_id TEXT);"
        "INSERT INTO visitors (id, site_id, created_at, name) VALUES ('v_old', 's_1', 1.0, 'Old');"
    )
    db.commit()
    db.close()
    for run in range(2):  # and a second start finds nothing to do
        store = SQLiteStore(path)
        await store.start()
        try:
            got = await store.get_visitor("v_old")
            assert got is not None and (got.name, got.visits) == ("Old", run)
            view = await store.add_page_view("v_old", "/", ts=10.0 + run)
            assert view.visit == 1
        finally:
            await store.close()


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


# ---------------------------------------------------------------------------
# site documents
# ---------------------------------------------------------------------------


async def test_docs_put_get_list_delete(store: Store) -> None:
    site = await store.create_site("Docs")
    other = await store.create_site("Other")
    first = await store.put_doc(site.id, "canned", "hi", {"text": "Hello!", "n": [1, 2]})
    assert first.data == {"text": "Hello!", "n": [1, 2]}
    await asyncio.sleep(0.002)
    await store.put_doc(site.id, "canned", "bye", {"text": "Bye"})
    await store.put_doc(site.id, "trigger", "t1", {"on": True})
    await store.put_doc(other.id, "canned", "hi", {"text": "other site"})

    got = await store.get_doc(site.id, "canned", "hi")
    assert got is not None and got.data["text"] == "Hello!" and got.kind == "canned"
    assert [d.id for d in await store.list_docs(site.id, "canned")] == ["hi", "bye"]
    assert [d.id for d in await store.list_docs(site.id, "trigger")] == ["t1"]
    assert await store.get_doc(site.id, "canned", "missing") is None
    assert await store.list_docs(site.id, "nothing") == []

    await asyncio.sleep(0.002)
    replaced = await store.put_doc(site.id, "canned", "hi", {"text": "Hi again"})
    assert replaced.created_at == first.created_at
    assert replaced.updated_at > first.updated_at
    listed = await store.list_docs(site.id, "canned")
    assert [d.id for d in listed] == ["hi", "bye"]  # a replace keeps its place
    assert listed[0].data == {"text": "Hi again"}

    assert await store.delete_doc(site.id, "canned", "hi")
    assert not await store.delete_doc(site.id, "canned", "hi")
    assert [d.id for d in await store.list_docs(site.id, "canned")] == ["bye"]
    other_doc = await store.get_doc(other.id, "canned", "hi")
    assert other_doc is not None and other_doc.data == {"text": "other site"}


async def test_docs_survive_reopen(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.start()
    site = await store.create_site("Docs")
    await store.put_doc(site.id, "canned", "x", {"text": "kept"})
    await store.close()
    again = make_store()
    await again.start()
    try:
        doc = await again.get_doc(site.id, "canned", "x")
        assert doc is not None and doc.data == {"text": "kept"}
    finally:
        await again.close()


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


# widget features: ratings, attachments, tracked events, identity
# ---------------------------------------------------------------------------


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


async def test_attachments(store: Store) -> None:
    site = await store.create_site("Shop")
    before = time.time()
    att = await store.create_attachment(site.id, "visitor:v_1", "cat.png", "image/png", 1234)
    assert att.id.startswith("f_") and att.site_id == site.id
    assert (att.uploader, att.name, att.content_type, att.size, att.conv_id) == (
        "visitor:v_1",
        "cat.png",
        "image/png",
        1234,
        None,
    )
    assert before <= att.created_at <= time.time()
    assert await store.get_attachment(att.id) == att
    assert await store.get_attachment("f_nope") is None
    other = await store.create_attachment(site.id, "agent:a_1", "x.pdf", "application/pdf", 9)
    assert other.id != att.id

    bound = await store.bind_attachment(att.id, "c_1")
    assert bound == dataclasses.replace(att, conv_id="c_1")
    # the first conversation stays
    assert await store.bind_attachment(att.id, "c_2") == bound
    assert await store.get_attachment(att.id) == bound
    with pytest.raises(NotFound):
        await store.bind_attachment("f_nope", "c_1")
    assert await store.get_attachment("f_nope") is None  # not created by the failed bind


async def test_create_visitor_with_an_id_is_idempotent(store: Store) -> None:
    site = await store.create_site("Shop")
    made = await store.create_visitor(site.id, "v_given")
    assert (made.id, made.site_id) == ("v_given", site.id)
    await store.update_visitor(made.id, name="Ann")
    # again, and concurrently: one row, kept as it is
    again = await asyncio.gather(*(store.create_visitor(site.id, "v_given") for _ in range(5)))
    assert {v.name for v in again} == {"Ann"}
    assert {v.created_at for v in again} == {made.created_at}
    assert (await store.get_visitor("v_given")) == again[0]


async def test_attachment_bytes_follow_uploads_binds_and_sweeps(store: Store) -> None:
    site = await store.create_site("Shop")
    other_site = await store.create_site("Other")
    assert await store.attachment_bytes(site.id) == (0, 0)
    a = await store.create_attachment(site.id, "visitor:v_1", "a.png", "image/png", 100)
    b = await store.create_attachment(site.id, "visitor:v_1", "b.png", "image/png", 30)
    c = await store.create_attachment(other_site.id, "visitor:v_2", "c.png", "image/png", 7)
    assert await store.attachment_bytes(site.id) == (130, 130)
    assert await store.attachment_bytes(other_site.id) == (7, 7)
    await store.bind_attachment(a.id, "c_1")
    await store.bind_attachment(a.id, "c_2")  # bound already: counted once
    assert await store.attachment_bytes(site.id) == (30, 130)

    later = time.time() + 1
    listed = await store.unposted_attachments(later)
    assert [x.id for x in listed] == [b.id, c.id]
    assert await store.unposted_attachments(b.created_at) == []  # strictly before
    assert [x.id for x in await store.unposted_attachments(later, limit=1)] == [b.id]

    # a bound attachment is never deleted; an unbound one once, by one caller
    assert await store.delete_unposted_attachment(a.id) is None
    assert await store.get_attachment(a.id) is not None
    results = await asyncio.gather(*(store.delete_unposted_attachment(b.id) for _ in range(5)))
    assert [r for r in results if r is not None] == [b]
    assert await store.get_attachment(b.id) is None
    assert await store.delete_unposted_attachment("f_nope") is None
    assert await store.attachment_bytes(site.id) == (0, 100)
    assert [x.id for x in await store.unposted_attachments(later)] == [c.id]


async def test_concurrent_binds_keep_one_conversation(store: Store) -> None:
    site = await store.create_site("Shop")
    att = await store.create_attachment(site.id, "visitor:v_1", "a.gif", "image/gif", 1)
    results = await asyncio.gather(*(store.bind_attachment(att.id, f"c_{i}") for i in range(8)))
    assert len({r.conv_id for r in results}) == 1


async def test_visitor_events_newest_first_and_bounded(store: Store) -> None:
    from chatserver.store import MAX_VISITOR_EVENTS

    site = await store.create_site("Shop")
    visitor = await store.create_visitor(site.id)
    assert await store.visitor_events(visitor.id) == []
    before = time.time()
    first = await store.add_visitor_event(visitor.id, "signup", {"plan": "pro", "n": 2})
    assert before <= first.ts <= time.time()
    assert (first.visitor_id, first.name, first.props) == (
        visitor.id,
        "signup",
        {"plan": "pro", "n": 2},
    )
    second = await store.add_visitor_event(visitor.id, "cart", {}, ts=1_700_000_000.5)
    assert second.ts == 1_700_000_000.5
    assert await store.visitor_events(visitor.id) == [second, first]
    assert await store.visitor_events(visitor.id, limit=1) == [second]
    assert await store.visitor_events(visitor.id, limit=0) == []
    for i in range(MAX_VISITOR_EVENTS + 3):
        await store.add_visitor_event(visitor.id, f"e{i}", {"i": i})
    events = await store.visitor_events(visitor.id, limit=MAX_VISITOR_EVENTS + 50)
    assert len(events) == MAX_VISITOR_EVENTS
    assert events[0].name == f"e{MAX_VISITOR_EVENTS + 2}"
    assert events[-1].name == "e3"
    other = await store.create_visitor(site.id)
    assert await store.visitor_events(other.id) == []
    with pytest.raises(NotFound):
        await store.add_visitor_event("v_nope", "x", {})


async def test_identity_secret(store: Store) -> None:
    site = await store.create_site("Shop")
    secret = await store.identity_secret(site.id)
    assert len(secret) == 64 and int(secret, 16) >= 0
    assert await store.identity_secret(site.id) == secret  # stable
    other = await store.create_site("Other")
    assert await store.identity_secret(other.id) != secret
    rotated = await store.identity_secret(site.id, rotate=True)
    assert rotated != secret and len(rotated) == 64
    assert await store.identity_secret(site.id) == rotated
    with pytest.raises(NotFound):
        await store.identity_secret("s_nope")
    # the secret is no part of the site record, and saving a site keeps it
    got = await store.get_site(site.id)
    assert got is not None and rotated not in repr(got)
    await store.save_site(dataclasses.replace(got, name="Renamed"))
    assert await store.identity_secret(site.id) == rotated


async def test_identity_secret_is_created_once_under_concurrency(store: Store) -> None:
    site = await store.create_site("Shop")
    secrets = await asyncio.gather(*(store.identity_secret(site.id) for _ in range(8)))
    assert len(set(secrets)) == 1


async def test_set_identity_and_lookup(store: Store) -> None:
    site = await store.create_site("Shop")
    first = await store.create_visitor(site.id)
    second = await store.create_visitor(site.id)
    assert (first.user_id, first.verified) == ("", False)

    unverified = await store.set_identity(first.id, "cust-1", False)
    assert unverified == dataclasses.replace(first, user_id="cust-1")
    assert await store.get_visitor(first.id) == unverified
    assert await store.visitor_by_identity(site.id, "cust-1") is None  # only verified ones

    verified = await store.set_identity(second.id, "cust-1", True)
    assert (verified.user_id, verified.verified) == ("cust-1", True)
    assert await store.visitor_by_identity(site.id, "cust-1") == verified
    # the first verified holder keeps the identity
    await store.set_identity(first.id, "cust-1", True)
    holder = await store.visitor_by_identity(site.id, "cust-1")
    assert holder is not None and holder.id == second.id
    # per site
    other_site = await store.create_site("Other")
    assert await store.visitor_by_identity(other_site.id, "cust-1") is None
    with pytest.raises(NotFound):
        await store.set_identity("v_nope", "x", True)


async def test_concurrent_verified_identities_have_one_holder(store: Store) -> None:
    site = await store.create_site("Shop")
    visitors = [await store.create_visitor(site.id) for _ in range(6)]
    await asyncio.gather(*(store.set_identity(v.id, "cust-9", True) for v in visitors))
    holder = await store.visitor_by_identity(site.id, "cust-9")
    assert holder is not None and holder.id in {v.id for v in visitors}


async def test_widget_features_survive_a_restart(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.start()
    try:
        conv = await new_conv(store)
        await store.update_conversation(conv.id, state=ConvState.CLOSED)
        rated = await store.rate_conversation(conv.id, "poor", "no answer")
        att = await store.bind_attachment(
            (await store.create_attachment(conv.site_id, "x", "a.pdf", "application/pdf", 3)).id,
            conv.id,
        )
        visitor = await store.set_identity(conv.visitor_id, "u1", True)
        event = await store.add_visitor_event(conv.visitor_id, "paid", {"total": 9.5})
        secret = await store.identity_secret(conv.site_id)
    finally:
        await store.close()
    reopened = make_store()
    await reopened.start()
    try:
        assert await reopened.get_conversation(conv.id) == rated
        assert await reopened.get_attachment(att.id) == att
        assert await reopened.get_visitor(visitor.id) == visitor
        assert await reopened.visitor_by_identity(conv.site_id, "u1") == visitor
        assert await reopened.visitor_events(visitor.id) == [event]
        assert await reopened.identity_secret(conv.site_id) == secret
    finally:
        await reopened.close()


async def test_sqlite_migrates_a_file_from_before_the_widget_features(tmp_path: Path) -> None:
    """Old rows gain empty ratings and identities, and a secret on first use."""
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    await store.start()
    site = await store.create_site("Old")
    conv = await new_conv(store)
    await store.close()
    import sqlite3

    db = sqlite3.connect(path)
    for table, column in [
        ("sites", "identity_secret"),
        ("conversations", "rating"),
        ("conversations", "rating_comment"),
        ("conversations", "rated_at"),
        ("visitors", "user_id"),
        ("visitors", "verified"),
    ]:
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.executescript("DROP TABLE attachments; DROP TABLE visitor_events; DROP TABLE identities;")
    db.execute("PRAGMA user_version = 0")  # as files were before numbered migrations
    db.commit()
    db.close()
    store = SQLiteStore(path)
    await store.start()
    try:
        got = await store.get_conversation(conv.id)
        assert got is not None and got.rating is None and got.rating_comment == ""
        visitor = await store.get_visitor(conv.visitor_id)
        assert visitor is not None and (visitor.user_id, visitor.verified) == ("", False)
        secret = await store.identity_secret(site.id)
        assert len(secret) == 64 and await store.identity_secret(site.id) == secret
        assert await store.visitor_events(conv.visitor_id) == []
    finally:
        await store.close()


# ---------------------------------------------------------------------------
# proactive triggers: firings and counters
# ---------------------------------------------------------------------------


async def test_claim_firing_once_per_visitor(store: Store) -> None:
    _, visitor = await site_and_visitor(store)
    claim = dict(visit=1, frequency="visitor", gap=0.0)
    assert await store.claim_firing(visitor.id, "t1", now=100.0, **claim)
    assert not await store.claim_firing(visitor.id, "t1", now=200.0, **claim)
    assert not await store.claim_firing(visitor.id, "t1", now=9e9, **{**claim, "visit": 9})
    assert await store.claim_firing(visitor.id, "t2", now=300.0, **claim)  # another trigger
    firings = await store.trigger_firings(visitor.id)
    assert firings["t1"] == Firing(1, 100.0, False)
    assert firings["t2"] == Firing(1, 300.0, False)
    assert await store.trigger_firings("v_nobody") == {}


async def test_claim_firing_once_per_visit(store: Store) -> None:
    _, visitor = await site_and_visitor(store)
    assert await store.claim_firing(visitor.id, "t", visit=2, frequency="visit", gap=0, now=1.5)
    assert not await store.claim_firing(visitor.id, "t", visit=2, frequency="visit", gap=0, now=9)
    assert not await store.claim_firing(visitor.id, "t", visit=1, frequency="visit", gap=0, now=9)
    assert await store.claim_firing(visitor.id, "t", visit=3, frequency="visit", gap=0, now=10.25)
    assert (await store.trigger_firings(visitor.id))["t"] == Firing(3, 10.25, False)


async def test_claim_firing_with_a_gap(store: Store) -> None:
    _, visitor = await site_and_visitor(store)
    claim = dict(visit=1, frequency="always", gap=60.0)
    assert await store.claim_firing(visitor.id, "t", now=1000.0, **claim)
    assert not await store.claim_firing(visitor.id, "t", now=1059.9, **claim)
    assert await store.claim_firing(visitor.id, "t", now=1060.0, **claim)
    assert (await store.trigger_firings(visitor.id))["t"].at == 1060.0


async def test_concurrent_claims_fire_once(store: Store) -> None:
    """Processes racing for one visitor: exactly one claim wins."""
    _, visitor = await site_and_visitor(store)
    results = await asyncio.gather(
        *(
            store.claim_firing(visitor.id, "t", visit=1, frequency="visit", gap=0, now=5.0 + i)
            for i in range(20)
        )
    )
    assert results.count(True) == 1


async def test_claim_follow_once_per_firing(store: Store) -> None:
    _, visitor = await site_and_visitor(store)
    at = 1795375934.123456
    assert not await store.claim_follow(visitor.id, "t", at)  # never fired
    assert await store.claim_firing(visitor.id, "t", visit=1, frequency="always", gap=0, now=at)
    assert not await store.claim_follow(visitor.id, "t", at + 1)  # not that firing
    results = await asyncio.gather(*(store.claim_follow(visitor.id, "t", at) for _ in range(10)))
    assert results.count(True) == 1
    assert (await store.trigger_firings(visitor.id))["t"] == Firing(1, at, True)
    # A new firing can be followed again.
    assert await store.claim_firing(visitor.id, "t", visit=1, frequency="always", gap=0, now=at + 5)
    assert (await store.trigger_firings(visitor.id))["t"].followed is False
    assert await store.claim_follow(visitor.id, "t", at + 5)


async def test_counters_add_atomically(store: Store) -> None:
    site = await store.create_site("Counting")
    other = await store.create_site("Other")
    assert await store.counters(site.id, "triggers") == {}
    assert await store.add_counter(site.id, "triggers", "t1.fired") == 1
    await asyncio.gather(*(store.add_counter(site.id, "triggers", "t1.fired") for _ in range(30)))
    assert await store.add_counter(site.id, "triggers", "t1.chats", 5) == 5
    await store.add_counter(other.id, "triggers", "t1.fired")
    await store.add_counter(site.id, "reports", "t1.fired", 7)
    assert await store.counters(site.id, "triggers") == {"t1.fired": 31, "t1.chats": 5}
    assert await store.counters(other.id, "triggers") == {"t1.fired": 1}


async def test_firings_and_counters_survive_reopen(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.start()
    site, visitor = await site_and_visitor(store)
    await store.claim_firing(visitor.id, "t", visit=4, frequency="visit", gap=0, now=12.5)
    await store.add_counter(site.id, "triggers", "t.fired", 3)
    await store.close()
    again = make_store()
    await again.start()
    try:
        assert await again.trigger_firings(visitor.id) == {"t": Firing(4, 12.5, False)}
        assert await again.counters(site.id, "triggers") == {"t.fired": 3}
        assert not await again.claim_firing(
            visitor.id, "t", visit=4, frequency="visit", gap=0, now=99.0
        )
    finally:
        await again.close()


# recordings (recordings/): the index of recorded sessions
# ---------------------------------------------------------------------------


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


async def test_claim_recording_creates_once(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    other = await store.create_visitor(site.id)
    claims = await asyncio.gather(
        store.claim_recording("r_abc12345", site.id, visitor.id, "rec/x.seg", 250.0),
        store.claim_recording("r_abc12345", site.id, other.id, "rec/y.seg", 0.0),
    )
    assert claims[0] == claims[1]
    rec = claims[0]
    assert rec.visitor_id in (visitor.id, other.id) and rec.site_id == site.id
    assert (rec.last_seq, rec.events, rec.marks) == (-1, 0, 0)
    assert await store.get_recording("r_abc12345") == rec
    assert await store.get_recording("r_nothing") is None
    # an existing row comes back as it is, whoever asks
    again = await store.claim_recording("r_abc12345", site.id, other.id, "rec/z.seg", 1.0)
    assert again == rec


async def test_recording_batches_apply_once_in_seq_order(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    await store.claim_recording("r_1", site.id, visitor.id, "rec/1.seg", 5000.0)
    page = RecordingMark("page", 1000.0, {"url": "https://shop/a", "title": "A"})
    click = RecordingMark("click", 1500.0, {"selector": "#buy", "text": "Buy"})
    snap = RecordingMark("snapshot", 1000.0, {"offset": 0, "seq": 0, "index": 0})
    first = rec_batch(0, 1000.0, clicks=1, inputs=2, marks=(snap, page, click))
    rec, dup = await store.add_recording_batch("r_1", first)
    assert not dup
    assert (rec.last_seq, rec.events, rec.bytes, rec.raw_bytes) == (0, 10, 500, 4000)
    assert (rec.clicks, rec.inputs, rec.pages, rec.marks) == (1, 2, 1, 3)
    assert (rec.first_ts, rec.last_ts) == (1000.0, 1900.0)
    assert rec.started == pytest.approx(6.0) and rec.ended == pytest.approx(6.9)
    # a resent batch changes nothing
    again, dup = await store.add_recording_batch("r_1", first)
    assert dup and again == rec
    conv = await new_conv(store)
    page2 = RecordingMark("page", 4000.0, {"url": "https://shop/b?x=1", "title": "B"})
    rec, dup = await store.add_recording_batch(
        "r_1", rec_batch(3, 3000.0, marks=(page2,), conv_id=conv.id)
    )
    assert not dup and rec.last_seq == 3 and rec.events == 20 and rec.pages == 2
    assert rec.conv_id == conv.id and rec.duration == pytest.approx(2.9)
    _, dup = await store.add_recording_batch("r_1", rec_batch(2, 2000.0))
    assert dup  # below last_seq: a late copy of something already dropped or stored
    assert await store.get_recording("r_1") == rec
    assert await store.recording_marks("r_1") == [snap, page, click, page2]
    assert await store.recording_marks("r_1", ["page"]) == [page, page2]
    assert await store.recording_marks("r_1", []) == []
    with pytest.raises(NotFound):
        await store.add_recording_batch("r_missing", rec_batch(0, 0.0))


async def test_list_recordings_filters_and_pages(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    other_site, stranger = await site_and_visitor(store)
    second = await store.create_visitor(site.id)
    conv = await new_conv(store)
    made = []
    for i in range(7):
        who = second if i == 6 else visitor
        rec_id = f"r_list{i}"
        await store.claim_recording(rec_id, site.id, who.id, f"rec/{i}.seg", 0.0)
        url = "https://shop/checkout" if i % 2 else "https://shop/home"
        marks = (RecordingMark("page", i * 10_000.0, {"url": url, "title": ""}),)
        batch = rec_batch(
            0,
            i * 10_000.0,
            marks=marks,
            conv_id=conv.id if i == 3 else None,
            last_ts=i * 10_000.0 + i * 1000.0,
        )
        made.append((await store.add_recording_batch(rec_id, batch))[0])
    await store.claim_recording("r_empty", site.id, visitor.id, "rec/e.seg", 0.0)
    await store.claim_recording("r_foreign", other_site.id, stranger.id, "rec/f.seg", 0.0)
    await store.add_recording_batch("r_foreign", rec_batch(0, 1.0))

    async def ids(**kw: Any) -> list[str]:
        return [r.id for r in await store.list_recordings(site.id, **kw)]

    newest_first = [f"r_list{i}" for i in reversed(range(7))]
    assert await ids() == newest_first  # empty and foreign ones are left out
    assert await ids(limit=3) == newest_first[:3]
    page = await store.list_recordings(site.id, limit=3)
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
    assert await store.list_recordings(site.id, limit=0) == []


async def test_expired_and_deleted_recordings(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    for i in range(3):
        await store.claim_recording(f"r_old{i}", site.id, visitor.id, f"rec/{i}.seg", 0.0)
        await store.add_recording_batch(
            f"r_old{i}", rec_batch(0, i * 1000.0, marks=(RecordingMark("click", 1.0),))
        )
    fresh = await store.claim_recording("r_new", site.id, visitor.id, "rec/n.seg", 0.0)
    expired = await store.expired_recordings(site.id, ended_before=2.5)
    assert [r.id for r in expired] == ["r_old0", "r_old1"]
    assert [r.id for r in await store.expired_recordings(site.id, 2.5, limit=1)] == ["r_old0"]
    assert {r.id for r in await store.visitor_recordings(visitor.id)} == {
        "r_old0",
        "r_old1",
        "r_old2",
        "r_new",
    }
    assert await store.delete_recordings(["r_old0", "r_old1", "r_nothing"]) == 2
    assert await store.get_recording("r_old0") is None
    assert await store.recording_marks("r_old0") == []
    assert [r.id for r in await store.list_recordings(site.id)] == ["r_old2"]
    assert [r.id for r in await store.expired_recordings(site.id, 1e12)] == ["r_old2", fresh.id]
    assert {r.id for r in await store.visitor_recordings(visitor.id)} == {"r_old2", "r_new"}
    # a deleted recording can be claimed afresh
    again = await store.claim_recording("r_old0", site.id, visitor.id, "rec/0.seg", 0.0)
    assert again.last_seq == -1 and again.events == 0


async def test_recordings_survive_a_restart(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.start()
    try:
        site, visitor = await site_and_visitor(store)
        await store.claim_recording("r_keep", site.id, visitor.id, "rec/k.seg", 12.5)
        mark = RecordingMark("page", 5.0, {"url": "u", "title": "t"})
        rec, _ = await store.add_recording_batch("r_keep", rec_batch(0, 5.0, marks=(mark,)))
    finally:
        await store.close()
    reopened = make_store()
    await reopened.start()
    try:
        assert await reopened.get_recording("r_keep") == rec
        assert await reopened.recording_marks("r_keep") == [mark]
    finally:
        await reopened.close()


# ---------------------------------------------------------------------------
# agent sessions: generations and revoked session ids
# ---------------------------------------------------------------------------


async def test_session_generation_grows_atomically(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "g@example.com", "G", "h", Role.AGENT, 3, [])
    assert await store.session_generation(agent.id) == 0
    assert await store.session_generation("a_unknown") == 0
    assert await store.end_sessions(agent.id) == 1
    got = await asyncio.gather(*(store.end_sessions(agent.id) for _ in range(20)))
    assert sorted(got) == list(range(2, 22))
    assert await store.session_generation(agent.id) == 21
    # saving the agent (disable, enable, new password) never resets it; disabling raises it
    await store.save_agent(dataclasses.replace(agent, disabled=True))
    await store.save_agent(dataclasses.replace(agent, disabled=False, password_hash="h2"))
    assert await store.session_generation(agent.id) == 22
    assert await store.session_generation("a_other") == 0


async def test_saving_an_agent_without_chat_rights_ends_its_sessions(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "r@example.com", "R", "h", Role.ADMIN, 3, [])
    other = await store.create_agent(site.id, "o@example.com", "O", "h", Role.AGENT, 3, [])
    steps = [  # (the agent as saved, its generation after)
        (dataclasses.replace(agent, role=Role.AGENT), 0),  # still chats
        (dataclasses.replace(agent, role=Role.AGENT, capacity=9), 0),
        (dataclasses.replace(agent, role=Role.ANALYST), 1),  # rights gone
        (dataclasses.replace(agent, role=Role.ANALYST, name="Ana"), 1),  # had none already
        (dataclasses.replace(agent, role=Role.ANALYST, disabled=True), 1),
        (dataclasses.replace(agent, role=Role.AGENT, disabled=True), 1),
        (dataclasses.replace(agent, role=Role.AGENT), 1),  # rights back: nothing ends
        (dataclasses.replace(agent, role=Role.ADMIN, disabled=True), 2),  # rights gone
        (dataclasses.replace(agent, role=Role.ANALYST), 2),
    ]
    for saved, generation in steps:
        await store.save_agent(saved)
        assert await store.get_agent(agent.id) == saved
        assert await store.session_generation(agent.id) == generation, saved
    assert await store.session_generation(other.id) == 0
    # a save refused (taken email) changes nothing, the generation included
    await store.save_agent(dataclasses.replace(agent, role=Role.AGENT))
    with pytest.raises(StoreError):
        await store.save_agent(dataclasses.replace(agent, email=other.email, disabled=True))
    assert await store.session_generation(agent.id) == 2
    assert (await store.get_agent(agent.id)) == dataclasses.replace(agent, role=Role.AGENT)


async def test_revoked_session_until_its_expiry(store: Store) -> None:
    now = time.time()
    assert not await store.session_revoked("sess1")
    await store.revoke_session("sess1", now + 3600)
    assert await store.session_revoked("sess1")
    assert not await store.session_revoked("sess2")
    # revoking again with an earlier time keeps the later one
    await store.revoke_session("sess1", now + 0.5)
    await store.revoke_session("sess3", now + 1.0)
    await store.revoke_session("sess4", now - 10)  # expired already: nothing to keep
    assert not await store.session_revoked("sess4")
    assert await store.session_revoked("sess3")
    deadline = time.monotonic() + 10
    while await store.session_revoked("sess3"):
        assert time.monotonic() < deadline, "the revocation outlived its expiry"
        await asyncio.sleep(0.1)
    assert await store.session_revoked("sess1")
    # a later time extends an earlier one
    await store.revoke_session("sess5", time.time() + 0.5)
    await store.revoke_session("sess5", time.time() + 3600)
    await asyncio.sleep(0.8)
    assert await store.session_revoked("sess5")


async def test_session_revocations_survive_a_restart(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.start()
    try:
        await store.end_sessions("a_keep")
        await store.end_sessions("a_keep")
        await store.revoke_session("sess_keep", time.time() + 3600)
    finally:
        await store.close()
    reopened = make_store()
    await reopened.start()
    try:
        assert await reopened.session_generation("a_keep") == 2
        assert await reopened.session_revoked("sess_keep")
    finally:
        await reopened.close()


# ---------------------------------------------------------------------------
# login throttle and session re-checks
# ---------------------------------------------------------------------------


async def test_throttle_reserves_while_there_is_room(store: Store) -> None:
    t0, window = time.time(), 100.0
    both = ["ip:a", "email:x"]
    assert await store.throttle_wait(both, 3, window, t0) == 0
    assert await store.throttle_wait([], 3, window, t0) == 0
    assert await store.throttle_reserve([], 3, window, t0, "s0") == 0
    assert await store.throttle_reserve(both, 3, window, t0, "s1") == 0
    assert await store.throttle_reserve(both, 3, window, t0 + 1, "s2") == 0
    assert await store.throttle_wait(both, 3, window, t0 + 2) == 0
    assert await store.throttle_reserve(both, 3, window, t0 + 2, "s3") == 0
    # Three in the window: refused until the oldest leaves it, and nothing recorded.
    assert await store.throttle_reserve(["ip:a"], 3, window, t0 + 3, "s4") == pytest.approx(97)
    assert await store.throttle_wait(["ip:a"], 3, window, t0 + 3) == pytest.approx(97)
    assert await store.throttle_wait(["ip:b", "email:x"], 3, window, t0 + 3) == pytest.approx(97)
    assert await store.throttle_wait(["ip:b"], 3, window, t0 + 3) == 0
    assert await store.throttle_wait(["ip:a"], 4, window, t0 + 3) == 0
    # One full key refuses the attempt on every key: ip:b stays empty.
    assert await store.throttle_reserve(["ip:b", "email:x"], 3, window, t0 + 4, "s5") > 0
    assert await store.throttle_wait(["ip:b"], 1, window, t0 + 4) == 0
    # Clearing forgets one key only.
    await store.throttle_clear(["email:x"])
    await store.throttle_clear([])
    assert await store.throttle_wait(["email:x"], 1, window, t0 + 4) == 0
    assert await store.throttle_wait(["ip:a"], 3, window, t0 + 4) == pytest.approx(96)
    # The oldest left the window: room for one more, the wait then runs from s2.
    assert await store.throttle_reserve(["ip:a"], 3, window, t0 + 100.5, "s6") == 0
    assert await store.throttle_wait(["ip:a"], 3, window, t0 + 100.5) == pytest.approx(0.5)
    # The longest wait of the keys is the answer.
    assert await store.throttle_reserve(["ip:c"], 1, window, t0 + 100, "s7") == 0
    assert await store.throttle_reserve(["ip:c", "ip:a"], 1, window, t0 + 102, "s8") == (
        pytest.approx(98.5)
    )


async def test_throttle_release_drops_one_slot(store: Store) -> None:
    now, window = time.time(), 300.0
    for slot in ("one", "two", "three"):
        assert await store.throttle_reserve(["ip:r", "email:r"], 3, window, now, slot) == 0
    assert await store.throttle_reserve(["ip:r"], 3, window, now, "four") > 0
    await store.throttle_release(["ip:r"], "two")
    await store.throttle_release(["ip:r", "ip:none"], "no such slot")
    await store.throttle_release([], "one")
    # Room for exactly one again on ip:r; email:r still holds all three.
    assert await store.throttle_wait(["ip:r"], 3, window, now) == 0
    assert await store.throttle_wait(["email:r"], 3, window, now) == pytest.approx(window)
    assert await store.throttle_reserve(["ip:r"], 3, window, now, "five") == 0
    assert await store.throttle_reserve(["ip:r"], 3, window, now, "six") > 0
    for slot in ("one", "three", "five"):
        await store.throttle_release(["ip:r"], slot)
    assert await store.throttle_wait(["ip:r"], 1, window, now) == 0


async def test_concurrent_reservations_never_exceed_the_limit(store: Store) -> None:
    now = time.time()
    got = await asyncio.gather(
        *(store.throttle_reserve(["ip:z", "email:z"], 10, 300.0, now, f"s{i}") for i in range(60))
    )
    assert sum(1 for wait in got if wait == 0) == 10
    assert all(wait == pytest.approx(300) for wait in got if wait != 0)
    assert await store.throttle_wait(["ip:z"], 10, 300.0, now) == pytest.approx(300)
    assert await store.throttle_wait(["email:z"], 11, 300.0, now) == 0


async def test_throttle_is_shared_by_stores_on_the_same_storage(
    make_store: Callable[[], Store],
) -> None:
    one, two = make_store(), make_store()
    await one.start()
    await two.start()
    try:
        now = time.time()
        assert await one.throttle_reserve(["email:y"], 2, 300.0, now, "a") == 0
        assert await two.throttle_reserve(["email:y"], 2, 300.0, now + 1, "b") == 0
        assert await one.throttle_wait(["email:y"], 2, 300.0, now + 2) == pytest.approx(298)
        assert await two.throttle_reserve(["email:y"], 2, 300.0, now + 2, "c") > 0
        await two.throttle_release(["email:y"], "a")
        assert await one.throttle_wait(["email:y"], 2, 300.0, now + 2) == 0
        await two.throttle_clear(["email:y"])
        assert await one.throttle_wait(["email:y"], 1, 300.0, now + 2) == 0
        # Concurrent reservations through both stores (two connections; for
        # SQLite two writers on one file) still get exactly the limit.
        got = await asyncio.gather(
            *(
                (one, two)[i % 2].throttle_reserve(["ip:w"], 7, 300.0, now, f"w{i}")
                for i in range(40)
            )
        )
        assert sum(1 for wait in got if wait == 0) == 7
    finally:
        await one.close()
        await two.close()


async def test_session_states_in_one_call(store: Store) -> None:
    assert await store.session_states([], []) == ({}, set())
    await store.end_sessions("a_two")
    await store.end_sessions("a_two")
    await store.end_sessions("a_one")
    now = time.time()
    await store.revoke_session("s_gone", now + 3600)
    await store.revoke_session("s_past", now - 1)
    generations, revoked = await store.session_states(
        ["a_two", "a_one", "a_none", "a_two"], ["s_gone", "s_live", "s_past"]
    )
    assert generations == {"a_two": 2, "a_one": 1, "a_none": 0}
    assert revoked == {"s_gone"}
    assert await store.session_states(["a_one"], []) == ({"a_one": 1}, set())
    assert await store.session_states([], ["s_gone"]) == ({}, {"s_gone"})
    # Many at once (more than one SQL statement's parameters).
    many = [f"s_{i}" for i in range(1200)]
    await store.revoke_session("s_1100", now + 3600)
    generations, revoked = await store.session_states([f"a_{i}" for i in range(1200)], many)
    assert len(generations) == 1200 and set(generations.values()) == {0}
    assert revoked == {"s_1100"}


# ---------------------------------------------------------------------------
# read markers: restored on (re)join (docs/read-receipts.md)
# ---------------------------------------------------------------------------


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

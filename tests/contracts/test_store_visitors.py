"""The Store contract: visitors, page views, tracked events and identities (``VisitorStore``).

Every test runs on each backend of ``conftest.FACTORIES``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from chatserver.errors import NotFound
from chatserver.store import MAX_PAGE_VIEWS, VISIT_GAP, Store

pytestmark = pytest.mark.anyio


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


async def test_find_visitors_by_email_or_customer_id(store: Store) -> None:
    """An access or erasure request finds every record of a person (docs/privacy.md)."""
    site = await store.create_site("Shop")
    other = await store.create_site("Other")
    first = await store.update_visitor(
        (await store.create_visitor(site.id)).id, email="Ann@Example.com"
    )
    second = await store.create_visitor(site.id)  # another browser, identified (unverified)
    second = await store.set_identity(second.id, "cust-7", verified=False)
    third = await store.update_visitor((await store.create_visitor(site.id)).id, email="bob@x.io")
    elsewhere = await store.create_visitor(other.id)
    await store.update_visitor(elsewhere.id, email="ann@example.com")
    assert await store.find_visitors(site.id, email="ann@example.COM") == [first]
    assert await store.find_visitors(site.id, user_id="cust-7") == [second]
    both = await store.find_visitors(site.id, email="ann@example.com", user_id="cust-7")
    assert both == [first, second]
    assert await store.find_visitors(site.id) == []
    assert await store.find_visitors(site.id, email="nobody@example.com") == []
    assert third not in both

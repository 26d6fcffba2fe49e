"""The Store contract: trigger firings and counters (``FiringStore``).

Every test runs on each backend of ``conftest.FACTORIES``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from chatserver.store import Store
from chatserver.types import (
    Firing,
)

from .helpers import site_and_visitor

pytestmark = pytest.mark.anyio


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

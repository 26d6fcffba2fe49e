"""The webhook dispatcher over the change feed, on every backend.

Checked with the real stores (``conftest.FACTORIES``): a round turns the
entries an endpoint has not taken into jobs once, whatever reads the feed
again; and on PostgreSQL, where a feed place is taken before its transaction
commits, a change that commits after a later one is still found.
"""

from __future__ import annotations

import pytest

from chatserver.store import Store
from chatserver.store.outbox import FEED_MARGIN
from chatserver.store.postgres import PostgresStore
from chatserver.types import AuthorKind, EntryKind, now
from chatserver.webhooks.dispatcher import Dispatcher
from chatserver.webhooks.endpoints import DEFAULT_EVENTS, Endpoint

from .helpers import site_and_visitor

pytestmark = pytest.mark.anyio


def endpoint(site_id: str, created_at: float = 0.0) -> Endpoint:
    return Endpoint(
        "wh_t", site_id, "https://example.com/", frozenset(DEFAULT_EVENTS), "s", created_at
    )


async def test_each_entry_becomes_one_job_however_often_the_feed_is_read(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    conv, _ = await store.open_conversation(site.id, visitor.id)
    for body in ("a", "b"):
        await store.append(conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", body)
    await store.append(conv.id, EntryKind.NOTE, AuthorKind.AGENT, "a_1", "", "internal")
    by_site = {site.id: [endpoint(site.id)]}
    dispatcher = Dispatcher(store, margin=FEED_MARGIN)  # re-reads behind, as on PostgreSQL
    added, reached = await dispatcher.round(by_site)
    assert (added, reached) == (3, True)  # opened, a, b; the note is not asked for
    again = Dispatcher(store, margin=FEED_MARGIN)  # another process, from the stored position
    assert await again.round(by_site) == (0, True)
    await store.append(conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "c")
    assert await again.round(by_site) == (1, True)
    assert await dispatcher.round(by_site) == (0, True)
    jobs = await store.jobs(site.id, "wh:wh_t:")
    assert sorted(j.seq for j in jobs) == [0, 1, 2, 4]


async def test_entries_before_the_endpoint_are_not_sent(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    conv, _ = await store.open_conversation(site.id, visitor.id)
    await store.append(conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "old")
    made = now()
    await store.append(conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "new")
    dispatcher = Dispatcher(store)
    dispatcher.position = 0
    added, _ = await dispatcher.round({site.id: [endpoint(site.id, made)]})
    (job,) = await store.jobs(site.id, "wh:wh_t:")
    assert added == 1 and job.payload["body"]["entry"]["body"] == "new"


async def test_a_change_committed_late_is_found_on_postgres(postgres_url: str) -> None:
    """A held transaction takes a feed place, a later append commits first and
    the dispatcher passes it; once the held one commits, the margin finds it."""
    import asyncpg

    store = PostgresStore(postgres_url)
    await store.start()
    held = await asyncpg.connect(postgres_url)
    try:
        site, visitor = await site_and_visitor(store)
        other = await store.create_visitor(site.id)
        slow, _ = await store.open_conversation(site.id, visitor.id)
        fast, _ = await store.open_conversation(site.id, other.id)
        dispatcher = Dispatcher(store, margin=FEED_MARGIN)
        by_site = {site.id: [endpoint(site.id)]}
        await dispatcher.round(by_site)
        tx = held.transaction()
        await tx.start()
        await held.fetch(
            "SELECT * FROM chat_append($1, 'text', 'visitor', $2, '', 'late', $3, NULL, NULL,"
            " false, NULL)",
            slow.id,
            visitor.id,
            now(),
        )
        await store.append(fast.id, EntryKind.TEXT, AuthorKind.VISITOR, other.id, "", "early")
        assert await dispatcher.round(by_site) == (2, True)  # fast: opened and "early"
        await tx.commit()
        assert await dispatcher.round(by_site) == (2, True)  # slow: opened and "late"
        bodies = {j.payload["body"].get("entry", {}).get("body") for j in await store.jobs(site.id)}
        assert bodies == {None, "early", "late"}
    finally:
        await held.close()
        await store.close()

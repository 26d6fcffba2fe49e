"""The Store contract: every domain across a restart, and SQLite files from older versions.

Every test runs on each backend of ``conftest.FACTORIES``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from chatserver.errors import StoreError
from chatserver.store import Store
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import (
    ConvState,
    EntryKind,
    SiteSettings,
)

from .helpers import new_conv, say

pytestmark = pytest.mark.anyio


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
    # Nor had it the tables of the numbered steps after the first.
    db.executescript(
        "DROP TABLE recording_chunks; DROP TABLE report_facts; DROP TABLE report_rollups;"
        " DROP TABLE audit_log;"  # (the archive's tables: gone since step 8)
        " DROP TABLE outbox_jobs; DROP TABLE outbox_cursors;"
        " DROP TABLE erased_visitors; DROP INDEX visitors_site; DROP INDEX conv_closed;"
        # the last offset on the row, as before step 9; no feed on the entries
        " DROP INDEX entries_feed; ALTER TABLE entries DROP COLUMN seq;"
        " ALTER TABLE conversations ADD COLUMN last_offset INTEGER NOT NULL DEFAULT 0;"
        " UPDATE conversations SET last_offset ="
        " (SELECT coalesce(max(offset), 0) FROM entries WHERE conv_id = conversations.id);"
    )
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

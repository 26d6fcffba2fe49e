"""Numbered SQLite migrations (chatserver/migrations_sqlite.py) on real files.

The file written by main before numbered migrations is
``fixtures/main-174dc95.db`` (made by ``fixtures/make_main_db.py`` with that
commit's code), with what that code read back from it in the ``.json`` beside.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from chatserver import cli
from chatserver.errors import StoreError
from chatserver.migrations_sqlite import MIGRATIONS, Migration, migrate, version
from chatserver.store import ATTACHMENT_BYTES
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import AuthorKind, EntryKind

from .fixtures.make_main_db import T0, snapshot

FIXTURES = Path(__file__).parent / "fixtures"
MAIN = "174dc95"
LATEST = MIGRATIONS[-1].version


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        found = version(db)
    db.close()
    return found


def schema(path: Path) -> dict[str, Any]:
    """Every table's columns (name, type, not null, default, key) and every index."""
    db = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        out: dict[str, Any] = {
            t: sorted(tuple(c[1:]) for c in db.execute(f"PRAGMA table_info({t})")) for t in tables
        }
        out["indexes"] = sorted(
            (r[0], r[1], " ".join((r[2] or "").split()))  # autoindexes have no SQL
            for r in db.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"
            )
        )
        return out
    finally:
        db.close()


async def fresh_file(path: Path) -> None:
    store = SQLiteStore(path)
    await store.start()
    await store.close()


@pytest.mark.anyio
async def test_a_file_written_by_main_migrates_with_nothing_lost(tmp_path: Path) -> None:
    record = json.loads((FIXTURES / f"main-{MAIN}.json").read_text())
    ids, expected = record["ids"], record["snapshot"]
    path = tmp_path / "chatserver.db"
    shutil.copy(FIXTURES / f"main-{MAIN}.db", path)
    assert user_version(path) == 0  # main did not number its schema
    store = SQLiteStore(path)
    await store.start()
    try:
        got = await snapshot(store, ids)
        assert got.keys() == expected.keys()
        for key in expected:  # one key at a time: a difference names its record
            assert (key, got[key]) == (key, expected[key])
        # the attachment byte counters were kept by main; they are not counted again
        site_id = ids["sites"][0]
        assert tuple(got[f"bytes {site_id}"]) == (99, 1333)
    finally:
        await store.close()
    assert user_version(path) == LATEST
    await fresh_file(tmp_path / "new.db")
    assert schema(path) == schema(tmp_path / "new.db")  # exactly what a new file gets

    # and the migrated file takes new writes of every kind, which survive a restart
    store = SQLiteStore(path)
    await store.start()
    try:
        visitor_id, offline_id = ids["visitors"][0], ids["conversations"][1]
        entry, _ = await store.append(
            offline_id, EntryKind.TEXT, AuthorKind.VISITOR, visitor_id, "Vera", "Still there?"
        )
        assert entry.offset == 2
        dup, duplicate = await store.append(
            offline_id, EntryKind.TEXT, AuthorKind.VISITOR, visitor_id, "Vera", "x", cid="o1"
        )
        assert duplicate and dup.offset == 1  # main's cid index still deduplicates
        view = await store.add_page_view(visitor_id, "/new", ts=T0 + 10_001)
        assert view.visit == 2  # the visit main counted goes on
        attachment = await store.create_attachment(site_id, visitor_id, "a.txt", "text/plain", 1)
        await store.bind_attachment(attachment.id, offline_id)
        assert await store.attachment_bytes(site_id) == (99, 1334)
        conv = await store.set_tags(offline_id, add=["new"])
        assert conv.tags == ("new",)
        site = await store.create_site("New Shop")
    finally:
        await store.close()
    store = SQLiteStore(path)
    await store.start()
    try:
        entries = await store.entries(offline_id)
        assert [(e.offset, e.body) for e in entries] == [(1, "Call me"), (2, "Still there?")]
        assert await store.get_site(site.id) == site
        assert [v.url for v in await store.page_views(visitor_id, 2)] == ["/new", "/again"]
    finally:
        await store.close()


@pytest.mark.anyio
async def test_a_new_file_ends_at_the_latest_version_and_reopening_runs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "chatserver.db"
    caplog.set_level("INFO", logger="chatserver.migrations_sqlite")
    await fresh_file(path)
    assert user_version(path) == LATEST
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: schema version {m.version} ({m.name})" for m in MIGRATIONS
    ]
    caplog.clear()
    before = schema(path)
    assert {"sites", "entries", "counters", "recordings", "throttle"} <= before.keys()
    await fresh_file(path)  # a second start
    assert user_version(path) == LATEST and schema(path) == before
    assert caplog.records == []
    db = sqlite3.connect(path, isolation_level=None)
    try:

        def boom(db: sqlite3.Connection) -> None:
            raise AssertionError("a step of an up-to-date file ran")

        done = [Migration(m.version, m.name, boom) for m in MIGRATIONS]
        assert migrate(db, done) == []
    finally:
        db.close()


@pytest.mark.anyio
async def test_two_stores_starting_on_a_new_file_at_once_both_open_it(tmp_path: Path) -> None:
    path = tmp_path / "chatserver.db"
    await asyncio.gather(fresh_file(path), fresh_file(path))
    assert user_version(path) == LATEST


@pytest.mark.anyio
async def test_a_file_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chatserver.db"
    store = SQLiteStore(path)
    await store.start()
    site = await store.create_site("Shop")
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {LATEST + 1}")
    db.close()
    store = SQLiteStore(path)
    with pytest.raises(StoreError) as refused:
        await store.start()
    message = str(refused.value)
    assert f"schema version {LATEST + 1}" in message
    assert f"up to {LATEST}" in message
    assert "upgrade chatserver" in message and str(path) in message
    with pytest.raises(StoreError, match="not started"):
        await store.get_site(site.id)
    assert user_version(path) == LATEST + 1  # left as it was
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM sites").fetchall() == [("Shop",)]
    db.close()


def test_the_cli_reports_a_newer_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHATSERVER_REDIS_URL", raising=False)
    with sqlite3.connect(tmp_path / "chatserver.db") as db:
        db.execute(f"PRAGMA user_version = {LATEST + 5}")
    db.close()
    assert cli.main(["site", "list", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chatserver: database ")
    assert f"schema version {LATEST + 5}" in err and "upgrade chatserver" in err
    assert "Traceback" not in err


@pytest.mark.anyio
async def test_a_failing_step_leaves_the_file_at_the_version_before(tmp_path: Path) -> None:
    path = tmp_path / "chatserver.db"
    store = SQLiteStore(path)
    await store.start()
    site = await store.create_site("Shop")
    await store.close()

    def half_done(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE webhooks (id TEXT PRIMARY KEY)")
        db.execute("ALTER TABLE sites ADD COLUMN plan TEXT NOT NULL DEFAULT 'free'")
        db.execute("UPDATE sites SET name = 'changed'")
        raise RuntimeError("step 2 failed half-way")

    def whole(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE webhooks (id TEXT PRIMARY KEY)")
        db.execute("ALTER TABLE sites ADD COLUMN plan TEXT NOT NULL DEFAULT 'free'")

    before = schema(path)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(RuntimeError, match="half-way"):
            migrate(db, (*MIGRATIONS, Migration(LATEST + 1, "fails", half_done)))
        assert not db.in_transaction
    finally:
        db.close()
    assert user_version(path) == LATEST and schema(path) == before  # nothing of step 2
    store = SQLiteStore(path)
    await store.start()
    try:
        assert await store.get_site(site.id) == site
    finally:
        await store.close()

    db = sqlite3.connect(path, isolation_level=None)
    try:  # the next start tries the step again
        assert migrate(db, (*MIGRATIONS, Migration(LATEST + 1, "works", whole))) == [LATEST + 1]
        assert db.execute("SELECT plan FROM sites").fetchall() == [("free",)]
    finally:
        db.close()
    assert user_version(path) == LATEST + 1
    with pytest.raises(StoreError, match="upgrade chatserver"):  # and today's code refuses it
        await SQLiteStore(path).start()


def test_migrations_must_be_numbered_in_order(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    try:
        step = MIGRATIONS[0]
        for wrong in [(step, Migration(LATEST + 2, "gap", step.apply)), (step, step)]:
            with pytest.raises(ValueError, match="numbered"):
                migrate(db, wrong)
        assert version(db) == 0
    finally:
        db.close()


@pytest.mark.anyio
async def test_attachment_bytes_of_a_file_from_before_the_counters_are_counted_once(
    tmp_path: Path,
) -> None:
    """A file of a main older than the counters: no ``attachment_bytes`` meta row."""
    record = json.loads((FIXTURES / f"main-{MAIN}.json").read_text())
    site_id, other_id = record["ids"]["sites"]
    path = tmp_path / "chatserver.db"
    shutil.copy(FIXTURES / f"main-{MAIN}.db", path)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM meta WHERE key = 'attachment_bytes'")
        db.execute("DELETE FROM counters WHERE grp = ?", (ATTACHMENT_BYTES,))
    db.close()
    store = SQLiteStore(path)
    await store.start()
    try:
        assert await store.attachment_bytes(site_id) == (99, 1333)
        assert await store.attachment_bytes(other_id) == (7, 7)
        assert await store.counters(site_id, "trigger:t1") == {"fired": 5, "chats": 2}
        # moved by hand, which a second count from the rows would undo
        await store.add_counter(site_id, ATTACHMENT_BYTES, "total_bytes", 1000)
    finally:
        await store.close()
    store = SQLiteStore(path)
    await store.start()
    try:
        assert await store.attachment_bytes(site_id) == (99, 2333)  # counted once only
    finally:
        await store.close()

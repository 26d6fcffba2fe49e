"""Numbered SQLite migrations (chatserver/migrations_sqlite.py) on real files.

Files written by main before numbered migrations: ``fixtures/main-174dc95.db``
(the commit numbered migrations started from) and ``fixtures/main-e026172.db``
(the last before the attachment byte counters), each made by
``fixtures/make_main_db.py`` with that commit's code, and
``fixtures/first-69c0956.db``, the first schema (``make_first_db.py``); with
what the writing code read back from each in the ``.json`` beside.
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
from chatserver.store.common import CID_WINDOW
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import AuthorKind, EntryKind, SiteSettings

from ..fixtures import make_first_db
from ..fixtures.make_main_db import T0, snapshot

FIXTURES = Path(__file__).parents[1] / "fixtures"
MAIN = "174dc95"
BEFORE_COUNTERS = "e026172"
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


def old_file(commit: str, tmp_path: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """A copy of main's file of ``commit``, the ids in it and what main read from it."""
    record = json.loads((FIXTURES / f"main-{commit}.json").read_text())
    path = tmp_path / "chatserver.db"
    shutil.copy(FIXTURES / f"main-{commit}.db", path)
    return path, record["ids"], record["snapshot"]


def newer_defaults(got: Any, expected: Any) -> Any:
    """``got`` without the site settings added since ``expected`` was written, where
    they hold their defaults (an old row reads with the new settings' defaults)."""
    defaults = SiteSettings().to_json()
    if isinstance(got, list) and isinstance(expected, list) and len(got) == len(expected):
        return [newer_defaults(g, e) for g, e in zip(got, expected, strict=True)]
    if not isinstance(got, dict) or not isinstance(expected, dict):
        return got
    out = {k: newer_defaults(v, expected.get(k)) for k, v in got.items()}
    if isinstance(out.get("settings"), dict) and isinstance(expected.get("settings"), dict):
        old = expected["settings"]
        out["settings"] = {
            k: v
            for k, v in out["settings"].items()
            if k in old or k not in defaults or v != defaults[k]
        }
    return out


def bytes_of(expected: dict[str, Any], ids: dict[str, Any], site_id: str) -> tuple[int, int]:
    """A site's (unposted, total) attachment bytes, summed from main's attachment records."""
    records = [expected[f"attachment {a}"] for a in ids["attachments"]]
    mine = [r for r in records if r["site_id"] == site_id]
    return sum(r["size"] for r in mine if r["conv_id"] is None), sum(r["size"] for r in mine)


@pytest.mark.anyio
@pytest.mark.parametrize("commit", [MAIN, BEFORE_COUNTERS])
async def test_a_file_written_by_main_migrates_with_nothing_lost(
    tmp_path: Path, commit: str
) -> None:
    path, ids, expected = old_file(commit, tmp_path)
    assert user_version(path) == 0  # main did not number its schema
    store = SQLiteStore(path)
    await store.start()
    try:
        got = await snapshot(store, ids)
        assert got.keys() == expected.keys()
        counted_now = "attachment_bytes" not in ids["methods"]  # a file older than them
        for key in expected:  # one key at a time: a difference names its record
            if counted_now and key.endswith(f" {ATTACHMENT_BYTES}"):
                continue  # the counters step 1 fills: checked below
            assert (key, newer_defaults(got[key], expected[key])) == (key, expected[key])
        # kept by main since they exist, counted from the rows for older files
        for site_id in ids["sites"]:
            assert await store.attachment_bytes(site_id) == bytes_of(expected, ids, site_id)
        site_id = ids["sites"][0]
        unposted, total = bytes_of(expected, ids, site_id)
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
        assert await store.attachment_bytes(site_id) == (unposted, total + 1)
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


def assert_holds(got: Any, old: Any, where: str) -> None:
    """``got`` has every value of ``old`` (records may have gained fields since)."""
    if isinstance(old, dict):
        assert isinstance(got, dict) and old.keys() <= got.keys(), where
        for key, value in old.items():
            assert_holds(got[key], value, f"{where}.{key}")
    elif isinstance(old, list):
        assert isinstance(got, list) and len(got) == len(old), where
        for i, (g, o) in enumerate(zip(got, old, strict=True)):
            assert_holds(g, o, f"{where}[{i}]")
    else:
        assert got == old, where


@pytest.mark.anyio
async def test_a_file_of_the_first_schema_gains_everything_since(tmp_path: Path) -> None:
    record = json.loads((FIXTURES / f"first-{make_first_db.COMMIT}.json").read_text())
    ids, expected = record["ids"], record["snapshot"]
    path = tmp_path / "chatserver.db"
    shutil.copy(FIXTURES / f"first-{make_first_db.COMMIT}.db", path)
    store = SQLiteStore(path)
    await store.start()
    try:
        got = await make_first_db.snapshot(store, ids)
        assert got.keys() == expected.keys()
        for key in expected:
            assert_holds(got[key], expected[key], key)
        # what came since reads as its default on the old rows ...
        visitor = got["visitor"]
        assert (visitor["visits"], visitor["user_id"], visitor["verified"]) == (0, "", False)
        for conv_id in ids["conversations"]:
            conv = got[f"conv {conv_id}"]
            assert (conv["tags"], conv["rating"], conv["rating_comment"]) == ([], None, "")
        # ... and takes writes
        site_id, visitor_id = ids["site"], ids["visitor"]
        assert (await store.add_page_view(visitor_id, "/", ts=T0)).visit == 1
        assert (await store.set_tags(ids["conversations"][0], add=["old"])).tags == ("old",)
        rated = await store.rate_conversation(ids["conversations"][0], "good")
        assert rated.rating == "good"
        assert len(await store.identity_secret(site_id)) == 64
        attachment = await store.create_attachment(site_id, visitor_id, "a", "text/plain", 5)
        assert attachment.conv_id is None
        assert await store.attachment_bytes(site_id) == (5, 5)
        assert await store.claim_firing(
            visitor_id, "t", visit=1, frequency="visit", gap=0.0, now=T0
        )
        assert await store.end_sessions(ids["agents"][0]) == 1
    finally:
        await store.close()
    assert user_version(path) == LATEST
    await fresh_file(tmp_path / "new.db")
    assert schema(path) == schema(tmp_path / "new.db")


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
    path, ids, expected = old_file(BEFORE_COUNTERS, tmp_path)
    site_id = ids["sites"][0]
    unposted, total = bytes_of(expected, ids, site_id)
    assert total > unposted > 0
    store = SQLiteStore(path)
    await store.start()
    try:
        assert await store.attachment_bytes(site_id) == (unposted, total)
        # moved by hand, which a second count from the rows would undo
        await store.add_counter(site_id, ATTACHMENT_BYTES, "total_bytes", 1000)
    finally:
        await store.close()
    store = SQLiteStore(path)
    await store.start()
    try:
        assert await store.attachment_bytes(site_id) == (unposted, total + 1000)
    finally:
        await store.close()


@pytest.mark.anyio
async def test_login_failures_kept_as_bare_times_by_an_older_main_still_count(
    tmp_path: Path,
) -> None:
    path, ids, _ = old_file(BEFORE_COUNTERS, tmp_path)
    store = SQLiteStore(path)
    await store.start()
    try:
        keys = ids["throttle"]
        assert await store.throttle_wait(keys, 1, 300.0, T0 + 1) == pytest.approx(299.0)
        assert await store.throttle_reserve(keys, 2, 300.0, T0 + 2, "slot-2") == 0
        assert await store.throttle_wait(keys, 2, 300.0, T0 + 3) > 0
        await store.throttle_release(keys, "slot-2")
        assert await store.throttle_wait(keys, 2, 300.0, T0 + 3) == 0
    finally:
        await store.close()


@pytest.mark.anyio
async def test_step_9_gives_each_conversations_feed_place_to_its_newest_entry(
    tmp_path: Path,
) -> None:
    # A file as step 8 left it: the last offset and the feed's place on the row.
    path = tmp_path / "v8.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, MIGRATIONS[:8])
    convs = {"c_a": (3, 7), "c_b": (1, 9), "c_c": (0, 0)}  # id: (last offset, feed place)
    for conv_id, (last, seq) in convs.items():
        db.execute(
            "INSERT INTO conversations (id, site_id, visitor_id, epoch, state, created_at,"
            " queued_at, department, agents, last_offset, offline, closed_at, feed_seq)"
            " VALUES (?, 's_1', ?, 'e', 'active', 1, 1, NULL, '[]', ?, 0, NULL, ?)",
            (conv_id, "v" + conv_id, last, seq),
        )
        for offset in range(1, last + 1):
            db.execute(
                "INSERT INTO entries (conv_id, offset, kind, author_kind, author_id,"
                " author_name, body, ts, cid, data)"
                " VALUES (?, ?, 'text', 'visitor', 'v', 'V', ?, 1, ?, NULL)",
                (conv_id, offset, f"m{offset}", f"k{offset}"),
            )
    db.close()

    store = SQLiteStore(path)
    await store.start()
    try:
        assert user_version(path) == LATEST
        changes = [(c.seq, c.conv_id, c.last_offset) for c in await store.changes(0)]
        assert changes == [(7, "c_a", 3), (9, "c_b", 1)]  # as the rows said
        assert [c.conv_id for c in await store.changes(7)] == ["c_b"]
        assert await store.feed_head() == 9
        for conv_id, (last, _) in convs.items():
            conv = await store.get_conversation(conv_id)
            assert conv is not None and conv.last_offset == last
        # appends go on from there: offsets per conversation, places after the head
        entry, _ = await store.append(
            "c_a", EntryKind.TEXT, AuthorKind.VISITOR, "v", "V", "again", cid="k9"
        )
        first, _ = await store.append("c_c", EntryKind.TEXT, AuthorKind.VISITOR, "v", "V", "hi")
        assert (entry.offset, first.offset) == (4, 1)
        changes = [(c.seq, c.conv_id, c.last_offset) for c in await store.changes(7)]
        assert changes == [(9, "c_b", 1), (10, "c_a", 4), (11, "c_c", 1)]
        assert await store.feed_head() == 11
        dup, duplicate = await store.append(
            "c_a", EntryKind.TEXT, AuthorKind.VISITOR, "v", "V", "m2 again", cid="k2"
        )
        assert duplicate and (dup.offset, dup.body) == (2, "m2")  # the old cids still count
    finally:
        await store.close()


@pytest.mark.anyio
async def test_step_10_looks_for_a_resend_among_the_newest_entries_only(
    tmp_path: Path,
) -> None:
    """SQLite's documented bound since step 10: a resend is found among the
    conversation's newest ``CID_WINDOW`` entries, without an index; one whose
    first copy is older is stored again."""
    path = tmp_path / "v9.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, MIGRATIONS[:9])
    db.close()

    def indexes() -> set[str]:
        return {name for name, _, _ in schema(path)["indexes"]}

    assert "entries_cid" in indexes()
    store = SQLiteStore(path)
    await store.start()
    try:
        assert user_version(path) == LATEST
        assert "entries_cid" not in indexes()
        site = await store.create_site("Shop")
        conv, _ = await store.open_conversation(site.id, "v_1")

        async def say(body: str, cid: str | None, author: str = "v_1") -> tuple[int, bool]:
            entry, dup = await store.append(
                conv.id, EntryKind.TEXT, AuthorKind.VISITOR, author, "V", body, cid=cid
            )
            return entry.offset, dup

        assert await say("old", "k_old") == (1, False)
        assert await say("kept", "k_kept") == (2, False)
        for k in range(CID_WINDOW - 1):
            await say(f"n{k}", None if k % 3 == 0 else f"n{k}")
        # offset 2 is the oldest of the newest CID_WINDOW: still found, and
        # only for its own author; offset 1 is not looked for any more
        assert await say("kept again", "k_kept") == (2, True)
        assert await say("kept, by another", "k_kept", author="a_9") == (CID_WINDOW + 2, False)
        assert await say("old again", "k_old") == (CID_WINDOW + 3, False)
        assert await say("no cid", None) == (CID_WINDOW + 4, False)
    finally:
        await store.close()


@pytest.mark.anyio
async def test_the_feeds_places_are_not_handed_out_again_after_an_erasure(
    tmp_path: Path,
) -> None:
    """SQLite takes the next place from the newest entry's (step 9): erasing the
    conversation that holds the newest places keeps the head in ``meta``, so a
    consumer whose position is past them still sees what comes next."""
    store = SQLiteStore(tmp_path / "feed.db")
    await store.start()
    try:
        site = await store.create_site("Shop")
        kept, _ = await store.open_conversation(site.id, "v_kept")
        gone, _ = await store.open_conversation(site.id, "v_gone")
        for conv, n in ((kept, 1), (gone, 3)):
            for k in range(n):
                await store.append(conv.id, EntryKind.TEXT, AuthorKind.VISITOR, "v", "V", f"{k}")
        head = await store.feed_head()
        assert head == 4
        await store.erase_conversations([gone.id], keep_facts=False)
        assert await store.feed_head() == head  # not back to 1
        entry, _ = await store.append(kept.id, EntryKind.TEXT, AuthorKind.VISITOR, "v", "V", "x")
        assert [(c.seq, c.conv_id, c.last_offset) for c in await store.changes(head)] == [
            (head + 1, kept.id, entry.offset)
        ]
    finally:
        await store.close()
    store = SQLiteStore(tmp_path / "feed.db")  # and after a restart
    await store.start()
    try:
        assert await store.feed_head() == head + 1
    finally:
        await store.close()

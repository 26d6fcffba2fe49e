"""PostgreSQL as the record: the migrations, the engine's errors, the CLI, real servers.

The Store contract itself runs on PostgreSQL in ``tests/contracts/`` (the
``postgres`` factory) and the recordings index in ``test_recordings_index.py``;
here is what only PostgreSQL has.  Every test uses the real server of
``tests/postgres_server.py`` (a schema of its own) and real chatserver
processes where a server is named.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chatserver import migrations_postgres
from chatserver.cli.main import parser
from chatserver.cli.options import config_from
from chatserver.errors import StoreError
from chatserver.security import load_secret_postgres
from chatserver.store.postgres import PostgresStore
from chatserver.types import AuthorKind, EntryKind

from ..conftest import ROOT, Client, Server, seed_store
from ..postgres_server import PostgresServer
from ..redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(postgres_url)
    await s.start()
    yield s
    await s.close()


# -- migrations ------------------------------------------------------------------------------


async def test_migrations_are_recorded_once(store: PostgresStore) -> None:
    rows = await store.fetch("SELECT version, name FROM schema_version ORDER BY version")
    assert [tuple(r) for r in rows] == [(m.version, m.name) for m in migrations_postgres.MIGRATIONS]
    again = PostgresStore(store.url)  # a second process on the same database
    await again.start()
    await again.close()
    assert len(await store.fetch("SELECT version FROM schema_version")) == len(rows)


async def test_concurrent_starts_migrate_once(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(4)]
    await asyncio.gather(*(s.start() for s in stores))
    try:
        rows = await stores[0].fetch("SELECT version FROM schema_version")
        assert [r[0] for r in rows] == [m.version for m in migrations_postgres.MIGRATIONS]
        site = await stores[1].create_site("Shop")
        assert await stores[3].get_site(site.id) == site
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_newer_database_is_refused(store: PostgresStore) -> None:
    async def newer(db: object) -> None:
        await db.execute(  # type: ignore[attr-defined]
            "INSERT INTO schema_version (version, name, applied_at) VALUES (99, 'future', 0)"
        )

    await store.run(newer)
    later = PostgresStore(store.url)
    with pytest.raises(StoreError, match="schema version 99, newer than this chatserver") as err:
        await later.start()
    assert store.url.split(":")[2].split("@")[0] not in str(err.value)  # no password
    with pytest.raises(StoreError, match="not started"):
        await later.get_site("s_x")


async def test_a_failed_step_leaves_the_version_before_it(postgres_url: str) -> None:
    async def broken(db: object) -> None:
        await db.execute("CREATE TABLE half_done (x integer)")  # type: ignore[attr-defined]
        await db.execute("SELECT no_such_function()")  # type: ignore[attr-defined]

    latest = migrations_postgres.MIGRATIONS[-1].version
    broken_step = migrations_postgres.Migration(latest + 1, "broken", broken)
    steps = (*migrations_postgres.MIGRATIONS, broken_step)
    import asyncpg

    db = await asyncpg.connect(postgres_url)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await migrations_postgres.migrate(db, steps)
        assert await migrations_postgres.version(db) == latest
        assert await db.fetchval("SELECT to_regclass('half_done')") is None
        assert await migrations_postgres.migrate(db) == []
    finally:
        await db.close()


# -- several processes on one database ---------------------------------------------------------


async def test_two_pools_append_gaplessly_and_open_one_conversation(postgres_url: str) -> None:
    """Two stores (two pools: two processes' worth of connections) on one database."""
    stores = [PostgresStore(postgres_url), PostgresStore(postgres_url)]
    for s in stores:
        await s.start()
    try:
        site = await stores[0].create_site("Shop")
        visitor = await stores[0].create_visitor(site.id)
        opened = await asyncio.gather(
            *(stores[i % 2].open_conversation(site.id, visitor.id) for i in range(20))
        )
        assert len({conv.id for conv, _ in opened}) == 1
        assert sum(created for _, created in opened) == 1
        conv = opened[0][0]
        # 60 appends, every cid sent twice (a client retrying through another process)
        results = await asyncio.gather(
            *(
                stores[i % 2].append(
                    conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "V", "m", f"c{i // 2}"
                )
                for i in range(60)
            )
        )
        fresh = [e for e, dup in results if not dup]
        assert sorted(e.offset for e in fresh) == list(range(1, 31))
        by_cid = {e.cid: e.offset for e in fresh}
        assert all(by_cid[e.cid] == e.offset for e, _ in results)
        assert [e.offset for e in await stores[1].entries(conv.id)] == list(range(1, 31))
    finally:
        for s in stores:
            await s.close()


# -- errors ----------------------------------------------------------------------------------


async def test_a_lost_connection_is_a_clear_store_error(
    store: PostgresStore, postgres_server: PostgresServer
) -> None:
    site = await store.create_site("Shop")
    pids = await store.fetch("SELECT pg_backend_pid()")
    # Cut every connection of the pool from the server's side (a restart or a failover).
    postgres_server.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE pid <> pg_backend_pid() AND usename = 'chat' AND pid = {pids[0][0]}"
    )
    with pytest.raises(StoreError, match="connection lost") as err:
        for _ in range(3):  # the pool holds one connection; bounded all the same
            await store.get_site(site.id)
    assert postgres_server.password not in str(err.value)
    assert "***" in str(err.value)
    assert await store.get_site(site.id) == site  # the pool connects again


async def test_an_unreachable_server_is_a_clear_store_error() -> None:
    url = f"postgresql://chat:s3cret-pw@127.0.0.1:{free_port()}/chat"
    engine = PostgresStore(url)
    with pytest.raises(StoreError, match="connection lost or refused") as err:
        await engine.start()
    assert "s3cret-pw" not in str(err.value) and "chat:***@127.0.0.1" in str(err.value)


def test_not_a_postgres_url() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        PostgresStore("mysql://root:pw@host/db")


# -- configuration -----------------------------------------------------------------------------


def test_database_option_and_its_environment_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://chat:pw@db.internal/chat"
    config = config_from(parser().parse_args(["serve", "--database", url]))
    assert (config.database_url, config.backend) == (url, "postgres")
    config = config_from(parser().parse_args(["serve", "--database", url, "--redis", "redis://r"]))
    assert config.backend == "postgres+redis"
    monkeypatch.setenv("CHATSERVER_DATABASE", url)
    assert config_from(parser().parse_args(["serve"])).database_url == url
    monkeypatch.delenv("CHATSERVER_DATABASE")
    assert config_from(parser().parse_args(["serve"])).backend == "embedded"


def test_a_bad_database_url_is_refused_without_its_password(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatserver.cli", "serve", "--database", "mysql://u:hunter2@h/d"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "not a PostgreSQL URL" in done.stderr and "hunter2" not in done.stderr


async def test_the_server_secret_is_made_once_and_shared(postgres_url: str) -> None:
    first = await asyncio.to_thread(load_secret_postgres, postgres_url)
    assert len(first) == 32
    assert load_secret_postgres(postgres_url) == first  # also with a loop running


def test_a_server_that_cannot_reach_its_database_says_so(tmp_path: Path) -> None:
    url = f"postgresql://chat:s3cret-pw@127.0.0.1:{free_port()}/chat"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "chatserver.cli", "serve", "--port", str(free_port())),
            *("--data", str(tmp_path), "--database", url),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "connection lost or refused" in done.stderr and "s3cret-pw" not in done.stderr


# -- real servers ----------------------------------------------------------------------------


@pytest.mark.usefixtures("close_clients")
async def test_a_visitor_and_an_agent_chat_on_a_postgres_server(
    tmp_path: Path, postgres_url: str, postgres_server: PostgresServer
) -> None:
    seeding = PostgresStore(postgres_url)
    await seeding.start()
    try:
        shop = await seed_store(seeding)
    finally:
        await seeding.close()
    server = Server(tmp_path / "server", "--database", postgres_url, "--log-level", "info")
    server.start()
    try:
        (email,) = shop.agents
        agent = await Client.agent(server, email, codec="msgpack")
        visitor = await Client.visitor(server, shop.key)
        ack = await visitor.request({"t": "send", "cid": "1", "body": "hello postgres"})
        conv = ack["conv"]
        await agent.expect(
            "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active"
        )
        await agent.request({"t": "send", "conv": conv, "cid": "r1", "body": "hello visitor"})
        await visitor.expect("msg", lambda f: f["body"] == "hello visitor")
        # Acknowledged means committed: both are in the database now.
        reader = PostgresStore(postgres_url)
        await reader.start()
        try:
            bodies = [e.body for e in await reader.entries(conv)]
        finally:
            await reader.close()
        assert "hello postgres" in bodies and "hello visitor" in bodies
        # kill -9 and start again: the record and the signing secret are the database's
        server.kill()
        server.start()
        again = await Client.visitor(server, shop.key, token=visitor.welcome["token"])
        assert again.welcome["conv"] == conv
        page = await again.request({"t": "history", "conv": conv, "since": 0})
        history = [m["body"] for m in page["messages"]]
        assert history.index("hello postgres") < history.index("hello visitor"), history
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"{server.url}/healthz")).json()
        assert health["backend"] == "postgres"
    finally:
        server.stop()
    log = server.log.read_text()
    assert postgres_server.password not in log


@pytest.mark.usefixtures("close_clients")
async def test_two_processes_share_postgres_and_redis(
    tmp_path: Path, postgres_url: str, redis: RedisServer
) -> None:
    seeding = PostgresStore(postgres_url)
    await seeding.start()
    try:
        shop = await seed_store(seeding)
    finally:
        await seeding.close()
    procs = [
        Server(tmp_path / f"p{i}", "--database", postgres_url, "--redis", redis.url)
        for i in range(2)
    ]
    try:
        for p in procs:
            p.start()
        (email,) = shop.agents
        agent = await Client.agent(procs[1], email)
        visitor = await Client.visitor(procs[0], shop.key)
        ack = await visitor.request({"t": "send", "cid": "1", "body": "from A"})
        conv = ack["conv"]
        await agent.expect(
            "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active"
        )
        await agent.request({"t": "send", "conv": conv, "cid": "r", "body": "from B"})
        await visitor.expect("msg", lambda f: f["body"] == "from B")
        # A token signed by process A is good on process B: one secret, the database's.
        tab = await Client.visitor(procs[1], shop.key, token=visitor.welcome["token"])
        assert tab.welcome["conv"] == conv
    finally:
        for p in procs:
            p.stop()

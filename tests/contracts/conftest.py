"""The ``Store`` contract (see the docstrings in ``chatserver/store/``), for every backend.

Add a backend by adding a factory to ``FACTORIES``: it gets the test's
``tmp_path`` and the pytest request (for fixtures such as the Redis server)
and returns a new, unstarted store; two stores built from the same path must
see the same data (the durability tests reopen the store that way; for Redis
the "path" is the server's URL and the test's key prefix, for PostgreSQL the
server's URL with the test's own schema).

Each ``test_store_<domain>.py`` here checks one domain's Protocol; the fixtures
below run every test once per backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from chatserver.store import Store
from chatserver.store.postgres import PostgresStore
from chatserver.store_redis import RedisStore
from chatserver.store_sqlite import SQLiteStore

from ..redis_server import RedisServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _redis_store(path: Path, request: pytest.FixtureRequest) -> Store:
    server: RedisServer = request.getfixturevalue("redis_server")
    return RedisStore(server.url, prefix=request.getfixturevalue("redis_prefix"))


def _postgres_store(path: Path, request: pytest.FixtureRequest) -> Store:
    return PostgresStore(request.getfixturevalue("postgres_url"))


FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], Store]] = {
    "sqlite": lambda path, request: SQLiteStore(path / "chat.db"),
    "redis": _redis_store,
    "postgres": _postgres_store,
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

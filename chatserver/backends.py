"""Backends by name: each builds the Store, Broker and Router it needs.

* ``embedded``: SQLite file, everything else in this process's memory (one process);
* ``redis``: Redis for everything (many processes);
* ``postgres``: PostgreSQL is the Store, the rest in memory (one process);
* ``postgres+redis``: PostgreSQL is the Store; Redis carries the broker, the
  router and presence (many processes).
"""

from __future__ import annotations

from collections.abc import Callable

from .broker import Broker
from .broker_memory import MemoryBroker
from .config import Config
from .coordination import coordination_parts, coordination_target
from .presence import Presence
from .presence_memory import MemoryPresence
from .routing import Router
from .routing_memory import MemoryRouter
from .store import Store
from .store_sqlite import SQLiteStore

Parts = tuple[Store, Broker, Router, Presence]


def _embedded(config: Config) -> Parts:
    coordination_target(config, "embedded")  # refuses coordination settings: nothing shared
    store = SQLiteStore(config.data_dir / "chatserver.db", synchronous=config.sqlite_sync)
    return store, MemoryBroker(), MemoryRouter(), MemoryPresence()


def _redis(config: Config) -> Parts:
    from .store_redis import RedisStore

    assert config.redis_url is not None
    return (RedisStore(config.redis_url), *coordination_parts(config, "redis"))


def _postgres(config: Config) -> Parts:
    from .store.postgres import PostgresStore

    coordination_target(config, "embedded")  # refuses Cluster/Sentinel settings: one process
    assert config.database_url is not None
    return PostgresStore(config.database_url), MemoryBroker(), MemoryRouter(), MemoryPresence()


def _postgres_redis(config: Config) -> Parts:
    from .store.postgres import PostgresStore

    assert config.database_url is not None
    # The record is in PostgreSQL: Redis (--redis or --redis-coordination) is
    # coordination only, and may be a Cluster or behind Sentinel.
    return (PostgresStore(config.database_url), *coordination_parts(config, "shared"))


BACKENDS: dict[str, Callable[[Config], Parts]] = {
    "embedded": _embedded,
    "redis": _redis,
    "postgres": _postgres,
    "postgres+redis": _postgres_redis,
}


def build(config: Config) -> Parts:
    return BACKENDS[config.backend](config)

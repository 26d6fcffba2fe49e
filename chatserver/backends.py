"""Backends by name: each builds the Store, Broker and Router it needs."""

from __future__ import annotations

from collections.abc import Callable

from .broker import Broker
from .broker_memory import MemoryBroker
from .config import Config
from .errors import ChatError
from .routing import Router
from .routing_memory import MemoryRouter
from .store import Store
from .store_sqlite import SQLiteStore

Parts = tuple[Store, Broker, Router]


def _embedded(config: Config) -> Parts:
    store = SQLiteStore(config.data_dir / "chatserver.db", synchronous=config.sqlite_sync)
    return store, MemoryBroker(), MemoryRouter()


def _redis(config: Config) -> Parts:
    raise ChatError(
        "the Redis backend (--redis) is not implemented yet; run without --redis "
        "for the embedded backend"
    )


BACKENDS: dict[str, Callable[[Config], Parts]] = {"embedded": _embedded, "redis": _redis}


def build(config: Config) -> Parts:
    return BACKENDS[config.backend](config)

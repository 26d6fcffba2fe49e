"""``RedisStore`` where it always was; it lives in ``chatserver.store.redis`` now
(the client, key prefix, Lua scripts and key layout in ``store/redis/engine.py``,
one module per domain beside it)."""

from __future__ import annotations

from .store.redis import RedisStore

__all__ = ["RedisStore"]

"""``SQLiteStore`` where it always was; it lives in ``chatserver.store.sqlite`` now
(the engine in ``store/sqlite/engine.py``, one module per domain beside it)."""

from __future__ import annotations

from .store.sqlite import SQLiteStore

__all__ = ["SQLiteStore"]

"""``Store`` on SQLite: the engine (``engine``) and one module per domain, composed."""

from __future__ import annotations

from .agents import SQLiteAgents
from .attachments import SQLiteAttachments
from .conversations import SQLiteConversations
from .erasure import SQLiteErasure
from .firings import SQLiteFirings
from .logins import SQLiteLogins
from .outbox import SQLiteOutbox
from .reports import SQLiteReports
from .sites import SQLiteSites
from .visitors import SQLiteVisitors

__all__ = ["SQLiteStore"]


class SQLiteStore(
    SQLiteSites,
    SQLiteAgents,
    SQLiteVisitors,
    SQLiteConversations,
    SQLiteAttachments,
    SQLiteLogins,
    SQLiteFirings,
    SQLiteReports,
    SQLiteOutbox,
    SQLiteErasure,
):
    """The whole ``Store`` on SQLite: every domain's methods over one engine."""

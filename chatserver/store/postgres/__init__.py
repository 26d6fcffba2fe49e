"""``Store`` on PostgreSQL: the engine (``engine``) and one module per domain, composed."""

from __future__ import annotations

from .agents import PostgresAgents
from .attachments import PostgresAttachments
from .conversations import PostgresConversations
from .engine import PostgresEngine
from .erasure import PostgresErasure
from .firings import PostgresFirings
from .logins import PostgresLogins
from .outbox import PostgresOutbox
from .reports import PostgresReports
from .sites import PostgresSites
from .visitors import PostgresVisitors

__all__ = ["PostgresEngine", "PostgresStore"]


class PostgresStore(
    PostgresSites,
    PostgresAgents,
    PostgresVisitors,
    PostgresConversations,
    PostgresAttachments,
    PostgresLogins,
    PostgresFirings,
    PostgresReports,
    PostgresOutbox,
    PostgresErasure,
):
    """The whole ``Store`` on PostgreSQL: every domain's methods over one engine."""

"""``Store`` on Redis: the engine (``engine``) and one module per domain, composed."""

from __future__ import annotations

from .agents import RedisAgents
from .attachments import RedisAttachments
from .conversations import RedisConversations
from .erasure import RedisErasure
from .firings import RedisFirings
from .logins import RedisLogins
from .outbox import RedisOutbox
from .reports import RedisReports
from .sites import RedisSites
from .visitors import RedisVisitors

__all__ = ["RedisStore"]


class RedisStore(
    RedisSites,
    RedisAgents,
    RedisVisitors,
    RedisConversations,
    RedisAttachments,
    RedisLogins,
    RedisFirings,
    RedisReports,
    RedisOutbox,
    RedisErasure,
):
    """The whole ``Store`` on Redis: every domain's methods over one engine."""

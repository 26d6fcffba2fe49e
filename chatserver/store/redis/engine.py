"""The Redis Store: Redis is the system of record.

Keys (every key starts with the store's ``prefix``, ``chat:`` by default;
``*`` marks JSON values, ``[x]`` a field that is absent when the value is
``None``)::

    site:<id>                hash    id key name origins* settings* departments* created_at
    site-key:<key>           string  site id: the unique index of site keys
    sites                    set     every site id
    agent:<id>               hash    id site_id email email_key name password_hash role
                                     capacity departments* disabled created_at
    agent-email:<email key>  string  agent id: the unique index of emails
    agents:<site>            set     the site's agent ids
    visitor:<id>             hash    id site_id created_at name email attributes* [last_agent_id]
                                     [visits] [last_view]
    pages:<visitor>          list    the visitor's newest page views (at most
                                     MAX_PAGE_VIEWS), ``<visit> <view*>``, newest first
    open:<visitor>           string  id of the visitor's open (queued or active) conversation
    visitor-convs:<visitor>  zset    the visitor's conversation ids, scored by created_at
    convs:<state>:<site>     zset    the site's conversations in <state>, scored by queued_at
    conv:<id>                hash    id site_id visitor_id epoch state created_at queued_at
                                     [department] agents* last_offset offline [closed_at]
                                     [epoch_base] [tags*]
    entries:<conv>           stream  entry <offset> has the ID ``<offset>-0``: kind
                                     author_kind author_id author_name body ts [cid] [data*]
    cids:<conv>              hash    ``<len(author)>:<author>:<cid>`` -> offset
    reads:<conv>             hash    reader -> read marker
    docs:<site>:<kind>       hash    document id -> ``{"data", "created_at", "updated_at"}``*
    firings:<visitor>        hash    trigger id -> ``<visit> <at> <followed 0|1>`` (the last firing)
    counters:<site>:<group>  hash    counter name -> integer

Widget features add (site hashes get ``identity_secret``, conversation
hashes ``[rating] [rating_comment] [rated_at]``, visitor hashes
``[user_id] [verified]``)::

    attachment:<id>          hash    id site_id uploader name content_type size created_at
                                     [conv_id]
    unposted-attachments     zset    ids of attachments not yet posted, scored by created_at
                                     (the sweep's index; files stored before it existed are
                                     not in it)
    counters:<site>:attachment-bytes  hash  unposted_bytes total_bytes (kept by the scripts)
    events:<visitor>         list    the visitor's newest tracked events (at most
                                     MAX_VISITOR_EVENTS), ``<event*>``, newest first
    identity:<site>:<user>   string  the visitor holding the verified identity <user>

Agent sessions (revocation) add::

    session-gen:<agent>      string  the agent's session generation (INCR; absent for 0)
    session-revoked:<id>     string  "1" while the session id is revoked; expires (PXAT)
                                     at the session's own expiry

The login throttle adds::

    throttle:<key>           zset    the key's newest attempts (at most ``limit``): slot
                                     names scored by Unix time; expires a window after
                                     the last one

The outbox (``store/outbox.py``; ``append.lua`` writes the feed) adds::

    feed                     zset    conversation ids scored by their place in the change feed
    feed-seq                 string  the feed's last place handed out (INCR)
    outbox-cursors           hash    cursor name -> integer (only raised)
    outbox-job:<id>          hash    id site_id kind key seq payload* state attempts due_at
                                     created_at updated_at last_error
    outbox-key:<key>         zset    pending job ids of an order key, scored by seq
    outbox-due               zset    the head job of each key, scored by due_at
    outbox-site:<site>       zset    the site's job ids by created_at
    outbox-old               zset    done and failed job ids by updated_at (``prune``)

The layout itself has a version::

    layout                   string  the version of this layout (``migrations_redis``):
                                     written on the first start, checked on every start

Features outside the core Store may keep keys of their own under the same
prefix, through the engine's ``client`` and ``key`` (their modules list
those keys); they start with a first segment no key above uses.

The email key is the email stripped and lower-cased.  Each kind of key has a
first segment of its own and the caller-given part last, so no id can turn
one kind's key into another's.  Floats are stored as ``repr`` strings and
round-trip exactly.

Everything that reads before it writes is one Lua script in ``lua/``, so it
is atomic: ``append.lua`` (conversation check, cid deduplication, the next
offset, XADD), ``open_conversation.lua`` (at most one open conversation per
visitor, through ``open:<visitor>``), ``update_conversation.lua`` (fields and
the ``convs:<state>:<site>`` and ``open:<visitor>`` indexes),
``set_read.lua`` (markers only move forward), ``create_site.lua`` and
``put_agent.lua`` (the unique indexes), ``claim_firing.lua`` and
``claim_follow.lua`` (a trigger's frequency), ``update_existing.lua`` (an
update that never creates a row), ``throttle_reserve.lua`` (a login attempt
is checked and recorded on all its keys in one step),
``set_password_hash.lua`` (compare and set), ``outbox.lua`` (jobs, their
order keys and the due index move together) and ``set_layout.lua`` (the
layout version only moves forward, ``migrations_redis``).  Some scripts
derive keys from the prefix (an existing conversation, an agent's old
email), so the store needs one Redis server or a primary with replicas, not
Redis Cluster.

**Epoch.**  A conversation's epoch is set when it is created and stored in
its hash.  It changes when the history is found lost: entries are never
trimmed, so the stream holds exactly the entries ``epoch_base + 1`` to
``last_offset`` (``epoch_base``, absent for 0, is the offset before the
current epoch's first entry), and an append that finds otherwise (the stream
was deleted or replaced, e.g. restored from another backup than the hash)
starts a new epoch with its entry.  Offsets go on after the highest one ever
handed out, never reused; a client resuming with the old epoch gets the
history from the store again instead of a silent gap.

**Durability.**  A write is acknowledged when Redis has replied.  With
``appendonly yes`` and ``appendfsync always`` (recommended, and what the
contract needs) Redis writes and fsyncs its AOF before it replies, so
acknowledged writes survive a restart, a kill -9 of redis-server and a power
cut.  With ``appendfsync everysec`` they survive a clean restart, but a crash
of redis-server or the machine can lose up to a second of them (Redis delays
AOF writes, not replies, while the disk lags), and offsets of lost entries
are handed out again.  Without AOF a restart loses everything since the last
snapshot.  ``start`` logs a warning when the server reports either setting.

**Errors.**  Every failure of Redis (refused connection, timeout, an error
reply) is raised as ``StoreError``, never as a redis-py exception; the hub
turns it into a retryable error frame.  The store never retries a command
itself: a write whose reply was lost may or may not have happened, and only
the caller knows whether it is safe to send again (``append`` with a cid is).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from importlib import resources
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from ... import migrations_redis
from ...errors import StoreError
from ...redact import redact_url, scrub
from ...redis_client import open_client
from .rows import (
    _fields,
)

log = logging.getLogger(__name__)

P = ParamSpec("P")

R = TypeVar("R")

_SCRIPTS = (
    "append",
    "open_conversation",
    "update_conversation",
    "set_read",
    "create_site",
    "put_agent",
    "update_existing",
    "add_page_view",
    "bind_attachment",
    "create_attachment",
    "delete_unposted_attachment",
    "create_visitor",
    "identity_secret",
    "set_identity",
    "claim_firing",
    "claim_follow",
    "throttle_reserve",
    "set_password_hash",
    "outbox",
)


def redis_errors(method: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Raise every Redis failure of ``method`` as ``StoreError``."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis: {exc}") from exc

    return call


_redis_errors = redis_errors  # the name the domain modules here use


class RedisEngine:
    """One Redis client, its key prefix and the Lua scripts (see the module docstring
    for keys and guarantees); every domain module (``sites``, ``agents``, ...)
    subclasses it.

    ``url`` is a redis-py URL (``redis://[[user]:password@]host[:port][/db]``,
    ``rediss://``, ``unix://``); ``prefix`` starts every key, so other data
    (or other tests) can share the database.  ``timeout`` bounds, in
    seconds, connecting, each reply and the wait for one of the
    ``max_connections`` pooled connections; past it a call raises
    ``StoreError``.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "chat:",
        *,
        timeout: float = 5.0,
        max_connections: int = 32,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.max_connections = max_connections
        self._client: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}

    async def start(self) -> None:
        if self._client is not None:
            return
        # No automatic retries: a retried append whose reply was lost could
        # be stored twice; callers retry (with a cid, safely) instead.
        client = open_client(self.url, max_connections=self.max_connections, timeout=self.timeout)
        try:
            await client.ping()
            await self._check_durability(client)
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreError(
                f"cannot reach Redis at {redact_url(self.url)}: {scrub(str(exc), self.url)}"
            ) from exc
        where = f"Redis at {redact_url(self.url)}"
        try:  # the key layout's version: written, checked, stepped (migrations_redis)
            await migrations_redis.migrate(client, self.prefix, where=where)
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreError(
                f"{where}: cannot check the key layout: {scrub(str(exc), self.url)}"
            ) from exc
        except BaseException:
            await client.aclose()
            raise
        lua = resources.files("chatserver") / "lua"
        self._scripts = {
            name: client.register_script((lua / f"{name}.lua").read_text()) for name in _SCRIPTS
        }
        self._client = client

    @staticmethod
    async def _check_durability(client: Redis) -> None:
        try:
            config = _fields(await client.config_get("append*"))
        except ResponseError:  # CONFIG is disabled on some managed servers
            return
        if config.get("appendonly") == "no":
            log.warning(
                "Redis runs without AOF (appendonly no): acknowledged chat messages "
                "are lost when redis-server restarts; set appendonly yes, appendfsync always"
            )
        elif config.get("appendfsync", "always") != "always":
            log.warning(
                "Redis runs with appendfsync %s: a crash of redis-server can lose "
                "acknowledged chat messages; set appendfsync always",
                config["appendfsync"],
            )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @property
    def _redis(self) -> Redis:
        if self._client is None:
            raise StoreError("store is not started")
        return self._client

    @property
    def client(self) -> Redis:
        """The started store's Redis client; ``StoreError`` when it is not started.

        The accessor for store domains kept outside ``chatserver/store/`` (with
        ``key``): wrap their calls in ``redis_errors`` like the domains here.
        """
        return self._redis

    def key(self, kind: str, *parts: str) -> str:
        """The key ``<prefix><kind>:<part>:...`` (see the module docstring)."""
        return self._k(kind, *parts)

    def _k(self, kind: str, *parts: str) -> str:
        return ":".join((f"{self.prefix}{kind}", *parts))

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[str]) -> object:
        script = self._scripts.get(name)
        if script is None or self._client is None:
            raise StoreError("store is not started")
        result: object = await script(keys=keys, args=args)
        return result

    async def _hashes(self, keys: Iterable[str]) -> list[dict[str, str]]:
        """The non-empty hashes among ``keys``, in order, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(key)
            replies = await pipe.execute()
        return [h for h in map(_fields, replies) if h]

    async def _hash(self, key: str) -> dict[str, str]:
        return _fields(await self._redis.hgetall(key))

    @_redis_errors
    async def ping(self) -> None:
        await self._redis.ping()

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
    rec:<id>                 hash    a recording's index row (``Recording`` fields; [conv_id])
    rec-marks:<id>           list    its marks as JSON ``{kind, ts, data}``, in order
    rec-urls:<id>            set     the URLs of its page marks (for the URL filter)
    recs:<site>              zset    the site's recordings with events, scored by started
    recs-ended:<site>        zset    every recording of the site, scored by ended
    visitor-recs:<visitor>   set     the visitor's recording ids
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

The layout itself has a version::

    layout                   string  the version of this layout (``migrations_redis``):
                                     written on the first start, checked on every start

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
``set_password_hash.lua`` (compare and set) and ``set_layout.lua`` (the
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
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from importlib import resources
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError, WatchError

from . import migrations_redis
from .errors import Closed, NotFound, NotMember, StoreError
from .redact import redact_url, scrub
from .redis_client import open_client
from .store import (
    ATTACHMENT_BYTES,
    MAX_PAGE_VIEWS,
    MAX_VISITOR_EVENTS,
    VISIT_GAP,
    apply_batch,
    merge_attributes,
    throttle_delay,
)
from .types import (
    JSON,
    KEEP,
    Agent,
    AgentId,
    Attachment,
    AuthorKind,
    Conversation,
    ConversationId,
    ConvState,
    DepartmentId,
    Doc,
    Entry,
    EntryKind,
    Firing,
    Keep,
    PageView,
    Recording,
    RecordingBatch,
    RecordingId,
    RecordingMark,
    Role,
    Site,
    SiteId,
    SiteSettings,
    Visitor,
    VisitorEvent,
    VisitorId,
    new_id,
    now,
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
)
_BATCH = 200  # stream entries per read when notes are filtered out


def _redis_errors(method: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Raise every Redis failure of ``method`` as ``StoreError``."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis: {exc}") from exc

    return call


# -- encoding ------------------------------------------------------------------


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: object) -> dict[str, str]:
    """A hash as HGETALL returns it (a dict) or a script does (a flat list)."""
    if isinstance(raw, dict):
        return {_text(k): _text(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return {_text(k): _text(v) for k, v in zip(raw[::2], raw[1::2], strict=True)}
    raise StoreError(f"redis: unexpected reply {raw!r}")


def _flat(fields: Mapping[str, str]) -> list[str]:
    return [part for pair in fields.items() for part in pair]


def _status(reply: object) -> tuple[str, list[object]]:
    """A script's ``{status, ...}`` reply."""
    if isinstance(reply, list) and reply:
        return _text(reply[0]), reply[1:]
    raise StoreError(f"redis: unexpected reply {reply!r}")


def _email_key(email: str) -> str:
    return email.strip().lower()


def _cid_field(author_id: str, cid: str) -> str:
    return f"{len(author_id)}:{author_id}:{cid}"


def _limit(limit: int) -> int | None:
    """SQL's LIMIT: a negative limit is no limit."""
    return None if limit < 0 else limit


def _site_fields(site: Site) -> dict[str, str]:
    return {
        "name": site.name,
        "origins": json.dumps(list(site.allowed_origins)),
        "settings": json.dumps(site.settings.to_json()),
        "departments": json.dumps(list(site.departments)),
    }


def _site(h: Mapping[str, str]) -> Site:
    return Site(
        id=h["id"],
        key=h["key"],
        name=h["name"],
        allowed_origins=tuple(json.loads(h["origins"])),
        settings=SiteSettings.from_json(json.loads(h["settings"])),
        departments=tuple(json.loads(h["departments"])),
        created_at=float(h["created_at"]),
    )


def _agent_fields(agent: Agent) -> dict[str, str]:
    """The fields ``save_agent`` overwrites (all but id, site and creation time)."""
    return {
        "email": agent.email,
        "email_key": _email_key(agent.email),
        "name": agent.name,
        "password_hash": agent.password_hash,
        "role": agent.role.value,
        "capacity": str(agent.capacity),
        "departments": json.dumps(list(agent.departments)),
        "disabled": "1" if agent.disabled else "0",
    }


def _agent(h: Mapping[str, str]) -> Agent:
    return Agent(
        id=h["id"],
        site_id=h["site_id"],
        email=h["email"],
        name=h["name"],
        password_hash=h["password_hash"],
        role=Role(h["role"]),
        capacity=int(h["capacity"]),
        departments=tuple(json.loads(h["departments"])),
        disabled=h["disabled"] == "1",
        created_at=float(h["created_at"]),
    )


def _visitor(h: Mapping[str, str]) -> Visitor:
    return Visitor(
        id=h["id"],
        site_id=h["site_id"],
        created_at=float(h["created_at"]),
        name=h.get("name", ""),
        email=h.get("email", ""),
        attributes=json.loads(h.get("attributes", "{}")),
        last_agent_id=h.get("last_agent_id"),
        visits=int(h.get("visits", "0")),
        user_id=h.get("user_id", ""),
        verified=h.get("verified") == "1",
    )


def _conv(h: Mapping[str, str]) -> Conversation:
    closed_at = h.get("closed_at")
    rated_at = h.get("rated_at")
    return Conversation(
        id=h["id"],
        site_id=h["site_id"],
        visitor_id=h["visitor_id"],
        epoch=h["epoch"],
        state=ConvState(h["state"]),
        created_at=float(h["created_at"]),
        queued_at=float(h["queued_at"]),
        department=h.get("department"),
        agents=tuple(json.loads(h["agents"])),
        last_offset=int(h["last_offset"]),
        offline=h["offline"] == "1",
        closed_at=float(closed_at) if closed_at is not None else None,
        tags=tuple(json.loads(h.get("tags", "[]"))),
        rating=h.get("rating"),
        rating_comment=h.get("rating_comment", ""),
        rated_at=float(rated_at) if rated_at is not None else None,
    )


def _attachment(h: Mapping[str, str]) -> Attachment:
    return Attachment(
        id=h["id"],
        site_id=h["site_id"],
        uploader=h["uploader"],
        name=h["name"],
        content_type=h["content_type"],
        size=int(h["size"]),
        created_at=float(h["created_at"]),
        conv_id=h.get("conv_id"),
    )


def _entry(conv_id: ConversationId, offset: int, h: Mapping[str, str]) -> Entry:
    data = h.get("data")
    return Entry(
        conversation_id=conv_id,
        offset=offset,
        kind=EntryKind(h["kind"]),
        author_kind=AuthorKind(h["author_kind"]),
        author_id=h["author_id"],
        author_name=h["author_name"],
        body=h["body"],
        ts=float(h["ts"]),
        cid=h.get("cid"),
        data=json.loads(data) if data else {},
    )


def _offset(stream_id: object) -> int:
    """The offset of the stream entry ``<offset>-0``."""
    return int(_text(stream_id).partition("-")[0])


def _stream_entries(conv_id: ConversationId, rows: Iterable[tuple[object, object]]) -> list[Entry]:
    """Entries from XRANGE rows ``(id, fields)``."""
    return [_entry(conv_id, _offset(sid), _fields(fields)) for sid, fields in rows]


_REC_FLOATS = ("created_at", "skew_ms", "started", "ended", "first_ts", "last_ts")
_REC_INTS = ("last_seq", "events", "bytes", "raw_bytes", "clicks", "inputs", "pages", "marks")


def _rec_fields(rec: Recording) -> dict[str, str]:
    fields = {"id": rec.id, "site_id": rec.site_id, "visitor_id": rec.visitor_id, "blob": rec.blob}
    fields.update({f: repr(float(getattr(rec, f))) for f in _REC_FLOATS})
    fields.update({f: str(getattr(rec, f)) for f in _REC_INTS})
    if rec.conv_id is not None:
        fields["conv_id"] = rec.conv_id
    return fields


def _recording(h: Mapping[str, str]) -> Recording:
    return Recording(
        id=h["id"],
        site_id=h["site_id"],
        visitor_id=h["visitor_id"],
        blob=h["blob"],
        created_at=float(h["created_at"]),
        skew_ms=float(h["skew_ms"]),
        started=float(h["started"]),
        ended=float(h["ended"]),
        first_ts=float(h["first_ts"]),
        last_ts=float(h["last_ts"]),
        last_seq=int(h["last_seq"]),
        events=int(h["events"]),
        bytes=int(h["bytes"]),
        raw_bytes=int(h["raw_bytes"]),
        clicks=int(h["clicks"]),
        inputs=int(h["inputs"]),
        pages=int(h["pages"]),
        marks=int(h["marks"]),
        conv_id=h.get("conv_id"),
    )


def _rec_matches(
    rec: Recording,
    urls: Iterable[str],
    since: float | None,
    until: float | None,
    url: str | None,
    min_duration: float | None,
    had_chat: bool | None,
    before: tuple[float, RecordingId] | None,
) -> bool:
    """``list_recordings``' filters in Python (the SQLite store says them in SQL)."""
    if rec.events <= 0:
        return False
    if since is not None and rec.started < since:
        return False
    if until is not None and rec.started >= until:
        return False
    if url and not any(url in u for u in urls):
        return False
    if min_duration is not None and rec.last_ts - rec.first_ts < min_duration * 1000.0:
        return False
    if had_chat is not None and (rec.conv_id is not None) != had_chat:
        return False
    return before is None or (rec.started, rec.id) < before


# -- the store -----------------------------------------------------------------


class RedisStore:
    """``Store`` on Redis (see the module docstring for keys and guarantees).

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

    # -- lifecycle -------------------------------------------------------

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
        lua = resources.files(__package__) / "lua"
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

    # -- sites -----------------------------------------------------------

    @_redis_errors
    async def create_site(
        self,
        name: str,
        allowed_origins: Sequence[str] = (),
        settings: SiteSettings | None = None,
        departments: Sequence[DepartmentId] = (),
    ) -> Site:
        for _ in range(5):  # a new key when one is taken (never seen in practice)
            site = Site(
                id=new_id("s"),
                key=new_id("pk").replace("_", "")[:24],
                name=name,
                allowed_origins=tuple(allowed_origins),
                settings=settings or SiteSettings(),
                departments=tuple(departments),
                created_at=now(),
            )
            fields = {
                "id": site.id,
                "key": site.key,
                "created_at": repr(site.created_at),
                "identity_secret": secrets.token_hex(32),
                **_site_fields(site),
            }
            created = await self._script(
                "create_site",
                [self._k("site-key", site.key), self._k("site", site.id), self._k("sites")],
                [site.id, *_flat(fields)],
            )
            if created == 1:
                return site
        raise StoreError("could not find a free site key")

    @_redis_errors
    async def get_site(self, site_id: SiteId) -> Site | None:
        h = await self._hash(self._k("site", site_id))
        return _site(h) if h else None

    @_redis_errors
    async def site_by_key(self, key: str) -> Site | None:
        site_id = await self._redis.get(self._k("site-key", key))
        return await self.get_site(_text(site_id)) if site_id is not None else None

    @_redis_errors
    async def save_site(self, site: Site) -> None:
        saved = await self._script(
            "update_existing", [self._k("site", site.id)], _flat(_site_fields(site))
        )
        if saved != 1:
            raise NotFound(f"site {site.id}")

    @_redis_errors
    async def list_sites(self) -> list[Site]:
        ids = await self._redis.smembers(self._k("sites"))
        sites = [_site(h) for h in await self._hashes(self._k("site", _text(i)) for i in ids)]
        return sorted(sites, key=lambda s: (s.created_at, s.id))

    # -- agents ----------------------------------------------------------

    async def _put_agent(self, mode: str, agent: Agent, fields: dict[str, str]) -> None:
        email_key = _email_key(agent.email)
        keys = [self._k("agent", agent.id), self._k("agent-email", email_key)]
        if mode == "create":
            keys.append(self._k("agents", agent.site_id))
        else:  # a save that takes chat rights away raises it
            keys.append(self._k("session-gen", agent.id))
        result = _text(
            await self._script(
                "put_agent",
                keys,
                [mode, agent.id, self._k("agent-email", ""), email_key, *_flat(fields)],
            )
        )
        if result == "taken":
            raise StoreError(f"an agent with email {agent.email!r} exists")
        if result == "missing":
            raise NotFound(f"agent {agent.id}")

    @_redis_errors
    async def create_agent(
        self,
        site_id: SiteId,
        email: str,
        name: str,
        password_hash: str,
        role: Role = Role.AGENT,
        capacity: int = 5,
        departments: Sequence[DepartmentId] = (),
    ) -> Agent:
        agent = Agent(
            id=new_id("a"),
            site_id=site_id,
            email=email.strip(),
            name=name,
            password_hash=password_hash,
            role=role,
            capacity=capacity,
            departments=tuple(departments),
            created_at=now(),
        )
        fields = {
            "id": agent.id,
            "site_id": agent.site_id,
            "created_at": repr(agent.created_at),
            **_agent_fields(agent),
        }
        await self._put_agent("create", agent, fields)
        return agent

    @_redis_errors
    async def get_agent(self, agent_id: AgentId) -> Agent | None:
        h = await self._hash(self._k("agent", agent_id))
        return _agent(h) if h else None

    @_redis_errors
    async def agent_by_email(self, email: str) -> Agent | None:
        agent_id = await self._redis.get(self._k("agent-email", _email_key(email)))
        return await self.get_agent(_text(agent_id)) if agent_id is not None else None

    @_redis_errors
    async def save_agent(self, agent: Agent) -> None:
        await self._put_agent("save", agent, _agent_fields(agent))

    @_redis_errors
    async def set_password_hash(self, agent_id: AgentId, old: str, new: str) -> bool:
        return (
            await self._script("set_password_hash", [self._k("agent", agent_id)], [old, new]) == 1
        )

    @_redis_errors
    async def list_agents(self, site_id: SiteId) -> list[Agent]:
        ids = await self._redis.smembers(self._k("agents", site_id))
        agents = [_agent(h) for h in await self._hashes(self._k("agent", _text(i)) for i in ids)]
        return sorted(agents, key=lambda a: (a.created_at, a.id))

    # -- visitors --------------------------------------------------------

    @_redis_errors
    async def create_visitor(self, site_id: SiteId, visitor_id: VisitorId | None = None) -> Visitor:
        visitor = Visitor(id=visitor_id or new_id("v"), site_id=site_id, created_at=now())
        fields = {
            "id": visitor.id,
            "site_id": site_id,
            "created_at": repr(visitor.created_at),
            "name": visitor.name,
            "email": visitor.email,
            "attributes": json.dumps(visitor.attributes),
        }
        reply = await self._script(
            "create_visitor", [self._k("visitor", visitor.id)], _flat(fields)
        )
        return _visitor(_fields(reply))

    @_redis_errors
    async def get_visitor(self, visitor_id: VisitorId) -> Visitor | None:
        h = await self._hash(self._k("visitor", visitor_id))
        return _visitor(h) if h else None

    @_redis_errors
    async def set_last_agent(self, visitor_id: VisitorId, agent_id: AgentId) -> None:
        # like an SQL UPDATE: nothing happens for an unknown visitor
        await self._script(
            "update_existing", [self._k("visitor", visitor_id)], ["last_agent_id", agent_id]
        )

    @_redis_errors
    async def update_visitor(
        self,
        visitor_id: VisitorId,
        *,
        name: str | None = None,
        email: str | None = None,
        attributes: JSON | None = None,
    ) -> Visitor:
        key = self._k("visitor", visitor_id)
        # optimistic: re-read and retry when another writer changed the hash
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    h = _fields(await pipe.hgetall(key))
                    if not h:
                        raise NotFound(f"no visitor {visitor_id}")
                    if name is not None:
                        h["name"] = name
                    if email is not None:
                        h["email"] = email
                    if attributes:
                        current = json.loads(h.get("attributes", "{}"))
                        h["attributes"] = json.dumps(merge_attributes(current, attributes))
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(
                        key,
                        mapping={f: h[f] for f in ("name", "email", "attributes") if f in h},
                    )
                    await pipe.execute()
                    return _visitor(h)
                except WatchError:
                    continue

    @_redis_errors
    async def add_page_view(
        self,
        visitor_id: VisitorId,
        url: str,
        title: str = "",
        referrer: str = "",
        *,
        ts: float | None = None,
    ) -> PageView:
        at = now() if ts is None else ts
        view = json.dumps({"url": url, "title": title, "referrer": referrer, "ts": repr(at)})
        visit = await self._script(
            "add_page_view",
            [self._k("visitor", visitor_id), self._k("pages", visitor_id)],
            [repr(at), str(VISIT_GAP), str(MAX_PAGE_VIEWS), view],
        )
        if not visit:
            raise NotFound(f"no visitor {visitor_id}")
        return PageView(visitor_id, url, title, referrer, at, int(_text(visit)))

    @_redis_errors
    async def page_views(self, visitor_id: VisitorId, limit: int = 50) -> list[PageView]:
        if limit <= 0:
            return []
        rows = await self._redis.lrange(self._k("pages", visitor_id), 0, limit - 1)
        views = []
        for row in rows:
            visit, data = _text(row).split(" ", 1)
            v = json.loads(data)
            views.append(
                PageView(
                    visitor_id, v["url"], v["title"], v["referrer"], float(v["ts"]), int(visit)
                )
            )
        return views

    # -- conversations ---------------------------------------------------

    @_redis_errors
    async def open_conversation(
        self,
        site_id: SiteId,
        visitor_id: VisitorId,
        department: DepartmentId | None = None,
        offline: bool = False,
    ) -> tuple[Conversation, bool]:
        conv_id = new_id("c")
        t = repr(now())
        fields = {
            "id": conv_id,
            "site_id": site_id,
            "visitor_id": visitor_id,
            "epoch": new_id("e")[2:14],
            "state": ConvState.QUEUED.value,
            "created_at": t,
            "queued_at": t,
            "agents": "[]",
            "last_offset": "0",
            "offline": "1" if offline else "0",
        }
        if department is not None:
            fields["department"] = department
        reply = await self._script(
            "open_conversation",
            [
                self._k("open", visitor_id),
                self._k("conv", conv_id),
                self._k("visitor-convs", visitor_id),
                self._k("convs", ConvState.QUEUED.value, site_id),
            ],
            [self._k("conv", ""), conv_id, t, *_flat(fields)],
        )
        if not (isinstance(reply, list) and len(reply) == 2):
            raise StoreError(f"redis: unexpected reply {reply!r}")
        return _conv(_fields(reply[1])), reply[0] == 1

    @_redis_errors
    async def current_conversation(self, visitor_id: VisitorId) -> Conversation | None:
        conv_id = await self._redis.get(self._k("open", visitor_id))
        if conv_id is None:
            return None
        h = await self._hash(self._k("conv", _text(conv_id)))
        if not h or h["state"] == ConvState.CLOSED.value:
            return None
        return _conv(h)

    @_redis_errors
    async def get_conversation(self, conv_id: ConversationId) -> Conversation | None:
        h = await self._hash(self._k("conv", conv_id))
        return _conv(h) if h else None

    @_redis_errors
    async def update_conversation(
        self,
        conv_id: ConversationId,
        *,
        state: ConvState | None = None,
        agents: Sequence[AgentId] | None = None,
        department: DepartmentId | Keep | None = KEEP,
        queued_at: float | None = None,
    ) -> Conversation:
        closed_at = repr(now()) if state is ConvState.CLOSED else ""
        if department is KEEP:
            dept_mode, dept = "keep", ""
        elif department is None:
            dept_mode, dept = "clear", ""
        else:
            dept_mode, dept = "set", department
        status, rest = _status(
            await self._script(
                "update_conversation",
                [self._k("conv", conv_id)],
                [
                    self.prefix,
                    state.value if state is not None else "",
                    closed_at,
                    json.dumps(list(agents)) if agents is not None else "",
                    dept_mode,
                    dept,
                    repr(float(queued_at)) if queued_at is not None else "",
                ],
            )
        )
        if status == "missing":
            raise NotFound(f"conversation {conv_id}")
        if status == "conflict":
            raise StoreError(
                f"visitor of {conv_id} has another open conversation, {_text(rest[0])}"
            )
        return _conv(_fields(rest[0]))

    @_redis_errors
    async def list_conversations(
        self, site_id: SiteId, states: Sequence[ConvState], limit: int = 500
    ) -> list[Conversation]:
        wanted = {s.value for s in states}
        count = _limit(limit)
        if not wanted or count == 0:
            return []
        async with self._redis.pipeline(transaction=True) as pipe:
            for state in sorted(wanted):
                pipe.zrange(self._k("convs", state, site_id), 0, -1 if count is None else count - 1)
            replies = await pipe.execute()
        ids = [_text(i) for reply in replies for i in reply]
        convs = [_conv(h) for h in await self._hashes(self._k("conv", i) for i in ids)]
        # a conversation may have moved between the two round trips
        convs = [c for c in convs if c.state.value in wanted and c.site_id == site_id]
        convs.sort(key=lambda c: (c.queued_at, c.id))
        return convs[:count]

    @_redis_errors
    async def visitor_conversations(
        self, visitor_id: VisitorId, limit: int = 20
    ) -> list[Conversation]:
        count = _limit(limit)
        if count == 0:
            return []
        stop = -1 if count is None else count - 1
        ids = await self._redis.zrange(self._k("visitor-convs", visitor_id), 0, stop, desc=True)
        return [_conv(h) for h in await self._hashes(self._k("conv", _text(i)) for i in ids)]

    # -- entries ---------------------------------------------------------

    @_redis_errors
    async def append(
        self,
        conv_id: ConversationId,
        kind: EntryKind,
        author_kind: AuthorKind,
        author_id: str,
        author_name: str,
        body: str,
        cid: str | None = None,
        data: JSON | None = None,
        open_only: bool = False,
        member: str | None = None,
    ) -> tuple[Entry, bool]:
        ts = now()
        fields = {
            "kind": kind.value,
            "author_kind": author_kind.value,
            "author_id": author_id,
            "author_name": author_name,
            "body": body,
            "ts": repr(ts),
        }
        if cid is not None:
            fields["cid"] = cid
        if data:
            fields["data"] = json.dumps(data)
        status, rest = _status(
            await self._script(
                "append",
                [self._k("conv", conv_id), self._k("entries", conv_id), self._k("cids", conv_id)],
                [
                    _cid_field(author_id, cid) if cid is not None else "",
                    new_id("e")[2:14],
                    "1" if open_only else "",
                    member or "",
                    *_flat(fields),
                ],
            )
        )
        if status == "missing":
            raise NotFound(f"conversation {conv_id}")
        if status == "stranger":
            raise NotMember(f"{member} is not in conversation {conv_id}", _text(rest[0]))
        if status == "closed":
            raise Closed(f"conversation {conv_id} is closed")
        offset = int(_text(rest[0]))
        if status == "duplicate":
            return _entry(conv_id, offset, _fields(rest[1])), True
        entry = Entry(
            conv_id, offset, kind, author_kind, author_id, author_name, body, ts, cid, data or {}
        )
        return entry, False

    @_redis_errors
    async def entries(
        self,
        conv_id: ConversationId,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 100,
        include_notes: bool = True,
    ) -> list[Entry]:
        count = _limit(limit)
        if count == 0:
            return []
        if after is not None:
            if after >= 2**63 - 1:
                return []
            found = await self._scan(conv_id, max(after + 1, 0), True, count, include_notes)
            return found
        if before is not None and before <= 1:
            return []
        top = None if before is None or before > 2**63 else before - 1
        found = await self._scan(conv_id, top, False, count, include_notes)
        found.reverse()
        return found

    async def _scan(
        self,
        conv_id: ConversationId,
        start: int | None,
        forward: bool,
        count: int | None,
        include_notes: bool,
    ) -> list[Entry]:
        """Up to ``count`` entries from offset ``start`` (None: the end) on, either way."""
        key = self._k("entries", conv_id)
        batch = count if include_notes and count is not None else _BATCH
        found: list[Entry] = []
        while True:
            if forward:
                rows = await self._redis.xrange(key, f"{start}-0", "+", count=batch) or []
            else:
                top = "+" if start is None else f"{start}-0"
                rows = await self._redis.xrevrange(key, top, "-", count=batch) or []
            for entry in _stream_entries(conv_id, rows):
                if include_notes or entry.kind is not EntryKind.NOTE:
                    found.append(entry)
                    if len(found) == count:
                        return found
            if len(rows) < batch:
                return found
            last = _offset(rows[-1][0])
            start = last + 1 if forward else last - 1
            if start < 1:
                return found

    @_redis_errors
    async def set_read(self, conv_id: ConversationId, reader: str, offset: int) -> int:
        marker = await self._script("set_read", [self._k("reads", conv_id)], [reader, str(offset)])
        return int(_text(marker))

    # -- recordings (recordings/) --------------------------------------------

    @_redis_errors
    async def claim_recording(
        self,
        rec_id: RecordingId,
        site_id: SiteId,
        visitor_id: VisitorId,
        blob: str,
        skew_ms: float,
    ) -> Recording:
        key = self._k("rec", rec_id)
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    h = _fields(await pipe.hgetall(key))
                    if h:
                        return _recording(h)
                    t = now()
                    rec = Recording(
                        rec_id, site_id, visitor_id, blob, t, skew_ms, started=t, ended=t
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, items=_flat(_rec_fields(rec)))
                    pipe.zadd(self._k("recs-ended", site_id), {rec_id: rec.ended})
                    pipe.sadd(self._k("visitor-recs", visitor_id), rec_id)
                    await pipe.execute()
                    return rec
                except WatchError:
                    continue

    @_redis_errors
    async def get_recording(self, rec_id: RecordingId) -> Recording | None:
        h = await self._hash(self._k("rec", rec_id))
        return _recording(h) if h else None

    @_redis_errors
    async def add_recording_batch(
        self, rec_id: RecordingId, batch: RecordingBatch
    ) -> tuple[Recording, bool]:
        key = self._k("rec", rec_id)
        marks = [json.dumps({"kind": m.kind, "ts": m.ts, "data": m.data}) for m in batch.marks]
        urls = {str(m.data.get("url", "")) for m in batch.marks if m.kind == "page"}
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    h = _fields(await pipe.hgetall(key))
                    if not h:
                        raise NotFound(f"recording {rec_id}")
                    rec = _recording(h)
                    if batch.seq <= rec.last_seq:
                        return rec, True
                    new = apply_batch(rec, batch)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, items=_flat(_rec_fields(new)))
                    if marks:
                        pipe.rpush(self._k("rec-marks", rec_id), *marks)
                    if urls:
                        pipe.sadd(self._k("rec-urls", rec_id), *urls)
                    if new.events > 0:
                        pipe.zadd(self._k("recs", new.site_id), {rec_id: new.started})
                    pipe.zadd(self._k("recs-ended", new.site_id), {rec_id: new.ended})
                    await pipe.execute()
                    return new, False
                except WatchError:
                    continue

    @_redis_errors
    async def recording_marks(
        self, rec_id: RecordingId, kinds: Sequence[str] | None = None
    ) -> list[RecordingMark]:
        rows = await self._redis.lrange(self._k("rec-marks", rec_id), 0, -1)
        marks = []
        for row in rows:
            m = json.loads(_text(row))
            if kinds is None or m["kind"] in kinds:
                marks.append(RecordingMark(m["kind"], float(m["ts"]), m["data"]))
        return marks

    async def _recordings(
        self, ids: Iterable[object], urls: bool
    ) -> list[tuple[Recording, set[str]]]:
        """Rows (and their page URLs when ``urls``) of ``ids``, in order, in one round trip."""
        keys = [_text(i) for i in ids]
        async with self._redis.pipeline(transaction=False) as pipe:
            for rec_id in keys:
                pipe.hgetall(self._k("rec", rec_id))
                if urls:
                    pipe.smembers(self._k("rec-urls", rec_id))
            replies = await pipe.execute()
        step = 2 if urls else 1
        found = []
        for i in range(0, len(replies), step):
            h = _fields(replies[i])
            if h:
                page_urls = {_text(u) for u in replies[i + 1]} if urls else set()
                found.append((_recording(h), page_urls))
        return found

    @_redis_errors
    async def list_recordings(
        self,
        site_id: SiteId,
        *,
        since: float | None = None,
        until: float | None = None,
        url: str | None = None,
        min_duration: float | None = None,
        had_chat: bool | None = None,
        visitor_id: VisitorId | None = None,
        before: tuple[float, RecordingId] | None = None,
        limit: int = 50,
    ) -> list[Recording]:
        if limit <= 0:
            return []

        def keep(rec: Recording, urls: set[str]) -> bool:
            return rec.site_id == site_id and _rec_matches(
                rec, urls, since, until, url, min_duration, had_chat, before
            )

        if visitor_id is not None:
            members = await self._redis.smembers(self._k("visitor-recs", visitor_id))
            rows = [r for r, u in await self._recordings(members, bool(url)) if keep(r, u)]
            rows.sort(key=lambda r: (r.started, r.id), reverse=True)
            return rows[:limit]
        # Walk the site's recordings newest first, filtering, until the page is full.
        top: float | str = "+inf" if before is None else before[0]
        bottom: float | str = "-inf" if since is None else since
        found: list[Recording] = []
        offset = 0
        while len(found) < limit:
            ids = await self._redis.zrevrangebyscore(
                self._k("recs", site_id), top, bottom, start=offset, num=_BATCH
            )
            if not ids:
                break
            offset += len(ids)
            found.extend(r for r, u in await self._recordings(ids, bool(url)) if keep(r, u))
        return found[:limit]

    @_redis_errors
    async def expired_recordings(
        self, site_id: SiteId, ended_before: float, limit: int = 500
    ) -> list[Recording]:
        if limit <= 0:
            return []
        ids = await self._redis.zrangebyscore(
            self._k("recs-ended", site_id), "-inf", f"({ended_before!r}", start=0, num=limit
        )
        return [r for r, _ in await self._recordings(ids, False)]

    @_redis_errors
    async def visitor_recordings(self, visitor_id: VisitorId) -> list[Recording]:
        ids = await self._redis.smembers(self._k("visitor-recs", visitor_id))
        rows = [r for r, _ in await self._recordings(ids, False)]
        return sorted(rows, key=lambda r: (r.started, r.id), reverse=True)

    @_redis_errors
    async def delete_recordings(self, rec_ids: Sequence[RecordingId]) -> int:
        count = 0
        for rec, _ in await self._recordings(rec_ids, False):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(
                    self._k("rec", rec.id),
                    self._k("rec-marks", rec.id),
                    self._k("rec-urls", rec.id),
                )
                pipe.zrem(self._k("recs", rec.site_id), rec.id)
                pipe.zrem(self._k("recs-ended", rec.site_id), rec.id)
                pipe.srem(self._k("visitor-recs", rec.visitor_id), rec.id)
                await pipe.execute()
            count += 1
        return count

    @_redis_errors
    async def set_tags(
        self,
        conv_id: ConversationId,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Conversation:
        key = self._k("conv", conv_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    h = _fields(await pipe.hgetall(key))
                    if not h:
                        raise NotFound(f"no conversation {conv_id}")
                    current = set(json.loads(h.get("tags", "[]")))
                    h["tags"] = json.dumps(sorted((current | set(add)) - set(remove)))
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, "tags", h["tags"])
                    await pipe.execute()
                    return _conv(h)
                except WatchError:
                    continue

    # -- site documents ----------------------------------------------------

    @_redis_errors
    async def put_doc(self, site_id: SiteId, kind: str, doc_id: str, data: JSON) -> Doc:
        key = self._k("docs", site_id, kind)
        stamp = now()
        # A replace keeps created_at: read-modify-write under WATCH, retried on a race.
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    old = await pipe.hget(key, doc_id)
                    created = json.loads(_text(old))["created_at"] if old else stamp
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(
                        key,
                        doc_id,
                        json.dumps({"data": data, "created_at": created, "updated_at": stamp}),
                    )
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        return Doc(site_id, kind, doc_id, json.loads(json.dumps(data)), created, stamp)

    @_redis_errors
    async def get_doc(self, site_id: SiteId, kind: str, doc_id: str) -> Doc | None:
        raw = await self._redis.hget(self._k("docs", site_id, kind), doc_id)
        return _doc(site_id, kind, doc_id, raw) if raw else None

    @_redis_errors
    async def list_docs(self, site_id: SiteId, kind: str) -> list[Doc]:
        raw = await self._redis.hgetall(self._k("docs", site_id, kind))
        docs = [_doc(site_id, kind, _text(k), v) for k, v in raw.items()]
        docs.sort(key=lambda d: (d.created_at, d.id))
        return docs

    @_redis_errors
    async def delete_doc(self, site_id: SiteId, kind: str, doc_id: str) -> bool:
        return bool(await self._redis.hdel(self._k("docs", site_id, kind), doc_id))

    # -- widget features: ratings, attachments, events, identity ---------

    @_redis_errors
    async def rate_conversation(
        self, conv_id: ConversationId, rating: str, comment: str = ""
    ) -> Conversation:
        fields = ["rating", rating, "rating_comment", comment, "rated_at", repr(now())]
        if await self._script("update_existing", [self._k("conv", conv_id)], fields) != 1:
            raise NotFound(f"conversation {conv_id}")
        return _conv(await self._hash(self._k("conv", conv_id)))

    @_redis_errors
    async def create_attachment(
        self, site_id: SiteId, uploader: str, name: str, content_type: str, size: int
    ) -> Attachment:
        att = Attachment(new_id("f"), site_id, uploader, name, content_type, size, now())
        fields = {
            "id": att.id,
            "site_id": site_id,
            "uploader": uploader,
            "name": name,
            "content_type": content_type,
            "size": str(size),
            "created_at": repr(att.created_at),
        }
        await self._script(
            "create_attachment",
            [
                self._k("attachment", att.id),
                self._k("unposted-attachments"),
                self._k("counters", site_id, ATTACHMENT_BYTES),
            ],
            [att.id, repr(att.created_at), str(size), *_flat(fields)],
        )
        return att

    def _bytes_key_parts(self) -> list[str]:
        """``counters:<site>:attachment-bytes`` around the site id, for scripts."""
        return [self._k("counters", ""), f":{ATTACHMENT_BYTES}"]

    @_redis_errors
    async def attachment_bytes(self, site_id: SiteId) -> tuple[int, int]:
        counts = await self.counters(site_id, ATTACHMENT_BYTES)
        return counts.get("unposted_bytes", 0), counts.get("total_bytes", 0)

    @_redis_errors
    async def unposted_attachments(self, before: float, limit: int = 100) -> list[Attachment]:
        index = self._k("unposted-attachments")
        ids = [
            _text(i)
            for i in await self._redis.zrangebyscore(
                index, "-inf", f"({before!r}", start=0, num=limit
            )
        ]
        async with self._redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hgetall(self._k("attachment", i))
            hashes = [_fields(reply) for reply in await pipe.execute()]
        # An index entry whose record is gone or bound is stale: drop it, or
        # it would fill every batch.
        stale = [i for i, h in zip(ids, hashes, strict=True) if not h or "conv_id" in h]
        if stale:
            await self._redis.zrem(index, *stale)
        return [_attachment(h) for h in hashes if h and "conv_id" not in h]

    @_redis_errors
    async def delete_unposted_attachment(self, attachment_id: str) -> Attachment | None:
        reply = await self._script(
            "delete_unposted_attachment",
            [self._k("attachment", attachment_id), self._k("unposted-attachments")],
            [attachment_id, *self._bytes_key_parts()],
        )
        h = _fields(reply)
        return _attachment(h) if h else None

    @_redis_errors
    async def get_attachment(self, attachment_id: str) -> Attachment | None:
        h = await self._hash(self._k("attachment", attachment_id))
        return _attachment(h) if h else None

    @_redis_errors
    async def bind_attachment(self, attachment_id: str, conv_id: ConversationId) -> Attachment:
        reply = await self._script(
            "bind_attachment",
            [self._k("attachment", attachment_id), self._k("unposted-attachments")],
            [conv_id, attachment_id, *self._bytes_key_parts()],
        )
        h = _fields(reply)
        if not h:
            raise NotFound(f"attachment {attachment_id}")
        return _attachment(h)

    @_redis_errors
    async def add_visitor_event(
        self, visitor_id: VisitorId, name: str, props: JSON, *, ts: float | None = None
    ) -> VisitorEvent:
        event = VisitorEvent(visitor_id, name, props, now() if ts is None else ts)
        if not await self._redis.exists(self._k("visitor", visitor_id)):
            raise NotFound(f"no visitor {visitor_id}")
        key = self._k("events", visitor_id)
        row = json.dumps({"name": name, "props": props, "ts": repr(event.ts)})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, row)
            pipe.ltrim(key, 0, MAX_VISITOR_EVENTS - 1)
            await pipe.execute()
        return event

    @_redis_errors
    async def visitor_events(self, visitor_id: VisitorId, limit: int = 50) -> list[VisitorEvent]:
        if limit <= 0:
            return []
        rows = await self._redis.lrange(self._k("events", visitor_id), 0, limit - 1)
        events = []
        for row in rows:
            e = json.loads(_text(row))
            events.append(VisitorEvent(visitor_id, e["name"], e["props"], float(e["ts"])))
        return events

    @_redis_errors
    async def identity_secret(self, site_id: SiteId, *, rotate: bool = False) -> str:
        reply = await self._script(
            "identity_secret",
            [self._k("site", site_id)],
            [secrets.token_hex(32), "1" if rotate else "0"],
        )
        if not reply:
            raise NotFound(f"site {site_id}")
        return _text(reply)

    @_redis_errors
    async def set_identity(self, visitor_id: VisitorId, user_id: str, verified: bool) -> Visitor:
        site_id = await self._redis.hget(self._k("visitor", visitor_id), "site_id")
        if site_id is None:
            raise NotFound(f"no visitor {visitor_id}")
        reply = await self._script(
            "set_identity",
            [self._k("visitor", visitor_id), self._k("identity", _text(site_id), user_id)],
            [visitor_id, user_id, "1" if verified else "0"],
        )
        h = _fields(reply)
        if not h:
            raise NotFound(f"no visitor {visitor_id}")
        return _visitor(h)

    @_redis_errors
    async def visitor_by_identity(self, site_id: SiteId, user_id: str) -> Visitor | None:
        visitor_id = await self._redis.get(self._k("identity", site_id, user_id))
        return await self.get_visitor(_text(visitor_id)) if visitor_id is not None else None

    # -- proactive triggers: firings and counters --------------------------------

    @_redis_errors
    async def claim_firing(
        self,
        visitor_id: VisitorId,
        trigger_id: str,
        *,
        visit: int,
        frequency: str,
        gap: float,
        now: float,
    ) -> bool:
        reply = await self._script(
            "claim_firing",
            [self._k("firings", visitor_id)],
            [trigger_id, str(visit), frequency, repr(float(gap)), repr(float(now))],
        )
        return bool(reply)

    @_redis_errors
    async def trigger_firings(self, visitor_id: VisitorId) -> dict[str, Firing]:
        found: dict[str, Firing] = {}
        for trigger_id, raw in _fields(
            await self._redis.hgetall(self._k("firings", visitor_id))
        ).items():
            visit, at, followed = raw.split(" ")
            found[trigger_id] = Firing(int(visit), float(at), followed == "1")
        return found

    @_redis_errors
    async def claim_follow(self, visitor_id: VisitorId, trigger_id: str, fired_at: float) -> bool:
        reply = await self._script(
            "claim_follow", [self._k("firings", visitor_id)], [trigger_id, repr(float(fired_at))]
        )
        return bool(reply)

    @_redis_errors
    async def add_counter(self, site_id: SiteId, group: str, name: str, by: int = 1) -> int:
        return int(await self._redis.hincrby(self._k("counters", site_id, group), name, by))

    @_redis_errors
    async def counters(self, site_id: SiteId, group: str) -> dict[str, int]:
        raw = _fields(await self._redis.hgetall(self._k("counters", site_id, group)))
        return {name: int(value) for name, value in raw.items()}

    # -- agent sessions: revocation ------------------------------------------

    @_redis_errors
    async def session_generation(self, agent_id: AgentId) -> int:
        raw = await self._redis.get(self._k("session-gen", agent_id))
        return 0 if raw is None else int(_text(raw))

    @_redis_errors
    async def end_sessions(self, agent_id: AgentId) -> int:
        return int(await self._redis.incr(self._k("session-gen", agent_id)))

    @_redis_errors
    async def revoke_session(self, session_id: str, until: float) -> None:
        at_ms = int(until * 1000)
        if at_ms <= int(now() * 1000):
            return  # expired already: nothing left to revoke
        key = self._k("session-revoked", session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, "1", nx=True, pxat=at_ms)
            pipe.pexpireat(key, at_ms, gt=True)  # revoked before: keep the later time
            await pipe.execute()

    @_redis_errors
    async def session_revoked(self, session_id: str) -> bool:
        return bool(await self._redis.exists(self._k("session-revoked", session_id)))

    # -- login throttle and session re-checks --------------------------------

    @_redis_errors
    async def throttle_wait(
        self, keys: Sequence[str], limit: int, window: float, now: float
    ) -> float:
        if not keys:
            return 0.0
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrangebyscore(self._k("throttle", key), now - window, "+inf", withscores=True)
            replies = await pipe.execute()
        return max(
            throttle_delay((score for _, score in reply), limit, window, now) for reply in replies
        )

    @_redis_errors
    async def throttle_reserve(
        self, keys: Sequence[str], limit: int, window: float, now: float, slot: str
    ) -> float:
        if not keys:
            return 0.0
        blocking = await self._script(
            "throttle_reserve",
            [self._k("throttle", key) for key in dict.fromkeys(keys)],
            [str(limit), str(max(1, int(window * 1000))), repr(now), repr(now - window), slot],
        )
        assert isinstance(blocking, list)
        return max((window - (now - float(_text(oldest))) for oldest in blocking), default=0.0)

    @_redis_errors
    async def throttle_release(self, keys: Sequence[str], slot: str) -> None:
        if not keys:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in dict.fromkeys(keys):
                pipe.zrem(self._k("throttle", key), slot)
            await pipe.execute()

    @_redis_errors
    async def throttle_clear(self, keys: Sequence[str]) -> None:
        if keys:
            await self._redis.delete(*(self._k("throttle", key) for key in keys))

    @_redis_errors
    async def session_states(
        self, agent_ids: Sequence[AgentId], session_ids: Sequence[str]
    ) -> tuple[dict[AgentId, int], set[str]]:
        agents, sessions = list(dict.fromkeys(agent_ids)), list(dict.fromkeys(session_ids))
        async with self._redis.pipeline(transaction=False) as pipe:
            if agents:
                pipe.mget([self._k("session-gen", a) for a in agents])
            if sessions:
                pipe.mget([self._k("session-revoked", s) for s in sessions])
            replies = await pipe.execute() if agents or sessions else []
        generations = {
            agent_id: 0 if raw is None else int(_text(raw))
            for agent_id, raw in zip(agents, replies.pop(0) if agents else [], strict=True)
        }
        revoked = {
            sid
            for sid, raw in zip(sessions, replies.pop(0) if sessions else [], strict=True)
            if raw is not None
        }
        return generations, revoked

    # -- read markers: restored on (re)join ----------------------------------

    @_redis_errors
    async def read_markers(self, conv_id: ConversationId) -> dict[str, int]:
        raw = await self._hash(self._k("reads", conv_id))
        return {reader: int(offset) for reader, offset in raw.items()}

    # -- operations: readiness ----------------------------------------------------

    @_redis_errors
    async def ping(self) -> None:
        await self._redis.ping()


def _doc(site_id: SiteId, kind: str, doc_id: str, raw: object) -> Doc:
    value = json.loads(_text(raw))
    return Doc(site_id, kind, doc_id, value["data"], value["created_at"], value["updated_at"])

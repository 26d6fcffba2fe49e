"""Conversations on Redis (``ConversationStore``): open, update, tag, rate;
append and page entries; read markers."""

from __future__ import annotations

import json
from collections.abc import Sequence

from redis.exceptions import WatchError

from ...errors import Closed, NotFound, NotMember, StoreError
from ...types import (
    JSON,
    KEEP,
    AgentId,
    AuthorKind,
    Conversation,
    ConversationId,
    ConvState,
    DepartmentId,
    Entry,
    EntryKind,
    Keep,
    SiteId,
    VisitorId,
    new_id,
    now,
    sorted_id,
)
from .engine import RedisEngine, _redis_errors
from .rows import (
    _BATCH,
    _cid_field,
    _conv,
    _entry,
    _fields,
    _flat,
    _limit,
    _offset,
    _status,
    _stream_entries,
    _text,
)


class RedisConversations(RedisEngine):
    """``ConversationStore`` on Redis: the methods of its domain over the shared engine."""

    @_redis_errors
    async def open_conversation(
        self,
        site_id: SiteId,
        visitor_id: VisitorId,
        department: DepartmentId | None = None,
        offline: bool = False,
    ) -> tuple[Conversation, bool]:
        conv_id = sorted_id("c")
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
                [
                    self._k("conv", conv_id),
                    self._k("entries", conv_id),
                    self._k("cids", conv_id),
                    self._k("feed"),
                    self._k("feed-seq"),
                ],
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

    @_redis_errors
    async def rate_conversation(
        self, conv_id: ConversationId, rating: str, comment: str = ""
    ) -> Conversation:
        fields = ["rating", rating, "rating_comment", comment, "rated_at", repr(now())]
        if await self._script("update_existing", [self._k("conv", conv_id)], fields) != 1:
            raise NotFound(f"conversation {conv_id}")
        return _conv(await self._hash(self._k("conv", conv_id)))

    @_redis_errors
    async def read_markers(self, conv_id: ConversationId) -> dict[str, int]:
        raw = await self._hash(self._k("reads", conv_id))
        return {reader: int(offset) for reader, offset in raw.items()}

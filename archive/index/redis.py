"""The archive on Redis: no text index, a bounded walk over a site's conversations.

Keys (under the store's prefix)::

    archive:<site>   zset    the site's conversation ids, scored by their
                             archive number (``archive-seq``), newest highest
    archive-seq      string  the last archive number given (INCR)

A search walks ``archive:<site>`` from the cursor down, ``STEP`` ids at a
time, reads each conversation's hash, checks the filters in Python
(``conv_passes``) and, when words were typed, reads its entries and the
visitor's name and e-mail and matches them in Python (``matches_all``: the
same rule as the indexed backends, every word in one text).  It examines at
most ``SCAN_BUDGET`` conversations per page, then answers what it found with
a cursor to go on: the cost of a page grows with the conversations and
messages it has to read, so this is for small archives (thousands of
conversations), not for a large one; use PostgreSQL for that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chatserver.store.redis.engine import RedisEngine, redis_errors
from chatserver.store.redis.rows import _conv, _fields, _offset, _text
from chatserver.types import Conversation, ConversationId, Entry, EntryKind, SiteId

from ..query import MATCHES, ArchiveHit, ArchivePage, ArchiveQuery, conv_passes, matches_all
from .paging import parse_cursor

STEP = 100  # conversations read at a time
SCAN_BUDGET = 2000  # conversations examined per page
MAX_SCAN = 100_000  # SCAN calls of a reindex (each COUNT 1000)
_SEARCHED = {EntryKind.TEXT.value, EntryKind.NOTE.value}


class RedisArchive:
    """The archive over the Redis store (module docstring)."""

    def __init__(self, engine: RedisEngine) -> None:
        self.engine = engine

    async def _ensure(self, conv_id: ConversationId) -> int:
        """Add the conversation to its site's archive if it is not there; 1 if added."""
        r = self.engine.client
        site = await r.hget(self.engine.key("conv", conv_id), "site_id")
        if site is None:
            return 0
        key = self.engine.key("archive", _text(site))
        if await r.zscore(key, conv_id) is None:
            seq = await r.incr(self.engine.key("archive-seq"))
            return 1 if await r.zadd(key, {conv_id: seq}, nx=True) else 0
        return 0

    async def start(self) -> None:
        pass  # the index is keys of the store's own Redis

    async def close(self) -> None:
        pass

    @redis_errors
    async def note_conversation(self, conv_id: ConversationId) -> None:
        await self._ensure(conv_id)

    @redis_errors
    async def note_entry(self, entry: Entry) -> None:
        await self._ensure(entry.conversation_id)

    @redis_errors
    async def note_batch(
        self, conv_ids: Sequence[ConversationId], entries: Sequence[Entry]
    ) -> None:
        for conv_id in dict.fromkeys([*conv_ids, *(e.conversation_id for e in entries)]):
            await self._ensure(conv_id)

    @redis_errors
    async def forget(self, site_id: SiteId, conv_ids: Sequence[ConversationId]) -> int:
        if not conv_ids:
            return 0
        return int(await self.engine.client.zrem(self.engine.key("archive", site_id), *conv_ids))

    @redis_errors
    async def reindex(self) -> int:
        r = self.engine.client
        found: list[tuple[float, str, str]] = []  # created_at, id, site
        cursor = 0
        for _ in range(MAX_SCAN):
            cursor, keys = await r.scan(cursor, match=self.engine.key("conv", "*"), count=1000)
            async with r.pipeline(transaction=False) as pipe:
                for k in keys:
                    pipe.hmget(k, "id", "site_id", "created_at")
                for conv_id, site, created in await pipe.execute():
                    if conv_id is not None and site is not None and created is not None:
                        found.append((float(_text(created)), _text(conv_id), _text(site)))
            if int(cursor) == 0:
                break
        found.sort()
        sites = {site for _, _, site in found}
        async with r.pipeline(transaction=True) as pipe:
            for site in sites:
                pipe.delete(self.engine.key("archive", site))
            for seq, (_, conv_id, site) in enumerate(found, 1):
                pipe.zadd(self.engine.key("archive", site), {conv_id: seq})
            pipe.set(self.engine.key("archive-seq"), len(found))
            await pipe.execute()
        return len(found)

    @redis_errors
    async def catch_up(self, since: float) -> int:
        # Nothing but the membership to mend (searches read the entries): a walk
        # of the conversations, bounded as ``reindex``'s.
        r = self.engine.client
        added = 0
        cursor = 0
        for _ in range(MAX_SCAN):
            cursor, keys = await r.scan(cursor, match=self.engine.key("conv", "*"), count=1000)
            async with r.pipeline(transaction=False) as pipe:
                for k in keys:
                    pipe.hmget(k, "id", "state", "closed_at")
                rows = await pipe.execute()
            for conv_id, state, closed_at in rows:
                if conv_id is None or state is None:
                    continue
                if _text(state) == "closed" and float(_text(closed_at) or 0) < since:
                    continue
                added += await self._ensure(_text(conv_id))
            if int(cursor) == 0:
                break
        return added

    @redis_errors
    async def search(
        self, query: ArchiveQuery, cursor: str | None = None, limit: int = 25
    ) -> ArchivePage:
        below = parse_cursor(cursor)
        r = self.engine.client
        key = self.engine.key("archive", query.site_id)
        wanted = query.words
        hits: list[ArchiveHit] = []
        examined = 0
        while examined < SCAN_BUDGET:
            batch: list[Any] = await r.zrange(
                key, f"({below}", "-inf", byscore=True, desc=True, offset=0, num=STEP,
                withscores=True,
            )  # fmt: skip
            if not batch:
                return ArchivePage(hits, None)
            hashes = await self.engine._hashes(self.engine.key("conv", _text(m)) for m, _ in batch)
            convs = {h["id"]: _conv(h) for h in hashes}
            for member, score in batch:
                examined += 1
                seq = int(score)
                conv = convs.get(_text(member))
                if conv is not None:
                    hit = await self._check(query, conv, wanted)
                    if hit is not None:
                        if len(hits) == limit:
                            return ArchivePage(hits, str(seq + 1))
                        hits.append(hit)
                below = seq
            if len(batch) < STEP:
                return ArchivePage(hits, None)
        return ArchivePage(hits, str(below))

    async def _check(
        self, q: ArchiveQuery, conv: Conversation, wanted: tuple[str, ...]
    ) -> ArchiveHit | None:
        if not conv_passes(q, conv):
            return None
        if not wanted and q.attachments is None:
            return ArchiveHit(conv)
        r = self.engine.client
        rows = await r.xrange(self.engine.key("entries", conv.id)) or []
        texts: list[tuple[int, str]] = []
        files = False
        for sid, raw in rows:
            h = _fields(raw)
            if h.get("kind") in _SEARCHED:
                texts.append((_offset(sid), h.get("body", "")))
            files = files or '"attachment"' in h.get("data", "")
        if q.attachments is not None and files != q.attachments:
            return None
        if not wanted:
            return ArchiveHit(conv)
        visitor = await r.hmget(self.engine.key("visitor", conv.visitor_id), "name", "email")
        who = " ".join(_text(v) for v in visitor if v is not None)
        texts.insert(0, (0, who))
        found = [(o, t) for o, t in reversed(texts) if len(matches_all(t, wanted)) == len(wanted)]
        return ArchiveHit(conv, tuple(found[:MATCHES])) if found else None

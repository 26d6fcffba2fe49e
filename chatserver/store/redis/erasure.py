"""Erasure and retention (``ErasureStore``) on Redis.

Keys (new; the layout version is unchanged, docs/storage.md)::

    erased:<visitor>         string  "1": the visitor was erased (``is_erased``)

An erasure reads what to delete (the visitor's conversations, the files named
in their entries, the outbox jobs naming them), then deletes it all in one
MULTI.  Retention's reads walk keys with SCAN (visitors, files) or a site's
closed conversations: hourly work proportional to the site's records, fine
for the shops a Redis store is for (docs/storage.md).  ``scrub`` asks Redis
to rewrite its append-only file, so the deleted values are not left in it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from ...reports.facts import COLUMNS
from ...types import Attachment, ConversationId, SiteId, VisitorId, now
from ..common import ATTACHMENT_BYTES
from ..erasure import ERASED, Erased
from .engine import RedisEngine, _redis_errors
from .rows import _attachment, _conv, _text

_VISITOR_AT = COLUMNS.index("visitor_id")
_COMMENT_AT = COLUMNS.index("comment")
_BATCH = 500


class RedisErasure(RedisEngine):
    """``ErasureStore`` on Redis."""

    async def _files_of(self, conv_ids: Sequence[str]) -> list[Attachment]:
        """The attachments posted in the conversations (named in their entries)."""
        ids: set[str] = set()
        for conv_id in conv_ids:
            rows: Any = await self._redis.xrange(self._k("entries", conv_id))
            for _, fields in rows or ():
                data = _text(fields.get(b"data") or fields.get("data") or "")
                if '"attachment"' in data:
                    att = json.loads(data).get("attachment")
                    if isinstance(att, dict) and isinstance(att.get("id"), str):
                        ids.add(att["id"])
        hashes = await self._hashes(self._k("attachment", i) for i in sorted(ids))
        return [_attachment(h) for h in hashes]

    async def _unposted_of(self, uploader: str) -> list[Attachment]:
        ids = await self._redis.zrange(self._k("unposted-attachments"), 0, -1)
        hashes = await self._hashes(self._k("attachment", _text(i)) for i in ids)
        return [a for a in map(_attachment, hashes) if a.uploader == uploader]

    async def _jobs_naming(self, site_id: str, needles: Sequence[str]) -> list[str]:
        key = self._k("outbox-site", site_id)
        found: list[str] = []
        start = 0
        while True:
            ids = [_text(i) for i in await self._redis.zrange(key, start, start + _BATCH - 1)]
            if not ids:
                return found
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in ids:
                    pipe.hget(self._k("outbox-job", i), "payload")
                payloads = await pipe.execute()
            for job_id, payload in zip(ids, payloads, strict=True):
                text = _text(payload) if payload is not None else "{}"
                if text != "{}" and any(n in text for n in needles if n):
                    found.append(job_id)
            start += _BATCH

    async def _fail_jobs(self, job_ids: Sequence[str]) -> int:
        """Fail (keeping the key's order and the due index right) and empty each job."""
        for job_id in job_ids:
            keys = [self._k("outbox-due"), self._k("outbox-cursors"), self._k("outbox-old")]
            await self._script(
                "outbox", keys, ["fail", self.prefix, job_id, repr(now()), "0.0", "erased"]
            )
            await self._redis.hset(self._k("outbox-job", job_id), "payload", "{}")
        return len(job_ids)

    async def _erase_convs(
        self, conv_ids: Sequence[str], keep_facts: bool, extra: Sequence[str] = ()
    ) -> Erased:
        out = Erased()
        hashes = await self._hashes(self._k("conv", c) for c in conv_ids)
        convs = [_conv(h) for h in hashes]
        if convs:
            out.attachments = await self._files_of([c.id for c in convs])
        reports = [await self._redis.get(self._k("report", c.id)) for c in convs]
        sites = {c.site_id for c in convs}
        jobs: list[str] = []
        for site_id in sites:
            needles = [c.id for c in convs if c.site_id == site_id] + list(extra)
            jobs.extend(await self._jobs_naming(site_id, needles))
        async with self._redis.pipeline(transaction=True) as pipe:
            for conv, report in zip(convs, reports, strict=True):
                out.entries += conv.last_offset
                for name in ("conv", "entries", "cids", "reads"):
                    pipe.delete(self._k(name, conv.id))
                for state in ("queued", "active", "closed"):
                    pipe.zrem(self._k("convs", state, conv.site_id), conv.id)
                pipe.zrem(self._k("visitor-convs", conv.visitor_id), conv.id)
                pipe.zrem(self._k("feed"), conv.id)
                if report is not None and keep_facts:
                    row = json.loads(report)
                    row[_VISITOR_AT], row[_COMMENT_AT] = ERASED, ""
                    pipe.set(self._k("report", conv.id), json.dumps(row))
                elif report is not None:
                    pipe.delete(self._k("report", conv.id))
                    pipe.zrem(self._k("report-started", conv.site_id), conv.id)
            self._drop_files(pipe, out.attachments)
            await pipe.execute()
        out.conversations = [c.id for c in convs]
        out.jobs = await self._fail_jobs(jobs)
        return out

    def _drop_files(self, pipe: Any, files: Sequence[Attachment]) -> None:
        for att in files:
            pipe.delete(self._k("attachment", att.id))
            pipe.zrem(self._k("unposted-attachments"), att.id)
            counters = self._k("counters", att.site_id, ATTACHMENT_BYTES)
            pipe.hincrby(counters, "total_bytes", -att.size)
            if att.conv_id is None:
                pipe.hincrby(counters, "unposted_bytes", -att.size)

    @_redis_errors
    async def erase_visitor(
        self, visitor_id: VisitorId, *, keep_facts: bool = True, remember: bool = True
    ) -> Erased:
        row = await self._hash(self._k("visitor", visitor_id))
        convs = [
            _text(c) for c in await self._redis.zrange(self._k("visitor-convs", visitor_id), 0, -1)
        ]
        extra = [visitor_id, row.get("email", "")]
        out = await self._erase_convs(convs, keep_facts, extra)
        unposted = await self._unposted_of(f"visitor:{visitor_id}")
        out.page_views = int(await self._redis.llen(self._k("pages", visitor_id)))
        out.events = int(await self._redis.llen(self._k("events", visitor_id)))
        async with self._redis.pipeline(transaction=True) as pipe:
            for name in ("visitor", "pages", "events", "firings", "open", "visitor-convs"):
                pipe.delete(self._k(name, visitor_id))
            if row.get("user_id") and row.get("site_id"):
                identity = self._k("identity", row["site_id"], row["user_id"])
                pipe.eval(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end",
                    1,
                    identity,
                    visitor_id,
                )
            self._drop_files(pipe, unposted)
            if remember:
                pipe.set(self._k("erased", visitor_id), "1")
            await pipe.execute()
        out.attachments.extend(unposted)
        out.visitors = 1 if row else 0
        if not convs and row.get("site_id"):
            out.jobs += await self._fail_jobs(await self._jobs_naming(row["site_id"], extra))
        return out

    @_redis_errors
    async def erase_conversations(
        self, conv_ids: Sequence[ConversationId], *, keep_facts: bool = True
    ) -> Erased:
        return await self._erase_convs(list(conv_ids), keep_facts)

    @_redis_errors
    async def is_erased(self, visitor_id: VisitorId) -> bool:
        return bool(await self._redis.exists(self._k("erased", visitor_id)))

    @_redis_errors
    async def expired_conversations(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[ConversationId]:
        key = self._k("convs", "closed", site_id)
        found: list[tuple[float, str]] = []
        start = 0
        while True:
            ids = await self._redis.zrange(key, start, start + _BATCH - 1)
            if not ids:
                break
            for conv in map(_conv, await self._hashes(self._k("conv", _text(i)) for i in ids)):
                if conv.closed_at is not None and conv.closed_at < before:
                    found.append((conv.closed_at, conv.id))
            start += _BATCH
        return [c for _, c in sorted(found)[:limit]]

    async def _site_visitors(self, site_id: SiteId) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        keys: list[str] = []
        depth = self._k("visitor", "x").count(":")

        async def check() -> None:
            out.extend(h for h in await self._hashes(keys) if h.get("site_id") == site_id)
            keys.clear()

        async for key in self._redis.scan_iter(match=self._k("visitor", "*"), count=1000):
            name = _text(key)
            if name.count(":") == depth:
                keys.append(name)
                if len(keys) >= 1000:
                    await check()
        if keys:
            await check()
        return out

    @_redis_errors
    async def idle_visitors(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[VisitorId]:
        found: list[tuple[float, str]] = []
        for h in await self._site_visitors(site_id):
            vid = h["id"]
            if float(h.get("created_at", 0)) >= before:
                continue
            if await self._redis.zcard(self._k("visitor-convs", vid)):
                continue
            newest = [float(h.get("created_at", 0))]
            for name in ("pages", "events"):
                top = await self._redis.lindex(self._k(name, vid), 0)
                if top is not None:
                    text = _text(top)
                    data = text.split(" ", 1)[1] if name == "pages" else text
                    newest.append(float(json.loads(data)["ts"]))
            if max(newest) < before:
                found.append((float(h.get("created_at", 0)), vid))
        return [v for _, v in sorted(found)[:limit]]

    @_redis_errors
    async def expired_attachments(
        self, site_id: SiteId, before: float, limit: int = 200
    ) -> list[Attachment]:
        found: list[Attachment] = []
        keys: list[str] = []

        async def check() -> None:
            for att in map(_attachment, await self._hashes(keys)):
                if att.site_id == site_id and att.conv_id and att.created_at < before:
                    found.append(att)
            keys.clear()

        async for key in self._redis.scan_iter(match=self._k("attachment", "*"), count=1000):
            keys.append(_text(key))
            if len(keys) >= 1000:
                await check()
        if keys:
            await check()
        found.sort(key=lambda a: a.created_at)
        return found[:limit]

    @_redis_errors
    async def delete_attachments(self, attachment_ids: Sequence[str]) -> list[Attachment]:
        hashes = await self._hashes(self._k("attachment", i) for i in attachment_ids)
        files = [_attachment(h) for h in hashes]
        if files:
            async with self._redis.pipeline(transaction=True) as pipe:
                self._drop_files(pipe, files)
                await pipe.execute()
        return files

    @_redis_errors
    async def prune_activity(self, site_id: SiteId, before: float) -> tuple[int, int]:
        views = events = 0
        for h in await self._site_visitors(site_id):
            for name in ("pages", "events"):
                key = self._k(name, h["id"])
                rows = [_text(r) for r in await self._redis.lrange(key, 0, -1)]
                # newest first: the first too old one and all after it go
                for n, row in enumerate(rows):
                    data = row.split(" ", 1)[1] if name == "pages" else row
                    if float(json.loads(data)["ts"]) < before:
                        await self._redis.ltrim(key, 0, n - 1) if n else await self._redis.delete(
                            key
                        )
                        if name == "pages":
                            views += len(rows) - n
                        else:
                            events += len(rows) - n
                        break
        return views, events

    @_redis_errors
    async def scrub(self) -> None:
        try:
            config = await self._redis.config_get("appendonly")
        except ResponseError:  # CONFIG disabled (a managed Redis): its operator's job
            return
        if _text(next(iter(config.values()), "")) != "yes":
            return
        # A rewrite under way started from a copy taken before the deletion:
        # wait for it to end, then start one of our own.
        for _ in range(600):
            try:
                await self._redis.bgrewriteaof()
                return
            except ResponseError:
                await asyncio.sleep(0.1)

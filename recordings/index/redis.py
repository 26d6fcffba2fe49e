"""The recordings index on Redis: rows, batches and marks under the core store's prefix.

Keys (after the store's ``prefix``, as in ``chatserver/store/redis/engine.py``;
``[x]`` marks a field that is absent when the value is ``None``)::

    rec:<id>                 hash    a recording's index row (``Recording`` fields; [conv_id])
    rec-marks:<id>           list    its marks as JSON ``{kind, ts, data}``, in order
    rec-urls:<id>            set     the URLs of its page marks (for the URL filter)
    rec-chunks:<id>          hash    its sealed chunks: object key -> ``Chunk`` as JSON
    recs:<site>              zset    the site's recordings with events, scored by started
    recs-ended:<site>        zset    every recording of the site, scored by ended
    visitor-recs:<visitor>   set     the visitor's recording ids

Writes that read first (``claim_recording``, ``add_recording_batch``) are
WATCH/MULTI transactions, retried when the row changed meanwhile.  Every
Redis failure is raised as ``StoreError`` (the engine's ``redis_errors``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from redis.asyncio import Redis
from redis.exceptions import WatchError

from chatserver.errors import NotFound, StoreError
from chatserver.store.redis.engine import RedisEngine, redis_errors
from chatserver.types import (
    Recording,
    RecordingBatch,
    RecordingId,
    RecordingMark,
    SiteId,
    VisitorId,
    now,
)

from ..chunks import Chunk
from ..signals import KINDS as SIGNALS
from .batch import apply_batch

_BATCH = 200  # rows per read while a page of the list fills


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: object) -> dict[str, str]:
    """A hash as HGETALL returns it."""
    if isinstance(raw, dict):
        return {_text(k): _text(v) for k, v in raw.items()}
    raise StoreError(f"redis: unexpected reply {raw!r}")


def _flat(fields: Mapping[str, str]) -> list[str]:
    return [part for pair in fields.items() for part in pair]


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
    signal: str | None = None,
) -> bool:
    """``list_recordings``' filters in Python (the SQLite store says them in SQL)."""
    if rec.events <= 0:
        return False
    if since is not None and rec.started < since:
        return False
    if until is not None and rec.started >= until:
        return False
    if signal:
        head = f"!{signal} "
        if not any(u.startswith(head) and (url or "") in u[len(head) :] for u in urls):
            return False
    elif url and not any(url in u for u in urls if not u.startswith("!")):
        return False
    if min_duration is not None and rec.last_ts - rec.first_ts < min_duration * 1000.0:
        return False
    if had_chat is not None and (rec.conv_id is not None) != had_chat:
        return False
    return before is None or (rec.started, rec.id) < before


class RedisRecordingIndex:
    """``RecordingIndex`` on Redis, over the engine of a ``RedisStore`` (``engine``)."""

    def __init__(self, engine: RedisEngine) -> None:
        self._engine = engine

    @property
    def _redis(self) -> Redis:
        return self._engine.client

    def _k(self, kind: str, *parts: str) -> str:
        return self._engine.key(kind, *parts)

    async def _hash(self, key: str) -> dict[str, str]:
        return _fields(await self._redis.hgetall(key))

    @redis_errors
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

    @redis_errors
    async def get_recording(self, rec_id: RecordingId) -> Recording | None:
        h = await self._hash(self._k("rec", rec_id))
        return _recording(h) if h else None

    @redis_errors
    async def add_recording_batch(
        self, rec_id: RecordingId, batch: RecordingBatch, chunk: Chunk | None = None
    ) -> tuple[Recording, bool]:
        key = self._k("rec", rec_id)
        marks = [json.dumps({"kind": m.kind, "ts": m.ts, "data": m.data}) for m in batch.marks]
        urls = {str(m.data.get("url", "")) for m in batch.marks if m.kind == "page"}
        # a signal is kept as "!<kind> <url>" (``_rec_matches``)
        urls |= {f"!{m.kind} {m.data.get('url', '')}" for m in batch.marks if m.kind in SIGNALS}
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    h = _fields(await pipe.hgetall(key))
                    if not h:
                        raise NotFound(f"recording {rec_id}")
                    rec = _recording(h)
                    if batch.seq <= rec.last_seq:
                        if chunk is not None:
                            await self.add_recording_chunk(rec_id, chunk)
                        return rec, True
                    new = apply_batch(rec, batch)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, items=_flat(_rec_fields(new)))
                    if chunk is not None:
                        pipe.hset(
                            self._k("rec-chunks", rec_id), chunk.key, json.dumps(chunk.to_json())
                        )
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

    @redis_errors
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

    @redis_errors
    async def add_recording_chunk(self, rec_id: RecordingId, chunk: Chunk) -> None:
        await self._redis.hset(
            self._k("rec-chunks", rec_id), chunk.key, json.dumps(chunk.to_json())
        )

    @redis_errors
    async def recording_chunks(self, rec_id: RecordingId) -> list[Chunk]:
        rows = await self._redis.hvals(self._k("rec-chunks", rec_id))
        chunks = [Chunk.from_json(json.loads(_text(row))) for row in rows]
        return sorted(chunks, key=lambda c: (c.first_seq, c.key))

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

    @redis_errors
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
        signal: str | None = None,
    ) -> list[Recording]:
        if limit <= 0:
            return []

        def keep(rec: Recording, urls: set[str]) -> bool:
            return rec.site_id == site_id and _rec_matches(
                rec, urls, since, until, url, min_duration, had_chat, before, signal
            )

        if visitor_id is not None:
            members = await self._redis.smembers(self._k("visitor-recs", visitor_id))
            rows = [
                r for r, u in await self._recordings(members, bool(url or signal)) if keep(r, u)
            ]
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
            found.extend(
                r for r, u in await self._recordings(ids, bool(url or signal)) if keep(r, u)
            )
        return found[:limit]

    @redis_errors
    async def expired_recordings(
        self, site_id: SiteId, ended_before: float, limit: int = 500
    ) -> list[Recording]:
        if limit <= 0:
            return []
        ids = await self._redis.zrangebyscore(
            self._k("recs-ended", site_id), "-inf", f"({ended_before!r}", start=0, num=limit
        )
        return [r for r, _ in await self._recordings(ids, False)]

    @redis_errors
    async def visitor_recordings(self, visitor_id: VisitorId) -> list[Recording]:
        ids = await self._redis.smembers(self._k("visitor-recs", visitor_id))
        rows = [r for r, _ in await self._recordings(ids, False)]
        return sorted(rows, key=lambda r: (r.started, r.id), reverse=True)

    @redis_errors
    async def delete_recordings(self, rec_ids: Sequence[RecordingId]) -> int:
        count = 0
        for rec, _ in await self._recordings(rec_ids, False):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(
                    self._k("rec", rec.id),
                    self._k("rec-marks", rec.id),
                    self._k("rec-urls", rec.id),
                    self._k("rec-chunks", rec.id),
                )
                pipe.zrem(self._k("recs", rec.site_id), rec.id)
                pipe.zrem(self._k("recs-ended", rec.site_id), rec.id)
                pipe.srem(self._k("visitor-recs", rec.visitor_id), rec.id)
                await pipe.execute()
            count += 1
        return count

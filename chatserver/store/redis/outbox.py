"""The outbox on Redis (``OutboxStore``): ``append.lua`` writes the feed (``feed``,
``feed-seq``); jobs move through ``outbox.lua`` (keys in ``engine``'s docstring).

One Redis server runs the scripts one at a time, so feed order is commit
order, and a job, its key's order set and the due index change together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ...types import SiteId, now
from ..outbox import Change, Job, JobState, NewJob
from .engine import RedisEngine, _redis_errors
from .rows import _fields


def _job(fields: dict[str, str]) -> Job:
    return Job(
        id=fields["id"],
        site_id=fields["site_id"],
        kind=fields["kind"],
        key=fields["key"],
        seq=int(fields["seq"]),
        payload=json.loads(fields["payload"]),
        state=JobState(fields["state"]),
        attempts=int(fields["attempts"]),
        due_at=float(fields["due_at"]),
        created_at=float(fields["created_at"]),
        updated_at=float(fields["updated_at"]),
        last_error=fields["last_error"],
    )


class RedisOutbox(RedisEngine):
    """``OutboxStore`` on Redis."""

    async def _outbox(self, op: str, *args: str) -> Any:
        keys = [self._k("outbox-due"), self._k("outbox-cursors"), self._k("outbox-old")]
        return await self._script("outbox", keys, [op, self.prefix, *args])

    @_redis_errors
    async def changes(self, after: int, limit: int = 200) -> list[Change]:
        ranked: list[Any] = await self._redis.zrangebyscore(
            self._k("feed"), f"({after}", "+inf", start=0, num=limit, withscores=True
        )
        if not ranked:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for member, _ in ranked:
                pipe.hmget(self._k("conv", _text(member)), "site_id", "last_offset")
            rows = await pipe.execute()
        out = []
        for (member, score), (site, last) in zip(ranked, rows, strict=True):
            if site is not None:
                out.append(Change(int(score), _text(member), _text(site), int(last or 0)))
        return out

    @_redis_errors
    async def feed_head(self) -> int:
        value = await self._redis.get(self._k("feed-seq"))
        return int(value or 0)

    @_redis_errors
    async def cursors(self, names: Sequence[str]) -> dict[str, int]:
        if not names:
            return {}
        values = await self._redis.hmget(self._k("outbox-cursors"), list(names))
        return {n: int(v) for n, v in zip(names, values, strict=True) if v is not None}

    @_redis_errors
    async def enqueue(self, jobs: Sequence[NewJob], cursors: Mapping[str, int]) -> int:
        items = [
            {
                "id": j.id,
                "site_id": j.site_id,
                "kind": j.kind,
                "key": j.key,
                "seq": j.seq,
                "seq_text": str(j.seq),
                "payload": json.dumps(j.payload),
                "cursor": j.cursor,
            }
            for j in jobs
        ]
        cursor_text = json.dumps({k: str(v) for k, v in cursors.items()})
        return int(await self._outbox("enqueue", repr(now()), json.dumps(items), cursor_text))

    @_redis_errors
    async def claim(self, now: float, lease: float, limit: int) -> list[Job]:
        rows = await self._outbox("claim", repr(now), repr(now + lease), str(limit))
        return [_job(_fields(r)) for r in rows]

    async def _one(
        self, op: str, job_id: str, now: float, due: float = 0.0, error: str = ""
    ) -> Job | None:
        row = await self._outbox(op, job_id, repr(now), repr(due), error)
        return _job(_fields(row)) if row else None

    @_redis_errors
    async def complete(self, job_id: str, now: float) -> Job | None:
        return await self._one("complete", job_id, now)

    @_redis_errors
    async def retry(self, job_id: str, now: float, due_at: float, error: str) -> Job | None:
        return await self._one("retry", job_id, now, due_at, error)

    @_redis_errors
    async def fail(self, job_id: str, now: float, error: str) -> Job | None:
        return await self._one("fail", job_id, now, 0.0, error)

    @_redis_errors
    async def resend(self, job_id: str, now: float) -> Job | None:
        return await self._one("resend", job_id, now)

    @_redis_errors
    async def get_job(self, job_id: str) -> Job | None:
        fields = await self._hash(self._k("outbox-job", job_id))
        return _job(fields) if fields else None

    @_redis_errors
    async def jobs(self, site_id: SiteId, key_prefix: str = "", limit: int = 50) -> list[Job]:
        out: list[Job] = []
        start, page = 0, 200
        while len(out) < limit and start < 5000:  # bounded walk, newest first
            ids = await self._redis.zrevrange(
                self._k("outbox-site", site_id), start, start + page - 1
            )
            if not ids:
                break
            hashes = await self._hashes(self._k("outbox-job", _text(i)) for i in ids)
            out.extend(j for j in map(_job, hashes) if j.key.startswith(key_prefix))
            start += page
        out.sort(key=lambda j: (j.created_at, j.seq), reverse=True)
        return out[:limit]

    @_redis_errors
    async def prune(self, before: float) -> int:
        total = 0
        for _ in range(1000):  # 1,000 jobs a call
            n = int(await self._outbox("prune", repr(before)))
            total += n
            if n < 1000:
                break
        return total


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

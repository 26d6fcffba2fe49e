"""Attachments and each site's attachment byte counters, on Redis."""

from __future__ import annotations

from ...errors import NotFound
from ...types import (
    Attachment,
    ConversationId,
    SiteId,
    new_id,
    now,
)
from ..common import (
    ATTACHMENT_BYTES,
)
from .engine import _redis_errors
from .firings import RedisFirings
from .rows import (
    _attachment,
    _fields,
    _flat,
    _text,
)


class RedisAttachments(RedisFirings):
    """``AttachmentStore`` on Redis: the methods of its domain over the shared engine."""

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

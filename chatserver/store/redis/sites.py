"""Sites, their identity secret and their documents, on Redis."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence

from redis.exceptions import WatchError

from ...errors import NotFound, StoreError
from ...types import (
    JSON,
    DepartmentId,
    Doc,
    Site,
    SiteId,
    SiteSettings,
    new_id,
    now,
)
from .engine import RedisEngine, _redis_errors
from .rows import (
    _flat,
    _site,
    _site_fields,
    _text,
)


def _doc(site_id: SiteId, kind: str, doc_id: str, raw: object) -> Doc:
    value = json.loads(_text(raw))
    return Doc(site_id, kind, doc_id, value["data"], value["created_at"], value["updated_at"])


class RedisSites(RedisEngine):
    """``SiteStore`` on Redis: the methods of its domain over the shared engine."""

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

"""Visitors: rows, page views, tracked events and verified identities, on Redis."""

from __future__ import annotations

import json

from redis.exceptions import WatchError

from ...errors import NotFound
from ...types import (
    JSON,
    AgentId,
    PageView,
    SiteId,
    Visitor,
    VisitorEvent,
    VisitorId,
    now,
    sorted_id,
)
from ..common import (
    MAX_PAGE_VIEWS,
    MAX_VISITOR_EVENTS,
    VISIT_GAP,
    merge_attributes,
)
from .engine import RedisEngine, _redis_errors
from .rows import (
    _fields,
    _flat,
    _text,
    _visitor,
)


class RedisVisitors(RedisEngine):
    """``VisitorStore`` on Redis: the methods of its domain over the shared engine."""

    @_redis_errors
    async def create_visitor(self, site_id: SiteId, visitor_id: VisitorId | None = None) -> Visitor:
        visitor = Visitor(id=visitor_id or sorted_id("v"), site_id=site_id, created_at=now())
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
    @_redis_errors
    async def find_visitors(
        self, site_id: SiteId, *, email: str = "", user_id: str = ""
    ) -> list[Visitor]:
        if not email and not user_id:
            return []
        # No index: a walk of every visitor key (SCAN, bounded), fields read in pipelines.
        found: list[Visitor] = []
        keys: list[str] = []

        async def check() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(key, "site_id", "email", "user_id")
                replies = await pipe.execute()
            wanted = [
                key
                for key, (site, mail, user) in zip(keys, replies, strict=True)
                if site is not None
                and _text(site) == site_id
                and (
                    (email and _text(mail or "").lower() == email.lower())
                    or (user_id and _text(user or "") == user_id)
                )
            ]
            found.extend(_visitor(h) for h in await self._hashes(wanted))
            keys.clear()

        async for key in self._redis.scan_iter(match=self._k("visitor", "*"), count=1000):
            name = _text(key)
            if name.count(":") != self._k("visitor", "x").count(":"):
                continue  # a visitor's other keys (page views, events...)
            keys.append(name)
            if len(keys) >= 1000:
                await check()
        if keys:
            await check()
        return sorted(found, key=lambda v: (v.created_at, v.id))

    async def visitor_by_identity(self, site_id: SiteId, user_id: str) -> Visitor | None:
        visitor_id = await self._redis.get(self._k("identity", site_id, user_id))
        return await self.get_visitor(_text(visitor_id)) if visitor_id is not None else None

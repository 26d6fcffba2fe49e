"""The Redis Router: routing state shared by every process, changed atomically.

Each site's routing state (agents with capacity, status, per-process presence
and load; the FIFO queue) is one JSON value changed only by
``lua/routing.lua``, so every decision (assignment, attach, drain) is atomic
across processes and capacity is never exceeded.  Small index keys map agents
and conversations to their site.

Status: the agent's chosen status is a field of their entry in that JSON
value, so every process reads and changes the same one (``connected``
returns it; the grace sweep forgets it with the agent's chats).

Presence: an agent is connected while any process's entry for them has not
expired.  Each process refreshes its own entries from one heartbeat task
(every ``ttl / 3`` seconds), not a timer per connection.  The same task asks
every site for agents whose processes all went silent longer than the grace
period ago, and hands their conversations to the hub to requeue: when a
process is killed, its agents' chats move to colleagues on other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .errors import StoreError
from .redact import redact_url, scrub
from .redis_client import open_client
from .routing import Expired
from .tasks import stop
from .types import (
    Agent,
    AgentId,
    AgentStatus,
    Conversation,
    ConversationId,
    ConvState,
    DepartmentId,
    SiteId,
    new_id,
)

log = logging.getLogger("chatserver.routing_redis")

_SCRIPT = (Path(__file__).parent / "lua" / "routing.lua").read_text()


class RedisRouter:
    def __init__(
        self, url: str, prefix: str = "chat:", grace: float = 30.0, ttl: float = 6.0
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.grace = grace
        self.ttl = ttl
        self.node = new_id("n")
        self._redis: aioredis.Redis | None = None
        self._script: Any = None
        self._local: dict[AgentId, SiteId] = {}
        self._task: asyncio.Task[None] | None = None
        self._on_expired: Expired | None = None

    # -- lifecycle -------------------------------------------------------

    async def start(self, on_expired: Expired | None = None) -> None:
        self._redis = open_client(self.url, max_connections=16)
        self._script = self._redis.register_script(_SCRIPT)
        self._on_expired = on_expired
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise StoreError(
                f"cannot reach Redis at {redact_url(self.url)}: {scrub(str(exc), self.url)}"
            ) from exc
        self._task = asyncio.create_task(self._heartbeat(), name="chatserver-redis-router")

    async def close(self) -> None:
        if self._task is not None:
            await stop(self._task)
        if self._redis is not None:
            # Leave cleanly: this process's agents are disconnected now.
            with contextlib.suppress(RedisError, StoreError):
                for agent_id in list(self._local):
                    await self.agent_disconnected(agent_id)
            await self._redis.aclose()
            self._redis = None

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.sweep()
            except (RedisError, StoreError) as exc:
                log.warning("routing heartbeat failed: %s", exc)
            except Exception:
                log.exception("routing heartbeat failed")

    async def sweep(self) -> None:
        """Refresh this process's presence; requeue chats of long-silent agents."""
        by_site: dict[SiteId, list[AgentId]] = {}
        for agent_id, site_id in self._local.items():
            by_site.setdefault(site_id, []).append(agent_id)
        for site_id, agents in by_site.items():
            await self._run(site_id, "heartbeat", self.node, self.ttl, *agents)
        assert self._redis is not None
        for member in await self._redis.smembers(self.prefix + "routing:sites"):
            site_id = str(member)
            flat = await self._run(site_id, "expired", self.grace)
            pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
            if pairs and self._on_expired is not None:
                await self._on_expired(site_id, pairs)

    # -- plumbing --------------------------------------------------------

    def _key(self, site_id: SiteId) -> str:
        return f"{self.prefix}routing:{site_id}"

    async def _run(self, site_id: SiteId, op: str, *args: object) -> Any:
        if self._redis is None:
            raise StoreError("router is not started")
        try:
            return await self._script(keys=[self._key(site_id)], args=[op, *map(str, args)])
        except RedisError as exc:
            raise StoreError(f"redis routing failed: {exc}") from exc

    async def _site_of(self, kind: str, ident: str) -> SiteId | None:
        assert self._redis is not None
        try:
            raw = await self._redis.get(f"{self.prefix}{kind}site:{ident}")
        except RedisError as exc:
            raise StoreError(f"redis routing failed: {exc}") from exc
        return str(raw) if raw else None

    async def _remember(self, kind: str, ident: str, site_id: SiteId) -> None:
        assert self._redis is not None
        try:
            await self._redis.set(f"{self.prefix}{kind}site:{ident}", site_id)
            await self._redis.sadd(self.prefix + "routing:sites", site_id)
        except RedisError as exc:
            raise StoreError(f"redis routing failed: {exc}") from exc

    # -- agents ----------------------------------------------------------

    async def agent_connected(self, agent: Agent, status: AgentStatus | None) -> AgentStatus | None:
        await self._remember("agent", agent.id, agent.site_id)
        self._local[agent.id] = agent.site_id
        before = await self._run(
            agent.site_id,
            "connected",
            agent.id,
            agent.capacity,
            json.dumps(list(agent.departments)),
            status.value if status else "",
            self.node,
            self.ttl,
        )
        return AgentStatus(before) if before else None

    async def agent_disconnected(self, agent_id: AgentId) -> None:
        site_id = self._local.pop(agent_id, None) or await self._site_of("agent", agent_id)
        if site_id is not None:
            await self._run(site_id, "disconnected", agent_id, self.node)

    async def agent_gone(self, agent_id: AgentId) -> list[ConversationId]:
        site_id = await self._site_of("agent", agent_id)
        if site_id is None:
            return []
        return [str(c) for c in await self._run(site_id, "gone", agent_id)]

    async def set_status(self, agent_id: AgentId, status: AgentStatus | None) -> None:
        site_id = await self._site_of("agent", agent_id)
        if site_id is not None:
            await self._run(site_id, "status", agent_id, status.value if status else "")

    async def update_agent(self, agent: Agent) -> None:
        await self._run(
            agent.site_id, "update", agent.id, agent.capacity, json.dumps(list(agent.departments))
        )

    async def load(self, agent_id: AgentId) -> int:
        site_id = await self._site_of("agent", agent_id)
        return int(await self._run(site_id, "load", agent_id)) if site_id else 0

    # -- conversations ---------------------------------------------------

    async def restore(self, conv: Conversation) -> None:
        if conv.state is ConvState.CLOSED:
            return
        await self._remember("conv", conv.id, conv.site_id)
        await self._run(
            conv.site_id,
            "restore",
            conv.id,
            conv.state.value,
            conv.queued_at,
            conv.department or "",
            json.dumps(list(conv.agents)),
        )

    async def submit(
        self,
        conv: Conversation,
        preferred: AgentId | None,
        exclude: frozenset[AgentId] = frozenset(),
    ) -> None:
        await self._remember("conv", conv.id, conv.site_id)
        await self._run(
            conv.site_id,
            "submit",
            conv.id,
            conv.queued_at,
            conv.department or "",
            preferred or "",
            json.dumps(sorted(exclude)),
        )

    async def drain(self, site_id: SiteId, now: float) -> list[tuple[ConversationId, AgentId]]:
        flat = await self._run(site_id, "drain")
        return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    async def attach(self, conv_id: ConversationId, agent_id: AgentId, now: float) -> bool:
        site_id = await self._site_of("agent", agent_id)
        if site_id is None:
            return False
        await self._remember("conv", conv_id, site_id)
        return bool(await self._run(site_id, "attach", conv_id, agent_id))

    async def detach(self, conv_id: ConversationId, agent_id: AgentId) -> None:
        site_id = await self._site_of("agent", agent_id)
        if site_id is not None:
            await self._run(site_id, "detach", conv_id, agent_id)

    async def remove(self, conv_id: ConversationId) -> None:
        site_id = await self._site_of("conv", conv_id)
        if site_id is not None:
            await self._run(site_id, "remove", conv_id)

    async def queue(self, site_id: SiteId) -> list[ConversationId]:
        return [str(c) for c in await self._run(site_id, "queue")]

    async def available_agents(
        self, site_id: SiteId, department: DepartmentId | None = None
    ) -> int:
        if department is None:
            return int(await self._run(site_id, "available"))
        return int(await self._run(site_id, "available", department))

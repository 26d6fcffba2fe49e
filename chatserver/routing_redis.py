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
A process that was only stalled (its heartbeat late past the ``ttl``, or
even past the grace) hears its agents back at its next heartbeat: it
registers again those the sweep dropped and has their site's queue routed,
since a chat that came while they counted as gone was queued for nobody.

Keys (all coordination: rebuilt, never migrated; docs/scaling.md):

* ``<prefix>{<site>}:routing`` the site's state, under the site's hash tag;
  ``lua/routing.lua`` touches only this key (KEYS[1]), so it runs on Redis
  Cluster;
* ``<prefix>agentsite:<agent>``, ``<prefix>convsite:<conv>`` which site an
  agent or conversation is of, and ``<prefix>routing:sites`` the sites with
  state: single-key commands, so any slot will do;
* ``<prefix>coordination:epoch`` a random value set by the first process:
  gone or changed means Redis lost its data.

Loss: the heartbeat checks the epoch, and its per-site ``heartbeat`` call
says when a site's state is missing.  Either way this process registers its
own agents again (with the capacity, departments and status it knows) and
calls the hub's rebuild (``watch_loss``), which restores the open
conversations from the record and routes the queue.  Every process does the
same within ``ttl / 3`` seconds, so agents on every process are back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .errors import StoreError
from .redact import scrub
from .redis_client import RedisTarget, as_target, open_client
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
        self, url: str | RedisTarget, prefix: str = "chat:", grace: float = 30.0, ttl: float = 6.0
    ) -> None:
        self.target = as_target(url)
        self.url = self.target.url
        self.prefix = prefix
        self.grace = grace
        self.ttl = ttl
        self.node = new_id("n")
        self._redis: aioredis.Redis | None = None
        self._script: Any = None
        self._local: dict[AgentId, SiteId] = {}
        self._agents: dict[AgentId, tuple[Agent, AgentStatus | None]] = {}  # local, for rebuilds
        self._task: asyncio.Task[None] | None = None
        self._on_expired: Expired | None = None
        self._on_lost: Callable[[], Awaitable[None]] | None = None
        self._epoch: str | None = None
        self.rebuilds = 0  # times this process found the state lost and rebuilt it

    def watch_loss(self, rebuild: Callable[[], Awaitable[None]]) -> None:
        """Call ``rebuild`` (after this process's agents are registered again)
        whenever Redis turns out to have lost the routing state."""
        self._on_lost = rebuild

    # -- lifecycle -------------------------------------------------------

    async def start(self, on_expired: Expired | None = None) -> None:
        self._redis = open_client(self.target, max_connections=16)
        self._script = self._redis.register_script(_SCRIPT)
        self._on_expired = on_expired
        try:
            await self._redis.ping()
            self._epoch = await self._read_epoch()
        except RedisError as exc:
            raise StoreError(
                f"cannot reach Redis at {self.target.describe()}: {scrub(str(exc), self.url)}"
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

    async def _read_epoch(self) -> str:
        """The epoch in Redis, set (to a new random value) when missing."""
        assert self._redis is not None
        key = self.prefix + "coordination:epoch"
        await self._redis.set(key, new_id("e"), nx=True)
        return str(await self._redis.get(key))

    async def sweep(self) -> None:
        """Refresh this process's presence; rebuild lost state; requeue chats of
        long-silent agents."""
        assert self._redis is not None
        epoch = await self._read_epoch()
        lost = epoch != self._epoch
        by_site: dict[SiteId, list[AgentId]] = {}
        for agent_id, site_id in self._local.items():
            by_site.setdefault(site_id, []).append(agent_id)
        for site_id, agents in by_site.items():
            beat = await self._run(site_id, "heartbeat", self.node, self.ttl, *agents)
            if not beat:
                lost = True
            elif len(beat) > 1:
                await self._heard_again(site_id, [str(x) for x in beat[1:]])
        if lost:
            await self.rebuild()  # if it fails, the next sweep tries again
        self._epoch = epoch
        for member in await self._redis.smembers(self.prefix + "routing:sites"):
            site_id = str(member)
            flat = await self._run(site_id, "expired", self.grace)
            pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
            if pairs and self._on_expired is not None:
                await self._on_expired(site_id, pairs)

    async def _heard_again(self, site_id: SiteId, back: list[str]) -> None:
        """Agents of this process were silent (a stalled loop, a late heartbeat):
        register again those whose entries the grace sweep dropped and still
        connected here, then have the site's queue routed (``on_expired`` with no
        chats), since a chat that came meanwhile waited for nobody."""
        for agent_id, how in zip(back[::2], back[1::2], strict=True):
            held = self._agents.get(agent_id)
            if how == "dropped" and held is not None:
                await self._register(*held)
        log.info("agents heard again after a silence: %s", ", ".join(back[::2]))
        if self._on_expired is not None:
            await self._on_expired(site_id, [])

    async def rebuild(self) -> None:
        """Redis lost the state: register this process's agents again, then let
        the hub restore the conversations from the record (``watch_loss``)."""
        self.rebuilds += 1
        log.warning("redis lost the routing state; rebuilding it from the record")
        for agent, status in list(self._agents.values()):
            await self._register(agent, status)
        if self._on_lost is not None:
            await self._on_lost()

    # -- plumbing --------------------------------------------------------

    def _key(self, site_id: SiteId) -> str:
        # The {site} hash tag: every key of a site is in one Redis Cluster slot.
        return f"{self.prefix}{{{site_id}}}:routing"

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
        self._local[agent.id] = agent.site_id
        before = await self._register(agent, status)
        self._agents[agent.id] = (agent, status or before or AgentStatus.ONLINE)
        return before

    async def _register(self, agent: Agent, status: AgentStatus | None) -> AgentStatus | None:
        await self._remember("agent", agent.id, agent.site_id)
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

    async def track_agent(self, agent: Agent) -> None:
        """Know an agent nobody connected yet, so that the chats ``restore`` gives it
        are requeued after the grace if it never comes (``lua/routing.lua`` 'track')."""
        await self._remember("agent", agent.id, agent.site_id)
        await self._run(
            agent.site_id, "track", agent.id, agent.capacity, json.dumps(list(agent.departments))
        )

    async def agent_disconnected(self, agent_id: AgentId) -> None:
        self._agents.pop(agent_id, None)
        site_id = self._local.pop(agent_id, None) or await self._site_of("agent", agent_id)
        if site_id is not None:
            await self._run(site_id, "disconnected", agent_id, self.node)

    async def agent_gone(self, agent_id: AgentId) -> list[ConversationId]:
        site_id = await self._site_of("agent", agent_id)
        if site_id is None:
            return []
        return [str(c) for c in await self._run(site_id, "gone", agent_id)]

    async def set_status(self, agent_id: AgentId, status: AgentStatus | None) -> None:
        if agent_id in self._agents:
            self._agents[agent_id] = (self._agents[agent_id][0], status)
        site_id = await self._site_of("agent", agent_id)
        if site_id is not None:
            await self._run(site_id, "status", agent_id, status.value if status else "")

    async def update_agent(self, agent: Agent) -> None:
        if agent.id in self._agents:
            self._agents[agent.id] = (agent, self._agents[agent.id][1])
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
    ) -> bool:
        await self._remember("conv", conv.id, conv.site_id)
        queued = await self._run(
            conv.site_id,
            "submit",
            conv.id,
            conv.queued_at,
            conv.department or "",
            preferred or "",
            json.dumps(sorted(exclude)),
        )
        return bool(queued)

    async def change_department(self, conv: Conversation) -> bool:
        return bool(await self._run(conv.site_id, "department", conv.id, conv.department or ""))

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

"""Agents on Redis (``AgentStore``): accounts and password hashes.

A save that takes chat rights away raises the session generation (``logins``) in
the same atomic step (the put_agent script).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import NotFound, StoreError
from ...types import (
    Agent,
    AgentId,
    DepartmentId,
    Role,
    SiteId,
    new_id,
    now,
)
from .engine import RedisEngine, _redis_errors
from .rows import (
    _agent,
    _agent_fields,
    _email_key,
    _flat,
    _text,
)


class RedisAgents(RedisEngine):
    """``AgentStore`` on Redis: the methods of its domain over the shared engine."""

    async def _put_agent(self, mode: str, agent: Agent, fields: dict[str, str]) -> None:
        email_key = _email_key(agent.email)
        keys = [self._k("agent", agent.id), self._k("agent-email", email_key)]
        if mode == "create":
            keys.append(self._k("agents", agent.site_id))
        else:  # a save that takes chat rights away raises it
            keys.append(self._k("session-gen", agent.id))
        result = _text(
            await self._script(
                "put_agent",
                keys,
                [mode, agent.id, self._k("agent-email", ""), email_key, *_flat(fields)],
            )
        )
        if result == "taken":
            raise StoreError(f"an agent with email {agent.email!r} exists")
        if result == "missing":
            raise NotFound(f"agent {agent.id}")

    @_redis_errors
    async def create_agent(
        self,
        site_id: SiteId,
        email: str,
        name: str,
        password_hash: str,
        role: Role = Role.AGENT,
        capacity: int = 5,
        departments: Sequence[DepartmentId] = (),
    ) -> Agent:
        agent = Agent(
            id=new_id("a"),
            site_id=site_id,
            email=email.strip(),
            name=name,
            password_hash=password_hash,
            role=role,
            capacity=capacity,
            departments=tuple(departments),
            created_at=now(),
        )
        fields = {
            "id": agent.id,
            "site_id": agent.site_id,
            "created_at": repr(agent.created_at),
            **_agent_fields(agent),
        }
        await self._put_agent("create", agent, fields)
        return agent

    @_redis_errors
    async def get_agent(self, agent_id: AgentId) -> Agent | None:
        h = await self._hash(self._k("agent", agent_id))
        return _agent(h) if h else None

    @_redis_errors
    async def agent_by_email(self, email: str) -> Agent | None:
        agent_id = await self._redis.get(self._k("agent-email", _email_key(email)))
        return await self.get_agent(_text(agent_id)) if agent_id is not None else None

    @_redis_errors
    async def save_agent(self, agent: Agent) -> None:
        await self._put_agent("save", agent, _agent_fields(agent))

    @_redis_errors
    async def set_password_hash(self, agent_id: AgentId, old: str, new: str) -> bool:
        return (
            await self._script("set_password_hash", [self._k("agent", agent_id)], [old, new]) == 1
        )

    @_redis_errors
    async def list_agents(self, site_id: SiteId) -> list[Agent]:
        ids = await self._redis.smembers(self._k("agents", site_id))
        agents = [_agent(h) for h in await self._hashes(self._k("agent", _text(i)) for i in ids)]
        return sorted(agents, key=lambda a: (a.created_at, a.id))

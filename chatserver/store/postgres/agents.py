"""Agents on PostgreSQL (``AgentStore``): accounts and password hashes.

Emails are unique case-insensitively by the unique index on ``lower(email)``.
A save that takes chat rights away raises the session generation (``logins``)
in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

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
from .engine import PostgresEngine
from .rows import _AGENT_COLS, _agent


class PostgresAgents(PostgresEngine):
    """``AgentStore`` on PostgreSQL: the methods of its domain over the shared engine."""

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

        async def op(db: Any) -> Agent:
            try:
                await db.execute(
                    f"INSERT INTO agents ({_AGENT_COLS})"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false, $9)",
                    agent.id,
                    agent.site_id,
                    agent.email,
                    agent.name,
                    agent.password_hash,
                    agent.role.value,
                    agent.capacity,
                    json.dumps(agent.departments),
                    agent.created_at,
                )
            except asyncpg.UniqueViolationError:
                raise StoreError(f"an agent with email {agent.email!r} exists") from None
            return agent

        return await self._tx(op)

    async def get_agent(self, agent_id: AgentId) -> Agent | None:
        row = await self._fetchrow(f"SELECT {_AGENT_COLS} FROM agents WHERE id = $1", agent_id)
        return _agent(row) if row else None

    async def agent_by_email(self, email: str) -> Agent | None:
        row = await self._fetchrow(
            f"SELECT {_AGENT_COLS} FROM agents WHERE lower(email) = lower($1)", email.strip()
        )
        return _agent(row) if row else None

    async def save_agent(self, agent: Agent) -> None:
        async def op(db: Any) -> None:
            before = await db.fetchrow(
                "SELECT role, disabled FROM agents WHERE id = $1 FOR UPDATE", agent.id
            )
            if before is None:
                raise NotFound(f"agent {agent.id}")
            try:
                await db.execute(
                    "UPDATE agents SET email = $1, name = $2, password_hash = $3, role = $4,"
                    " capacity = $5, departments = $6, disabled = $7 WHERE id = $8",
                    agent.email,
                    agent.name,
                    agent.password_hash,
                    agent.role.value,
                    agent.capacity,
                    json.dumps(agent.departments),
                    agent.disabled,
                    agent.id,
                )
            except asyncpg.UniqueViolationError:
                raise StoreError(f"an agent with email {agent.email!r} exists") from None
            chatted = before[0] != Role.ANALYST.value and not before[1]
            if chatted and not agent.takes_chats:  # in the same transaction as the save
                await db.execute(
                    "INSERT INTO session_generations (agent_id, generation) VALUES ($1, 1)"
                    " ON CONFLICT (agent_id) DO UPDATE"
                    " SET generation = session_generations.generation + 1",
                    agent.id,
                )

        await self._tx(op)

    async def set_password_hash(self, agent_id: AgentId, old: str, new: str) -> bool:
        async def op(db: Any) -> bool:
            done = await db.execute(
                "UPDATE agents SET password_hash = $1 WHERE id = $2 AND password_hash = $3",
                new,
                agent_id,
                old,
            )
            return bool(done == "UPDATE 1")

        return await self._tx(op)

    async def list_agents(self, site_id: SiteId) -> list[Agent]:
        rows = await self._fetch(
            f"SELECT {_AGENT_COLS} FROM agents WHERE site_id = $1 ORDER BY created_at, id",
            site_id,
        )
        return [_agent(r) for r in rows]

"""Agents on SQLite (``AgentStore``): accounts and password hashes.

A save that takes chat rights away raises the session generation (``logins``) in
the same atomic step (one transaction).
"""

from __future__ import annotations

import json
import sqlite3
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
from .engine import SQLiteEngine
from .rows import (
    _AGENT_COLS,
    _agent,
)


class SQLiteAgents(SQLiteEngine):
    """``AgentStore`` on SQLite: the methods of its domain over the shared engine."""

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

        def op(db: sqlite3.Connection) -> Agent:
            try:
                db.execute(
                    f"INSERT INTO agents ({_AGENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                    (
                        agent.id,
                        agent.site_id,
                        agent.email,
                        agent.name,
                        agent.password_hash,
                        agent.role.value,
                        agent.capacity,
                        json.dumps(agent.departments),
                        agent.created_at,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"an agent with email {agent.email!r} exists") from exc
            return agent

        return await self._run(op)

    async def get_agent(self, agent_id: AgentId) -> Agent | None:
        row = await self._read_one(f"SELECT {_AGENT_COLS} FROM agents WHERE id = ?", (agent_id,))
        return _agent(row) if row else None

    async def agent_by_email(self, email: str) -> Agent | None:
        row = await self._read_one(
            f"SELECT {_AGENT_COLS} FROM agents WHERE email = ?", (email.strip(),)
        )
        return _agent(row) if row else None

    async def save_agent(self, agent: Agent) -> None:
        def op(db: sqlite3.Connection) -> None:
            old = db.execute("SELECT role, disabled FROM agents WHERE id = ?", (agent.id,))
            before = old.fetchone()
            try:
                cur = db.execute(
                    "UPDATE agents SET email = ?, name = ?, password_hash = ?, role = ?,"
                    " capacity = ?, departments = ?, disabled = ? WHERE id = ?",
                    (
                        agent.email,
                        agent.name,
                        agent.password_hash,
                        agent.role.value,
                        agent.capacity,
                        json.dumps(agent.departments),
                        int(agent.disabled),
                        agent.id,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"an agent with email {agent.email!r} exists") from exc
            if cur.rowcount == 0:
                raise NotFound(f"agent {agent.id}")
            chatted = before[0] != Role.ANALYST.value and not before[1]
            if chatted and not agent.takes_chats:  # in the same transaction as the save
                db.execute(
                    "INSERT INTO session_generations (agent_id, generation) VALUES (?, 1)"
                    " ON CONFLICT (agent_id) DO UPDATE SET generation = generation + 1",
                    (agent.id,),
                )

        await self._run(op)

    async def set_password_hash(self, agent_id: AgentId, old: str, new: str) -> bool:
        def op(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE agents SET password_hash = ? WHERE id = ? AND password_hash = ?",
                (new, agent_id, old),
            )
            return cur.rowcount == 1

        return await self._run(op)

    async def list_agents(self, site_id: SiteId) -> list[Agent]:
        rows = await self._read_all(
            f"SELECT {_AGENT_COLS} FROM agents WHERE site_id = ? ORDER BY created_at", (site_id,)
        )
        return [_agent(r) for r in rows]

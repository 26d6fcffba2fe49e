"""Agent sessions (generations, revoked ids) and the login throttle, on PostgreSQL.

``throttle_reserve`` and ``throttle_release`` take an advisory lock per key
(sorted, so two calls over the same keys never deadlock) before they read the
key's row: the check and the records are one step for every process.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...types import (
    AgentId,
    now,
)
from ..common import throttle_delay
from ..sqlite.logins import _slots
from .engine import PostgresEngine


class PostgresLogins(PostgresEngine):
    """``LoginStore`` on PostgreSQL: the methods of its domain over the shared engine."""

    async def session_generation(self, agent_id: AgentId) -> int:
        value = await self._fetchval(
            "SELECT generation FROM session_generations WHERE agent_id = $1", agent_id
        )
        return 0 if value is None else int(value)

    async def end_sessions(self, agent_id: AgentId) -> int:
        async def op(db: Any) -> int:
            value = await db.fetchval(
                "INSERT INTO session_generations (agent_id, generation) VALUES ($1, 1)"
                " ON CONFLICT (agent_id) DO UPDATE"
                " SET generation = session_generations.generation + 1 RETURNING generation",
                agent_id,
            )
            return int(value)

        return await self._tx(op)

    async def revoke_session(self, session_id: str, until: float) -> None:
        at = now()

        async def op(db: Any) -> None:
            await db.execute("DELETE FROM revoked_sessions WHERE until <= $1", at)
            await db.execute(
                "INSERT INTO revoked_sessions (id, until) VALUES ($1, $2) ON CONFLICT (id)"
                " DO UPDATE SET until = GREATEST(revoked_sessions.until, excluded.until)",
                session_id,
                until,
            )

        await self._tx(op)

    async def session_revoked(self, session_id: str) -> bool:
        value = await self._fetchval(
            "SELECT 1 FROM revoked_sessions WHERE id = $1 AND until > $2", session_id, now()
        )
        return value is not None

    async def throttle_wait(
        self, keys: Sequence[str], limit: int, window: float, now: float
    ) -> float:
        wanted = list(keys)
        if not wanted:
            return 0.0
        rows = await self._fetch("SELECT stamps FROM throttle WHERE key = ANY($1)", wanted)
        return max(
            (throttle_delay((t for t, _ in _slots(row[0])), limit, window, now) for row in rows),
            default=0.0,
        )

    async def throttle_reserve(
        self, keys: Sequence[str], limit: int, window: float, now: float, slot: str
    ) -> float:
        wanted = list(dict.fromkeys(keys))

        async def op(db: Any) -> float:
            await self._lock(db, *(f"throttle:{key}" for key in wanted))
            current: dict[str, list[tuple[float, str]]] = {}
            for key in wanted:
                stamps = await db.fetchval("SELECT stamps FROM throttle WHERE key = $1", key)
                current[key] = [s for s in _slots(stamps) if now - s[0] < window] if stamps else []
            wait = max(
                (throttle_delay((t for t, _ in s), limit, window, now) for s in current.values()),
                default=0.0,
            )
            if wait > 0:
                return wait
            for key, slots in current.items():
                slots.append((now, slot))
                await db.execute(
                    "INSERT INTO throttle (key, stamps, until) VALUES ($1, $2, $3)"
                    " ON CONFLICT (key) DO UPDATE SET stamps = excluded.stamps,"
                    " until = excluded.until",
                    key,
                    json.dumps(slots[-limit:]),
                    max(t for t, _ in slots) + window,
                )
            await db.execute("DELETE FROM throttle WHERE until <= $1", now)
            return 0.0

        return await self._tx(op)

    async def throttle_release(self, keys: Sequence[str], slot: str) -> None:
        wanted = list(dict.fromkeys(keys))

        async def op(db: Any) -> None:
            await self._lock(db, *(f"throttle:{key}" for key in wanted))
            for key in wanted:
                stamps = await db.fetchval("SELECT stamps FROM throttle WHERE key = $1", key)
                if stamps is None:
                    continue
                kept = [s for s in _slots(stamps) if s[1] != slot]
                if kept:
                    await db.execute(
                        "UPDATE throttle SET stamps = $1 WHERE key = $2", json.dumps(kept), key
                    )
                else:
                    await db.execute("DELETE FROM throttle WHERE key = $1", key)

        if wanted:
            await self._tx(op)

    async def throttle_clear(self, keys: Sequence[str]) -> None:
        wanted = list(keys)
        if not wanted:
            return

        async def op(db: Any) -> None:
            await db.execute("DELETE FROM throttle WHERE key = ANY($1)", wanted)

        await self._tx(op)

    async def session_states(
        self, agent_ids: Sequence[AgentId], session_ids: Sequence[str]
    ) -> tuple[dict[AgentId, int], set[str]]:
        agents, sessions = list(dict.fromkeys(agent_ids)), list(dict.fromkeys(session_ids))
        at = now()

        async def op(db: Any) -> tuple[dict[AgentId, int], set[str]]:
            generations = dict.fromkeys(agents, 0)
            for agent_id, generation in await db.fetch(
                "SELECT agent_id, generation FROM session_generations WHERE agent_id = ANY($1)",
                agents,
            ):
                generations[agent_id] = int(generation)
            revoked = {
                row[0]
                for row in await db.fetch(
                    "SELECT id FROM revoked_sessions WHERE id = ANY($1) AND until > $2",
                    sessions,
                    at,
                )
            }
            return generations, revoked

        return await self._tx(op, snapshot=True)  # both answers from one snapshot

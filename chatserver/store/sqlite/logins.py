"""Agent sessions (generations, revoked ids) and the login throttle, on SQLite."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from ...types import (
    AgentId,
    now,
)
from ..common import (
    throttle_delay,
)
from .engine import SQLiteEngine
from .rows import (
    _chunks,
)


def _slots(stamps: str) -> list[tuple[float, str]]:
    """The (Unix time, slot) records of a throttle row; a bare time has slot ``""``."""
    return [
        (float(s), "") if isinstance(s, int | float) else (float(s[0]), str(s[1]))
        for s in json.loads(stamps)
    ]


class SQLiteLogins(SQLiteEngine):
    """``LoginStore`` on SQLite: the methods of its domain over the shared engine."""

    async def session_generation(self, agent_id: AgentId) -> int:
        row = await self._read_one(
            "SELECT generation FROM session_generations WHERE agent_id = ?", (agent_id,)
        )
        return 0 if row is None else int(row[0])

    async def end_sessions(self, agent_id: AgentId) -> int:
        def op(db: sqlite3.Connection) -> int:
            row = db.execute(
                "INSERT INTO session_generations (agent_id, generation) VALUES (?, 1)"
                " ON CONFLICT (agent_id) DO UPDATE SET generation = generation + 1"
                " RETURNING generation",
                (agent_id,),
            ).fetchone()
            return int(row[0])

        return await self._run(op)

    async def revoke_session(self, session_id: str, until: float) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM revoked_sessions WHERE until <= ?", (now(),))
            db.execute(
                "INSERT INTO revoked_sessions (id, until) VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET until = max(until, excluded.until)",
                (session_id, until),
            )

        await self._run(op)

    async def session_revoked(self, session_id: str) -> bool:
        row = await self._read_one(
            "SELECT 1 FROM revoked_sessions WHERE id = ? AND until > ?", (session_id, now())
        )
        return row is not None

    async def throttle_wait(
        self, keys: Sequence[str], limit: int, window: float, now: float
    ) -> float:
        wanted = list(keys)
        if not wanted:
            return 0.0
        marks = ", ".join("?" * len(wanted))
        rows = await self._read_all(
            f"SELECT stamps FROM throttle WHERE key IN ({marks})", tuple(wanted)
        )
        return max(
            (throttle_delay((t for t, _ in _slots(row[0])), limit, window, now) for row in rows),
            default=0.0,
        )

    async def throttle_reserve(
        self, keys: Sequence[str], limit: int, window: float, now: float, slot: str
    ) -> float:
        wanted = list(dict.fromkeys(keys))

        # One write transaction (BEGIN IMMEDIATE holds the database's write lock),
        # so the check and the records are one step for every connection and process.
        def op(db: sqlite3.Connection) -> float:
            db.execute("DELETE FROM throttle WHERE until <= ?", (now,))
            current: dict[str, list[tuple[float, str]]] = {}
            for key in wanted:
                row = db.execute("SELECT stamps FROM throttle WHERE key = ?", (key,)).fetchone()
                current[key] = [s for s in _slots(row[0]) if now - s[0] < window] if row else []
            wait = max(
                (throttle_delay((t for t, _ in s), limit, window, now) for s in current.values()),
                default=0.0,
            )
            if wait > 0:
                return wait
            for key, slots in current.items():
                slots.append((now, slot))
                db.execute(
                    "INSERT INTO throttle (key, stamps, until) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET stamps = excluded.stamps,"
                    " until = excluded.until",
                    (key, json.dumps(slots[-limit:]), max(t for t, _ in slots) + window),
                )
            return 0.0

        return await self._run(op)

    async def throttle_release(self, keys: Sequence[str], slot: str) -> None:
        wanted = list(dict.fromkeys(keys))

        def op(db: sqlite3.Connection) -> None:
            for key in wanted:
                row = db.execute("SELECT stamps FROM throttle WHERE key = ?", (key,)).fetchone()
                if row is None:
                    continue
                kept = [s for s in _slots(row[0]) if s[1] != slot]
                if kept:
                    db.execute(
                        "UPDATE throttle SET stamps = ? WHERE key = ?", (json.dumps(kept), key)
                    )
                else:
                    db.execute("DELETE FROM throttle WHERE key = ?", (key,))

        if wanted:
            await self._run(op)

    async def throttle_clear(self, keys: Sequence[str]) -> None:
        wanted = list(keys)
        if not wanted:
            return
        marks = ", ".join("?" * len(wanted))
        await self._run(
            lambda db: db.execute(f"DELETE FROM throttle WHERE key IN ({marks})", tuple(wanted))
        )

    async def session_states(
        self, agent_ids: Sequence[AgentId], session_ids: Sequence[str]
    ) -> tuple[dict[AgentId, int], set[str]]:
        agents, sessions = list(dict.fromkeys(agent_ids)), list(dict.fromkeys(session_ids))
        at = now()

        def op(db: sqlite3.Connection) -> tuple[dict[AgentId, int], set[str]]:
            generations = dict.fromkeys(agents, 0)
            revoked: set[str] = set()
            for chunk in _chunks(agents):
                marks = ", ".join("?" * len(chunk))
                for agent_id, generation in db.execute(
                    "SELECT agent_id, generation FROM session_generations"
                    f" WHERE agent_id IN ({marks})",
                    chunk,
                ):
                    generations[agent_id] = int(generation)
            for chunk in _chunks(sessions):
                marks = ", ".join("?" * len(chunk))
                revoked.update(
                    row[0]
                    for row in db.execute(
                        f"SELECT id FROM revoked_sessions WHERE id IN ({marks}) AND until > ?",
                        (*chunk, at),
                    )
                )
            return generations, revoked

        return await self._read(op)

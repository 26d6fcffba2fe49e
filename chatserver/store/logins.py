"""The logins domain of the Store: agent session revocation and the login throttle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..types import (
    AgentId,
)


class LoginStore(Protocol):
    """Agent sessions (docs/console.md, "Sessions") and the login throttle.

    * **Agent sessions.** An agent's session generation starts at 0 and only
      grows, by one per ``end_sessions``, atomically (two concurrent calls
      return two different numbers), and by one per ``save_agent`` that takes
      the agent's chat rights away (``AgentStore``).  ``revoke_session`` marks
      one session id as revoked until a time; ``session_revoked`` answers it
      until then (afterwards the record may be gone: the session has
      expired).  ``session_states`` answers both for many agents and sessions
      in one call (the periodic re-check of open agent sockets).
    * **Throttle.** Attempts per key, shared by every process of a deployment
      (login attempts).  ``throttle_reserve`` checks and records in one atomic
      step: while every key has fewer than ``limit`` records in the
      ``window`` before ``now`` it records one attempt (a named slot) for
      each key and answers 0, else it records nothing and answers the wait;
      of any number of concurrent calls, from any process, no more succeed
      than the limit leaves room for.  ``throttle_release`` drops one slot (an
      attempt that did not fail), ``throttle_wait`` answers how long until
      every key has fewer than ``limit`` records, ``throttle_clear`` forgets
      keys.  Records older than the window may be dropped.
    """

    async def session_generation(self, agent_id: AgentId) -> int:
        """The agent's session generation: 0 until ``end_sessions`` first raises it.

        Any string is accepted (an unknown agent has generation 0).
        """

    async def end_sessions(self, agent_id: AgentId) -> int:
        """Raise the agent's session generation by one and return the new value.

        Atomic: concurrent calls each get a different, higher number.  The
        generation survives everything else done to the agent (``save_agent``
        only ever raises it, when chat rights go), so sessions signed with an
        older one stay void.
        """

    async def revoke_session(self, session_id: str, until: float) -> None:
        """Record ``session_id`` (at most 64 characters) as revoked until ``until``.

        ``until`` is a Unix time, the session's own expiry: after it the
        record may be dropped.  Revoking again keeps the later of the two times.
        """

    async def session_revoked(self, session_id: str) -> bool:
        """Whether ``session_id`` was revoked and its ``until`` is still ahead."""

    async def session_states(
        self, agent_ids: Sequence[AgentId], session_ids: Sequence[str]
    ) -> tuple[dict[AgentId, int], set[str]]:
        """``session_generation`` of each of ``agent_ids`` and which of
        ``session_ids`` are ``session_revoked``, in one call (one round trip).

        Empty sequences are allowed.  Answers the same as the single calls
        would at some moment during the call.
        """

    async def throttle_wait(
        self, keys: Sequence[str], limit: int, window: float, now: float
    ) -> float:
        """Seconds until each of ``keys`` has fewer than ``limit`` records in the
        ``window`` seconds before ``now`` (Unix time); 0 when each has already.

        Keys are at most 64 characters; an unknown key has no records.  The
        answer is ``throttle_delay`` of the key with the longest wait.
        """

    async def throttle_reserve(
        self, keys: Sequence[str], limit: int, window: float, now: float, slot: str
    ) -> float:
        """Reserve an attempt named ``slot`` at ``now`` on each of ``keys``, if all have room.

        When each key has fewer than ``limit`` records in the ``window`` seconds
        before ``now``, records ``slot`` at ``now`` for every key and answers 0;
        otherwise records nothing and answers what ``throttle_wait`` would (> 0).
        The check and the records are one atomic step over all the keys and every
        process: of concurrent calls on a key with ``n`` records, at most
        ``limit - n`` answer 0.  ``slot`` is new for each attempt (at most 64
        characters); a key keeps at most ``limit`` records.
        """

    async def throttle_release(self, keys: Sequence[str], slot: str) -> None:
        """Drop the record ``slot`` from each of ``keys`` (an attempt that did not
        fail); a key or slot unknown is no error."""

    async def throttle_clear(self, keys: Sequence[str]) -> None:
        """Forget every record of ``keys``."""

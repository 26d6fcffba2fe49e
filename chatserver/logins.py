"""Agent sign-ins: session ids, generations and revocation on every process.

A **grant** is one sign-in of an agent: a random session id, the agent's
session generation when they signed in, and an expiry 12 hours later.  The
console's session cookie carries it (``agent_console/auth.py``), and so does
every agent token for the WebSocket ``hello`` (``agent.<agent>.<expiry>.<session>.<generation>``,
signed): a console page hands out tokens of its own session with its own
expiry, ``POST /api/login`` a token of a new session.  So a token never
outlives the sign-in it came from.

A grant is **valid** while it has not expired, the agent exists and is not
disabled, its generation is the agent's current one
(``Store.session_generation``) and its session id is not revoked
(``Store.session_revoked``).  Both are read from the Store on every check, so
every process of a Redis deployment agrees at once.  Two ways to end grants:

* ``revoke`` (sign out): one session id is revoked until its expiry, that
  browser's cookie, any copy of it and every token derived from it.  The
  agent's other sessions go on.
* ``end_all`` (sign out everywhere, a password change, disabling): the agent's
  generation goes up by one, so every grant signed before is void for good;
  nothing ever lowers it (re-enabling an agent does not revive anything).
  Losing chat rights (disabled, or made an analyst) raises it in the Store
  itself, in the same step as saving the record (``Store.save_agent``).

Both also publish a control event (``control.py``): every process closes the
agent's WebSocket connections opened with the ended grants, with ``4106
session_ended``.  That event is delivered at most once; a connection that
misses it (or the ``agent`` event of a lost chat right) is closed by its
process's periodic re-check (``control.recheck_sessions``, every minute), and
its next ``hello`` is refused.

Sign-in attempts (the console's form and ``POST /api/login``) are counted by
``LoginThrottle`` in the Store, so every process of a deployment shares one
count, and each attempt is counted *before* its password is checked: a burst
of concurrent guesses gets no more checks than the limit.  ``sign_in`` checks
the password off the event loop and upgrades an outdated hash.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .security import Signer, hash_password_off_loop, needs_rehash, verify_password_off_loop
from .store import Store
from .types import Agent, AgentId

SESSION_TTL = 12 * 3600
TOKEN_PURPOSE = "agent"


@dataclass(frozen=True, slots=True)
class Grant:
    """One sign-in of an agent (see the module docstring)."""

    agent_id: AgentId
    session: str  # random, 24 hex digits; also the key of the session's CSRF token
    generation: int
    expiry: int  # Unix time

    def fields(self) -> tuple[str, ...]:
        """The signed fields a cookie or token carries, in this order."""
        return (self.agent_id, str(self.expiry), self.session, str(self.generation))

    @classmethod
    def parse(cls, fields: list[str] | None, now: float | None = None) -> Grant | None:
        """The grant of verified token ``fields``; ``None`` when malformed or expired."""
        if not fields or len(fields) != 4:
            return None
        agent_id, expiry, session, generation = fields
        if not (expiry.isdigit() and generation.isdigit() and session):
            return None
        if int(expiry) < (time.time() if now is None else now):
            return None
        return cls(agent_id, session, int(generation), int(expiry))


async def grant(store: Store, agent: Agent, session: str | None = None) -> Grant:
    """A new sign-in of ``agent`` at the current generation, 12 hours long.

    ``session`` carries a session id over (the browser that ended the
    agent's other sessions stays signed in with the same CSRF token); by
    default a new one is drawn.
    """
    return Grant(
        agent.id,
        session or secrets.token_hex(12),
        await store.session_generation(agent.id),
        int(time.time() + SESSION_TTL),
    )


def token(signer: Signer, grant: Grant) -> str:
    """An agent token for the WebSocket ``hello``, valid as long as ``grant``."""
    return signer.sign(TOKEN_PURPOSE, *grant.fields())


def from_token(signer: Signer, token: str) -> Grant | None:
    """The grant of a well-signed, unexpired agent token (not checked against the Store)."""
    return Grant.parse(signer.verify(TOKEN_PURPOSE, token))


async def ended(store: Store, grant: Grant) -> bool:
    """Whether ``grant`` was ended: its session revoked, or a newer generation begun."""
    if await store.session_generation(grant.agent_id) != grant.generation:
        return True
    return await store.session_revoked(grant.session)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One sign-in attempt as ``LoginThrottle.attempt`` recorded it."""

    ids: tuple[str, ...]  # the Store's keys, the email's last
    slot: str  # the attempt's record on each key
    wait: float  # seconds to wait when refused (nothing recorded); 0 when let through


class LoginThrottle:
    """Sign-in attempts per client address and per email, counted in the Store.

    ``attempt`` reserves one attempt on every key, atomically, before the
    password is checked: while each key has had fewer than ``limit`` attempts
    in the last ``window`` seconds it records one and lets the attempt through
    (``wait`` 0), else it records nothing and answers how many seconds to wait.
    A wrong password leaves the record standing (a failure); ``succeeded``
    takes it back from the address and forgets every failure of the email (a
    right password clears that account's count, not the address's).  Every
    process of a deployment shares the count (``Store.throttle_reserve``);
    times are Unix times.  Keys reach the Store hashed, so it holds no emails
    or addresses and no key is too long.
    """

    def __init__(self, store: Store, limit: int = 10, window: float = 300.0) -> None:
        self.store = store
        self.limit = limit
        self.window = window

    @staticmethod
    def keys(address: str, email: str) -> tuple[str, str]:
        """The keys of an attempt from ``address`` for ``email`` (the email's last)."""
        return (f"ip:{address}", f"email:{email.strip().lower()}")

    @staticmethod
    def _ids(keys: Sequence[str]) -> tuple[str, ...]:
        return tuple("login:" + hashlib.sha256(key.encode()).hexdigest()[:32] for key in keys)

    async def attempt(self, keys: Sequence[str]) -> Attempt:
        ids, slot = self._ids(keys), secrets.token_hex(12)
        wait = await self.store.throttle_reserve(ids, self.limit, self.window, time.time(), slot)
        return Attempt(ids, slot, wait)

    async def succeeded(self, attempt: Attempt) -> None:
        await self.store.throttle_clear(attempt.ids[-1:])
        await self.store.throttle_release(attempt.ids[:-1], attempt.slot)


async def sign_in(store: Store, email: str, password: str) -> Agent | None:
    """The enabled agent with ``email`` whose password this is, else ``None``.

    The password is checked on the password threads, off the event loop
    (``security.verify_password_off_loop``); an unknown email costs a check all
    the same, so the time taken does not tell which emails exist.  A right
    password whose stored hash is outdated (scrypt of earlier versions, or
    older argon2id parameters) is hashed anew and stored, unless the hash
    changed meanwhile (``Store.set_password_hash``).  Count the attempt first
    (``LoginThrottle.attempt``).
    """
    agent = await store.agent_by_email(email) if email else None
    ok = await verify_password_off_loop(password, agent.password_hash if agent else None)
    if agent is None or not ok or agent.disabled:
        return None
    if needs_rehash(agent.password_hash):
        upgraded = await hash_password_off_loop(password)
        await store.set_password_hash(agent.id, agent.password_hash, upgraded)
    return agent

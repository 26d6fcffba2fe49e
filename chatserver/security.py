"""Secrets, password hashing and signed tokens.

* Passwords are hashed with argon2id (``argon2-cffi``): 19 MiB of memory, 2
  passes, 1 lane, 16-byte salt, 32-byte tag, the OWASP Password Storage Cheat
  Sheet's argon2id setting (RFC 9106 names argon2id the variant to use).  The
  hash is a PHC string (``$argon2id$v=19$m=19456,t=2,p=1$...``), slow on purpose,
  never stored or logged in clear.  ``verify_password`` also takes the hashes of
  earlier versions (``scrypt$16384$8$1$<salt>$<digest>``); ``needs_rehash``
  tells which stored hashes to replace after a good login (``logins.sign_in``).
* Hashing and verifying take tens of milliseconds of CPU, so async code calls
  ``hash_password_off_loop`` / ``verify_password_off_loop``: they run on a small
  pool of worker threads (``PASSWORD_WORKERS``, at a lower CPU priority than
  the event loop on Linux), never on the event loop, and the pool bounds how
  many run at once (memory and CPU under a burst).
* Tokens are ``<purpose>.<fields...>.<signature>`` with an HMAC-SHA256 over
  everything before the last dot, keyed by the server secret.  The purpose
  prefix keeps a visitor token from ever passing as an agent token.
* The server secret lives in ``<data dir>/secret`` (created 0600 on first
  start); replacing it signs every client out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from . import threads

# OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
_HASHER = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
# Threads hashing at once, per process: every core but one, which stays the event loop's.
PASSWORD_WORKERS = max(1, (os.cpu_count() or 2) - 1)
PASSWORD_NICE = 10  # the password threads' niceness (Linux), above the event loop's


def _lower_priority() -> None:
    """Run the calling password thread at a lower CPU priority than the event loop.

    Linux schedules threads one by one, so the loop thread is served first when
    the cores are busy and logins wait instead of sockets.  Elsewhere, or if the
    system refuses, the thread keeps its priority.  It is named for the OS
    (``threads.settle``) as chatserver's other threads are.
    """
    threads.settle()
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_NICE)


_pool = ThreadPoolExecutor(
    PASSWORD_WORKERS, thread_name_prefix="chatserver-password", initializer=_lower_priority
)


def load_secret(data_dir: Path) -> bytes:
    """Read the server secret from ``data_dir``, creating it on first use."""
    path = data_dir / "secret"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret.hex())
    return secret


def hash_password(password: str) -> str:
    """A new argon2id hash of ``password`` (blocking: see ``hash_password_off_loop``)."""
    return _HASHER.hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches the ``stored`` hash (argon2id, or the scrypt of
    earlier versions); ``False`` for a malformed hash.

    ``stored=None`` (no such account) costs a verification all the same, against
    a hash of a random password, and answers ``False``: the time taken does not
    tell whether an account exists.  Blocking: see ``verify_password_off_loop``.
    """
    if stored is None:
        stored, password = _dummy_hash(), ""
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` is not an argon2id hash with the current parameters."""
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


async def hash_password_off_loop(password: str) -> str:
    """``hash_password`` on the password threads, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_pool, hash_password, password)


async def verify_password_off_loop(password: str, stored: str | None) -> bool:
    """``verify_password`` on the password threads, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(
        _pool, verify_password, password, stored
    )


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _verify_scrypt(password: str, stored: str) -> bool:
    """The check of a hash of earlier versions: ``scrypt$n$r$p$<salt hex>$<digest hex>``."""
    try:
        _scheme, n, r, p, salt, digest = stored.split("$")
        candidate = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
        return hmac.compare_digest(candidate, bytes.fromhex(digest))
    except (ValueError, OverflowError):
        return False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """Signs and checks ``purpose.field.field...`` tokens with the server secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode(), hashlib.sha256).digest()[:24])

    def sign(self, purpose: str, *fields: str) -> str:
        if any("." in f for f in (purpose, *fields)):
            raise ValueError("token fields must not contain '.'")
        body = ".".join((purpose, *fields))
        return f"{body}.{self._mac(body)}"

    def verify(self, purpose: str, token: str) -> list[str] | None:
        """The signed fields of a valid ``purpose`` token, else ``None``."""
        body, _, mac = token.rpartition(".")
        if not body or not hmac.compare_digest(mac, self._mac(body)):
            return None
        got, *fields = body.split(".")
        return fields if got == purpose else None


class Throttle:
    """Counts failures per key in a sliding window (login attempts).

    ``blocked`` answers how many seconds to wait when any key has reached
    ``limit`` failures in the last ``window`` seconds, else 0.
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        stamps = [t for t in self._failures.get(key, ()) if now - t < self.window]
        if stamps:
            self._failures[key] = stamps
        else:
            self._failures.pop(key, None)
        return stamps

    def blocked(self, keys: tuple[str, ...], now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        wait = 0.0
        for key in keys:
            stamps = self._recent(key, now)
            if len(stamps) >= self.limit:
                wait = max(wait, self.window - (now - stamps[0]))
        return wait

    def failed(self, keys: tuple[str, ...], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in keys:
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, keys: tuple[str, ...]) -> None:
        self._failures.pop(keys[-1], None)


def load_secret_redis(url: str, key: str = "chat:secret") -> bytes:
    """The server secret shared by every process of a Redis deployment.

    The first process to start creates it (``SET NX``); the others read it, so
    a token signed by one process verifies on all of them.
    """
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.set(key, secrets.token_bytes(32).hex(), nx=True)
        value = client.get(key)
    finally:
        client.close()
    assert isinstance(value, bytes)
    return bytes.fromhex(value.decode())


def load_secret_postgres(url: str) -> bytes:
    """The server secret shared by every process whose record is the database at ``url``.

    The first process to start creates it (the single row of ``server_secret``,
    inserted with ``ON CONFLICT DO NOTHING``); the others read it, so a token
    signed by one process verifies on all of them.  Brings the schema up to
    date first (``migrations_postgres``).  Blocking: it runs its own event loop
    on a thread of its own, so it may be called with or without a running
    loop.  Failures raise ``StoreError`` naming the URL without its password.
    """
    from .store.postgres.engine import PostgresEngine

    async def load() -> str:
        engine = PostgresEngine(url, min_size=1, max_size=1)
        await engine.start()
        try:

            async def op(db: Any) -> str:
                await db.execute(
                    "INSERT INTO server_secret (id, secret) VALUES (1, $1)"
                    " ON CONFLICT (id) DO NOTHING",
                    secrets.token_bytes(32).hex(),
                )
                return str(await db.fetchval("SELECT secret FROM server_secret WHERE id = 1"))

            return await engine.run(op)
        finally:
            await engine.close()

    with ThreadPoolExecutor(1, thread_name_prefix="chatserver-secret") as pool:
        return bytes.fromhex(pool.submit(asyncio.run, load()).result())

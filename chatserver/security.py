"""Secrets, password hashing and signed tokens.

* Passwords are hashed with scrypt (n=2**14, r=8, p=1, 16-byte salt): slow
  on purpose, never stored or logged in clear.
* Tokens are ``<purpose>.<fields...>.<signature>`` with an HMAC-SHA256 over
  everything before the last dot, keyed by the server secret.  The purpose
  prefix keeps a visitor token from ever passing as an agent token.
* The server secret lives in ``<data dir>/secret`` (created 0600 on first
  start); replacing it signs every client out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


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
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(candidate, bytes.fromhex(digest))


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

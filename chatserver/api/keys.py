"""API keys: per-site credentials for the REST API, stored hashed, shown once.

A key is ``csk_<site id>.<key id>_<secret>``: the site and key ids say where
its record is, the secret is 32 random bytes (64 hex digits).  The record is
a site document of kind ``api-key`` (``Store.put_doc``, no table of its own)
holding the key's name, when it was made and the SHA-256 digest of the
secret; the secret itself is never stored and is shown once, when the key is
made.  A plain, fast hash is right here: argon2 and its kind exist to make
guessing a *password* slow, but nobody guesses 256 random bits, and a slow
hash would cost every API request a password check's CPU.  Digests are
compared in constant time.

Nothing is cached: every request reads its key's record (one indexed read),
so a revoked key (its documents deleted) is refused at once, by every
process, with no control event to miss.  When a key was last used is kept in
a second document (kind ``api-key-used``), written at most once a minute per
key per process: a use racing a revocation can leave that small document
behind (``of_site`` drops it), but can never bring the key back.

Requests per key are limited to ``--api-rate`` a minute.  On a backend
that many processes share (``redis``, ``postgres+redis``) the count is the
Store's throttle (``Store.throttle_reserve``: at most that many requests in
any 60 seconds, over every process, one atomic step per request); on one
process (``embedded``, ``postgres``) it is a token bucket in memory
(``quotas.Limiter``: a minute's worth, refilled continuously), which costs
no Store write.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from ..quotas import Limiter
from ..store import Store
from ..types import Doc, SiteId, now

KIND = "api-key"  # site documents: the keys
USED_KIND = "api-key-used"  # site documents: when each key was last used
PREFIX = "csk_"
MAX_KEYS = 50  # keys per site
MAX_NAME = 100  # characters of a key's name
USED_EVERY = 60.0  # seconds between writes of a key's last use, per process
RATE_WINDOW = 60.0  # seconds: --api-rate is requests per minute
_KEY_ID = re.compile(r"^[0-9a-f]{12}$")
_SECRET = re.compile(r"^[0-9a-f]{64}$")
_SITE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record (never its secret)."""

    id: str  # 12 hex digits, unique within the site
    site_id: SiteId
    name: str
    digest: str  # SHA-256 of the secret, hex
    created_at: float
    last_used: float | None = None

    @property
    def prefix(self) -> str:
        """The key up to its secret: what the console lists, safe to show and log."""
        return f"{PREFIX}{self.site_id}.{self.id}"

    @classmethod
    def from_doc(cls, doc: Doc, last_used: float | None = None) -> ApiKey:
        return cls(
            doc.id,
            doc.site_id,
            str(doc.data.get("name", "")),
            str(doc.data.get("digest", "")),
            doc.created_at,
            last_used,
        )


def parse(token: str) -> tuple[SiteId, str, str] | None:
    """``(site id, key id, secret)`` of a well-formed key, else ``None``."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    ref, _, secret = token[len(PREFIX) :].rpartition("_")
    site_id, _, key_id = ref.rpartition(".")
    if not (_SITE_ID.match(site_id) and _KEY_ID.match(key_id) and _SECRET.match(secret)):
        return None
    return site_id, key_id, secret


class ApiKeys:
    """The keys of every site, and this process's request rate per key."""

    def __init__(self, store: Store, rate: int, shared: bool = False) -> None:
        self.store = store
        self.rate = rate  # requests per key per minute; 0: no limit
        self.shared = shared  # counted in the Store, for every process (else in memory)
        self.limiter = Limiter(rate, RATE_WINDOW)
        self._used: dict[str, float] = {}  # key id -> when this process last wrote its use

    async def create(self, site_id: SiteId, name: str) -> tuple[ApiKey, str]:
        """A new key of the site and the whole key (shown once, never stored)."""
        key_id, secret = secrets.token_hex(6), secrets.token_hex(32)
        doc = await self.store.put_doc(
            site_id, KIND, key_id, {"name": name, "digest": digest(secret)}
        )
        key = ApiKey.from_doc(doc)
        return key, f"{key.prefix}_{secret}"

    async def of_site(self, site_id: SiteId) -> list[ApiKey]:
        """The site's keys, oldest first, with when each was last used."""
        docs = await self.store.list_docs(site_id, KIND)
        ids = {d.id for d in docs}
        used: dict[str, float] = {}
        for doc in await self.store.list_docs(site_id, USED_KIND):
            if doc.id in ids:
                used[doc.id] = float(doc.data.get("at", 0.0))
            else:  # written by a use that raced the key's revocation
                await self.store.delete_doc(site_id, USED_KIND, doc.id)
        return [ApiKey.from_doc(d, used.get(d.id)) for d in docs]

    async def revoke(self, site_id: SiteId, key_id: str) -> ApiKey | None:
        """Delete a key of the site; the key it was, or ``None`` if there was none."""
        if not _KEY_ID.match(key_id):
            return None
        doc = await self.store.get_doc(site_id, KIND, key_id)
        if doc is None or not await self.store.delete_doc(site_id, KIND, key_id):
            return None
        await self.store.delete_doc(site_id, USED_KIND, key_id)
        self._used.pop(key_id, None)
        return ApiKey.from_doc(doc)

    async def authenticate(self, token: str) -> ApiKey | None:
        """The key ``token`` is, if it exists and its secret is right; notes its use."""
        parsed = parse(token)
        if parsed is None:
            return None
        site_id, key_id, secret = parsed
        doc = await self.store.get_doc(site_id, KIND, key_id)
        if doc is None:
            return None
        key = ApiKey.from_doc(doc)
        if not hmac.compare_digest(key.digest, digest(secret)):
            return None
        at = now()
        if at - self._used.get(key_id, 0.0) >= USED_EVERY:
            self._used[key_id] = at
            await self.store.put_doc(site_id, USED_KIND, key_id, {"at": at})
        return key

    async def take(self, key: ApiKey) -> float:
        """Count one request of ``key``: 0, or the seconds to wait (refused, not counted)."""
        if self.rate <= 0:
            return 0.0
        if not self.shared:
            return self.limiter.take(f"{key.site_id}.{key.id}")
        ref = hashlib.sha256(f"{key.site_id}.{key.id}".encode()).hexdigest()[:32]
        return await self.store.throttle_reserve(
            (f"api:{ref}",), self.rate, RATE_WINDOW, time.time(), secrets.token_hex(12)
        )

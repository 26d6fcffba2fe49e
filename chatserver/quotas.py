"""Abuse limits for anonymous traffic: rates per address and per site, site quotas.

Everything that an anonymous client can make the server keep is bounded
here (docs/operations.md, "Abuse limits"):

* **Rates** (``RateLimits``), counted **per process** in memory: visitor
  ``hello`` frames and attachment uploads, per client address and per site.
  The address is the one uvicorn gives (the peer, or the ``X-Forwarded-For``
  of a proxy listed in ``--forwarded-allow-ips`` /
  ``CHATSERVER_FORWARDED_ALLOW_IPS``, default ``127.0.0.1``).  With N processes behind
  a balancer a client gets up to N times the rate.
* **Site quotas** (``Quotas``): new visitor rows per site per hour (per
  process, like the rates), and a site's unposted and total attachment
  bytes (from the Store's counters, so shared by every process; checked
  before a write, so concurrent uploads can pass a quota by the files in
  flight).

A limit of 0 turns that limit off.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .protocol.codec import TokenBucket

MAX_KEYS = 100_000  # buckets kept per limiter before full (idle) ones are dropped
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    """The limits; every default is documented in docs/operations.md."""

    hellos_per_address: int = 300  # visitor hellos per address per minute (offices share one)
    hellos_per_site: int = 6000  # visitor hellos per site per minute
    uploads_per_address: int = 20  # uploads per address per 10 minutes
    uploads_per_site: int = 1200  # uploads per site per 10 minutes
    upload_ttl: float = 3600.0  # seconds an unposted upload is kept
    site_unposted_bytes: int = 256 * 1024 * 1024  # unposted upload bytes per site
    site_attachment_bytes: int = 0  # all attachment bytes per site (0: no limit)
    site_new_visitors: int = 20_000  # visitor rows created per site per hour


class Limiter:
    """``limit`` events per ``window`` seconds for each key: a token bucket per
    key holding ``limit`` tokens, refilled at ``limit / window`` a second.

    A bucket back at full is the same as none, so when more than
    ``MAX_KEYS`` keys are held, full ones are dropped (memory stays bounded
    by the keys active within one window).  ``limit`` 0 allows everything.
    """

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self.refused = 0

    def take(self, key: str) -> float:
        """Count one event of ``key``: 0 if allowed, else the seconds to wait (nothing counted)."""
        if self.limit <= 0:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                self._prune(now)
            bucket = self._buckets[key] = TokenBucket(
                self.limit / self.window, float(self.limit), now
            )
        if bucket.take(now):
            return 0.0
        self.refused += 1
        return max(bucket.retry_after(), 0.001)

    def _prune(self, now: float) -> None:
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.stamp) * b.rate >= b.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= MAX_KEYS:  # all busy: forget the oldest half
            for key in list(self._buckets)[: MAX_KEYS // 2]:
                del self._buckets[key]


class Quotas:
    """This process's limiters, built from a ``QuotaConfig``."""

    def __init__(self, config: QuotaConfig | None = None) -> None:
        self.config = config or QuotaConfig()
        c = self.config
        self.hellos_address = Limiter(c.hellos_per_address, 60.0)
        self.hellos_site = Limiter(c.hellos_per_site, 60.0)
        self.uploads_address = Limiter(c.uploads_per_address, 600.0)
        self.uploads_site = Limiter(c.uploads_per_site, 600.0)
        self.new_visitors = Limiter(c.site_new_visitors, HOUR)
        self.bytes_refused = 0  # uploads refused by a site's byte quota
        self.swept = 0  # unposted uploads deleted by this process's sweep

    def hello(self, address: str, site_id: str) -> float:
        """A visitor hello from ``address`` for the site: 0, or seconds to wait."""
        return self.hellos_address.take(address) or self.hellos_site.take(site_id)

    def upload(self, address: str, site_id: str) -> float:
        """An upload from ``address`` for the site: 0, or seconds to wait."""
        return self.uploads_address.take(address) or self.uploads_site.take(site_id)

    def bytes_refusal(self, unposted: int, total: int, size: int) -> str | None:
        """Why a file of ``size`` bytes passes the site's byte quotas, or ``None``."""
        c = self.config
        if c.site_unposted_bytes and unposted + size > c.site_unposted_bytes:
            return (
                "the site's quota of unposted uploads is used up: post or wait for "
                "old uploads to expire"
            )
        if c.site_attachment_bytes and total + size > c.site_attachment_bytes:
            return "the site's attachment storage quota is used up"
        return None

    def stats(self) -> dict[str, int]:
        """Refusals since start, for ``/healthz``."""
        return {
            "hellos_refused": self.hellos_address.refused + self.hellos_site.refused,
            "uploads_refused": self.uploads_address.refused + self.uploads_site.refused,
            "new_visitors_refused": self.new_visitors.refused,
            "uploads_over_quota": self.bytes_refused,
            "unposted_swept": self.swept,
        }

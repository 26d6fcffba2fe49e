"""Webhook signatures: ``Chatserver-Signature: t=<unix seconds>,v1=<hex>``.

``v1`` is the HMAC-SHA256, keyed with the endpoint's secret (its UTF-8
bytes), of ``"<t>.<body>"``: the timestamp, a dot and the raw request body.
A receiver recomputes it over the bytes it received, compares in constant
time, and refuses a ``t`` more than ``REPLAY_WINDOW`` seconds from its own
clock, so a captured request cannot be replayed later.  ``verify`` is the
recipe of docs/integrations.md, and the tests run it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Chatserver-Signature"
DELIVERY_HEADER = "Chatserver-Delivery"
EVENT_HEADER = "Chatserver-Event"
REPLAY_WINDOW = 300  # seconds


def new_secret() -> str:
    """A new endpoint secret: ``whsec_`` and 32 random bytes in hex."""
    return "whsec_" + secrets.token_hex(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Chatserver-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float, window: int = REPLAY_WINDOW) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` within ``window`` of ``now``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > window:
        return False
    expected = signature(secret, timestamp, body).split(",v1=", 1)[1]
    return any(
        hmac.compare_digest(expected, v)
        for k, v in (p.split("=", 1) for p in header.split(",") if "=" in p)
        if k == "v1"
    )

"""Webhook options (the CLI's ``--webhook-*``, ``cli/webhook_options.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..outbox import OutboxConfig


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    timeout: float = 10.0  # seconds for one delivery, connection to last byte read
    max_response: int = 64 * 1024  # bytes of a receiver's answer read, at most
    allow_private: bool = False  # every endpoint may reach private and loopback addresses
    disable_after: int = 50  # consecutive failed attempts that switch an endpoint off
    poll: float = 1.0  # seconds between looks at the change feed when nothing woke it
    # retries, give-up age, lease (chatserver/outbox.py)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)

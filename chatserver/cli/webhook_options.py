"""Command-line options of webhooks and the outbox (``chatserver/webhooks/``, docs/integrations.md).

Each has a ``CHATSERVER_*`` environment twin, as every option does.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from ..outbox import OutboxConfig
from ..webhooks.settings import WebhookConfig


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CHATSERVER_{name}") or default


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def add_webhook_options(p: argparse.ArgumentParser, size: Callable[[str], int]) -> None:
    """The options, on ``p``; ``size`` parses byte counts (``options.size``: 64K, 1M)."""
    p.add_argument(
        "--webhook-timeout",
        type=_positive,
        default=_positive(_env("WEBHOOK_TIMEOUT", "10")),
        metavar="SECONDS",
        help="a webhook delivery that has not been answered in this long failed "
        "(CHATSERVER_WEBHOOK_TIMEOUT, default 10)",
    )
    p.add_argument(
        "--webhook-max-response",
        type=size,
        default=size(_env("WEBHOOK_MAX_RESPONSE", "64K")),
        metavar="SIZE",
        help="read at most this much of a webhook receiver's answer "
        "(CHATSERVER_WEBHOOK_MAX_RESPONSE, default 64K)",
    )
    p.add_argument(
        "--webhook-allow-private",
        action="store_true",
        default=_env("WEBHOOK_ALLOW_PRIVATE", "").lower() in ("1", "yes", "true"),
        help="let every webhook endpoint reach private, loopback and link-local addresses "
        "(by default only endpoints an admin marked may) (CHATSERVER_WEBHOOK_ALLOW_PRIVATE=1)",
    )
    p.add_argument(
        "--webhook-disable-after",
        type=int,
        default=int(_env("WEBHOOK_DISABLE_AFTER", "50")),
        metavar="N",
        help="switch a webhook endpoint off after N failed attempts in a row "
        "(CHATSERVER_WEBHOOK_DISABLE_AFTER, default 50)",
    )
    p.add_argument(
        "--outbox-retry-base",
        type=_positive,
        default=_positive(_env("OUTBOX_RETRY_BASE", "10")),
        metavar="SECONDS",
        help="wait this long before the first retry of a failed delivery, then twice as "
        "long each time, with jitter (CHATSERVER_OUTBOX_RETRY_BASE, default 10)",
    )
    p.add_argument(
        "--outbox-retry-cap",
        type=_positive,
        default=_positive(_env("OUTBOX_RETRY_CAP", "3600")),
        metavar="SECONDS",
        help="the longest wait between two attempts (CHATSERVER_OUTBOX_RETRY_CAP, default 3600)",
    )
    p.add_argument(
        "--outbox-give-up",
        type=_positive,
        default=_positive(_env("OUTBOX_GIVE_UP", "86400")),
        metavar="SECONDS",
        help="a delivery still failing this long after it was written fails for good "
        "(CHATSERVER_OUTBOX_GIVE_UP, default 86400: a day)",
    )
    p.add_argument(
        "--outbox-lease",
        type=_positive,
        default=_positive(_env("OUTBOX_LEASE", "60")),
        metavar="SECONDS",
        help="a delivery taken by a process that died is tried again after this long; "
        "at least the webhook timeout and a second (CHATSERVER_OUTBOX_LEASE, default 60)",
    )
    p.add_argument(
        "--outbox-poll",
        type=_positive,
        default=_positive(_env("OUTBOX_POLL", "1")),
        metavar="SECONDS",
        help="look for due deliveries and changed conversations this often when nothing in "
        "this process woke the outbox (CHATSERVER_OUTBOX_POLL, default 1)",
    )


def webhook_config(args: argparse.Namespace) -> WebhookConfig:
    return WebhookConfig(
        timeout=args.webhook_timeout,
        max_response=args.webhook_max_response,
        allow_private=args.webhook_allow_private,
        disable_after=max(1, args.webhook_disable_after),
        poll=args.outbox_poll,
        outbox=OutboxConfig(
            retry_base=args.outbox_retry_base,
            retry_cap=args.outbox_retry_cap,
            give_up=args.outbox_give_up,
            lease=max(args.outbox_lease, args.webhook_timeout + 1.0),
            poll=args.outbox_poll,
        ),
    )

"""Command-line options of the coordination Redis (``chatserver/coordination.py``).

Each has a ``CHATSERVER_*`` environment twin, as every option does.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def _env(name: str) -> str | None:
    return os.environ.get(f"CHATSERVER_{name}") or None


def add_redis_coordination_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis-coordination",
        default=_env("REDIS_COORDINATION_URL"),
        metavar="URL",
        help="a Redis for fan-out, presence and routing only, apart from the record "
        "(CHATSERVER_REDIS_COORDINATION_URL; default: the --redis URL)",
    )
    p.add_argument(
        "--redis-cluster",
        action="store_true",
        default=(_env("REDIS_CLUSTER") or "").lower() in ("1", "yes", "true"),
        help="the coordination Redis URL names a node of a Redis Cluster "
        "(CHATSERVER_REDIS_CLUSTER=1)",
    )
    p.add_argument(
        "--redis-sentinel",
        default=_env("REDIS_SENTINEL"),
        metavar="HOST:PORT,...",
        help="reach the coordination Redis through these Sentinels; the URL then gives "
        "only user, password and database (CHATSERVER_REDIS_SENTINEL)",
    )
    p.add_argument(
        "--redis-master",
        default=_env("REDIS_MASTER"),
        metavar="NAME",
        help="the primary's name at the Sentinels (CHATSERVER_REDIS_MASTER)",
    )


def redis_coordination_config(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Config`` fields these options fill in."""
    return {
        "coordination_url": getattr(args, "redis_coordination", None) or None,
        "redis_cluster": bool(getattr(args, "redis_cluster", False)),
        "redis_sentinels": getattr(args, "redis_sentinel", None) or None,
        "redis_master": getattr(args, "redis_master", None) or None,
    }

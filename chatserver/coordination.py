"""Which Redis coordinates the processes, and the seams built on it.

Coordination is fan-out (the Broker), presence and routing: shared state
that every process can rebuild from the record and its own connections, so
it may live apart from the record, on a Redis Cluster, or on a primary that
Sentinel fails over (docs/scaling.md, "Redis for coordination").

Settings (``Config``; CLI flags in ``cli/redis_options.py``):

* ``coordination_url``: the Redis for coordination only; default the
  ``--redis`` URL, which holds the record too unless ``--database`` does;
* ``redis_cluster``: that URL names a node of a Redis Cluster;
* ``redis_sentinels`` (``host:port,...``) and ``redis_master``: reach the
  primary Sentinel names; the URL then gives only user, password, database.

The Redis record store is one primary (AOF always, no Cluster): Cluster or
Sentinel on the URL that holds the record is refused, with a message that
says what to do instead.  Messages never show a password.
"""

from __future__ import annotations

from .broker import Broker
from .config import Config
from .errors import ChatError
from .presence import Presence
from .redact import protect
from .redis_client import RedisTarget, parse_hosts
from .routing import Router


def coordination_target(config: Config, record: str) -> RedisTarget | None:
    """The coordination Redis ``config`` asks for (None: none, one process).

    ``record`` says where the record is: ``"embedded"`` (one process: SQLite,
    or PostgreSQL without Redis; coordination settings are refused),
    ``"redis"`` (the ``--redis`` URL: a Cluster or Sentinel needs its own
    ``--redis-coordination`` URL) or
    ``"shared"`` (a database every process reaches: ``--redis`` is then for
    coordination only, and may be a Cluster or behind Sentinel).
    """
    url = config.coordination_url or config.redis_url
    clustered = config.redis_cluster or bool(config.redis_sentinels or config.redis_master)
    if record == "embedded":
        if config.coordination_url or clustered:
            raise ChatError(
                "--redis-coordination, --redis-cluster and --redis-sentinel are for many"
                " processes: they need a Redis URL (--redis or --redis-coordination) and a"
                " record the processes share (--redis or --database)"
            )
        return None
    if url is None:
        if clustered:
            raise ChatError(
                "--redis-cluster and --redis-sentinel need a Redis URL"
                " (--redis-coordination or --redis)"
            )
        return None
    if record == "redis" and clustered and not config.coordination_url:
        raise ChatError(
            "the Redis record store is one primary (AOF always, no Cluster, no Sentinel):"
            " give the Cluster or Sentinel's primary its own --redis-coordination URL"
        )
    protect(url)
    try:
        sentinels = parse_hosts(config.redis_sentinels) if config.redis_sentinels else ()
        return RedisTarget(
            url, cluster=config.redis_cluster, sentinels=sentinels, master=config.redis_master
        )
    except ValueError as exc:
        raise ChatError(f"Redis coordination settings: {exc}") from exc


def redis_urls_to_check(config: Config) -> list[str]:
    """The Redis URLs ``serve`` pings before it starts: the Redis record's, and
    the coordination one unless Sentinel names the host (the broker checks then)."""
    urls = [config.redis_url] if config.redis_url and not config.database_url else []
    coordination = config.coordination_url or config.redis_url
    if coordination and not config.redis_sentinels and coordination not in urls:
        urls.append(coordination)
    return urls


def coordination_parts(config: Config, record: str) -> tuple[Broker, Router, Presence]:
    """The Redis broker, router and presence on the coordination Redis
    (``record`` as for ``coordination_target``)."""
    from .broker_redis import RedisBroker
    from .presence_redis import RedisPresence
    from .routing_redis import RedisRouter

    target = coordination_target(config, record)
    if target is None:
        raise ChatError("no Redis for coordination: give --redis (or --redis-coordination)")
    return RedisBroker(target), RedisRouter(target, grace=config.grace), RedisPresence(target)

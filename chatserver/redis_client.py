"""One way to open a Redis client for every Redis-backed seam.

* A blocking pool: a burst of commands waits for a free connection (up to
  ``timeout``) instead of failing with "too many connections".
* Connections idle for a second are health-checked before use, so one left
  over from before a Redis restart is replaced instead of failing a command.
* No automatic retry unless the caller says a command is safe to repeat
  (``retry_connection_errors``): a retried write whose reply was lost could
  run twice.
* The client owns its pool: ``aclose()`` closes every connection.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def open_client(
    url: str,
    *,
    max_connections: int,
    timeout: float = 5.0,
    decode_responses: bool = True,
    retry_connection_errors: bool = False,
) -> aioredis.Redis:
    if retry_connection_errors:
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)
        retry_on: list[type[Exception]] = [RedisConnectionError]
    else:
        retry, retry_on = Retry(NoBackoff(), 0), []
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=1,
        decode_responses=decode_responses,
        retry=retry,
        retry_on_error=retry_on,
    )
    return aioredis.Redis.from_pool(pool)

"""``chatserver serve`` and ``chatserver demo``: uvicorn around the app."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import socket
import time
from types import FrameType

from .. import versions
from ..config import Config
from ..coordination import redis_urls_to_check
from ..errors import ChatError
from ..redact import redact_url, scrub
from .admin import ensure_demo
from .options import config_from


def _check_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ChatError(f"cannot reach Redis at {redact_url(url)}: {scrub(str(exc), url)}") from exc
    finally:
        client.close()


def _check_s3(config: Config) -> None:
    """The bucket answers with these credentials (a missing probe object is fine)."""
    assert config.blob_s3 is not None
    from ..blobs_s3 import BlobError, S3Blobs

    try:
        asyncio.run(S3Blobs(config.blob_s3).size("chatserver-probe"))
    except BlobError as exc:
        raise ChatError(f"cannot use the blob store {config.blob_s3.url}: {exc}") from exc


def event_loop(choice: str) -> str:
    """uvicorn's ``loop`` for ``--loop``: "auto" is uvloop where it is installed.

    uvloop runs the same asyncio code with a third fewer instructions on the
    event loop's thread per relayed message (docs/performance.md, "uvloop");
    asyncio's own loop is the fallback where uvloop does not build (Windows),
    and what the in-process tests run on.
    """
    if choice != "auto":
        return choice
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def serve(config: Config) -> None:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    refused = versions.check()
    if refused is not None:
        raise ChatError(refused)
    for url in redis_urls_to_check(config):
        _check_redis(url)
    if config.blob_s3 is not None:
        _check_s3(config)

    from ..logs import configure, limit_client_errors
    from ..web.app import create_app
    from ..web.uvicorn_ws import ChatWebSocketProtocol

    log_config = configure(config.log_level, config.log_format)
    for problem in versions.untested():  # only with CHATSERVER_ALLOW_UNTESTED=1
        logging.getLogger("chatserver").warning("%s; starting anyway", problem)
    # A full collection scans every live connection's objects and stops the
    # event loop meanwhile (about 0.3 ms per 1000 objects); by default one is
    # considered every 10 middle collections, i.e. several times while a few
    # thousand clients (re)connect.  Considering it every 100 removes those
    # stalls; closed connections are freed by reference counting, so little
    # garbage waits for it (docs/performance.md).
    gc.set_threshold(700, 10, 100)
    app = create_app(config)
    lifecycle = app.state.lifecycle

    class Server(uvicorn.Server):
        """uvicorn's server, telling ``/readyz`` when a stop begins (docs/operations.md)."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # SIGTERM or SIGINT: /readyz answers 503 from this moment on.
            lifecycle.shutting_down = True
            super().handle_exit(sig, frame)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Keep serving while the load balancer notices /readyz (a second
            # Ctrl+C cuts it short), then uvicorn's shutdown: listeners
            # closed, sockets closed with 1001, connections' tasks awaited,
            # then the lifespan shutdown, which flushes the store.
            deadline = time.monotonic() + config.shutdown_delay
            while time.monotonic() < deadline and not self.force_exit:
                await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            await super().shutdown(sockets)

    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        log_config=LOGGING_CONFIG if log_config is None else log_config,
        loop=event_loop(config.loop),
        ws=ChatWebSocketProtocol,
        ws_per_message_deflate=False,
        ws_max_size=1024 * 1024,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        lifespan="on",
        proxy_headers=True,
        forwarded_allow_ips=config.forwarded_allow_ips,
    )
    limit_client_errors()  # on uvicorn's logger, as uvicorn.Config has set it up
    Server(uv_config).run()


def cmd_demo(args: argparse.Namespace) -> None:
    config = config_from(args)
    site, logins = asyncio.run(ensure_demo(config.data_dir, config.redis_url, config.database_url))
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    base = f"http://{host}:{config.port}"
    print(f"demo shop:      {base}/demo/   (site key {site.key})", flush=True)
    print(f"agent page:     {base}/console")
    print(f"protocol:       POST {base}/api/login, then {base.replace('http', 'ws')}/ws")
    for email, password in logins.items():
        print(f"login:          {email} / {password}")
    print(f"(logins are kept in {config.data_dir / 'demo-logins.txt'})", flush=True)
    serve(config)

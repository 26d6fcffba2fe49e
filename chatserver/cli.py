"""The ``chatserver`` command.

Every option has help text and a ``CHATSERVER_*`` environment twin; the
command line wins over the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import os
import secrets
import socket
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TypeVar

from . import __version__, versions
from .config import Config
from .demo import DEMO_ADMIN_EMAIL, DEMO_DEPARTMENTS, DEMO_EMAIL, DEMO_SITE, demo_site
from .errors import ChatError
from .quotas import QuotaConfig
from .redact import install as install_redaction
from .redact import protect, redact_url, scrub
from .security import hash_password_off_loop
from .store import Store
from .store_sqlite import SQLiteStore
from .types import Role, Site, SiteSettings

T = TypeVar("T")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"CHATSERVER_{name}", default)


_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}


def size(text: str) -> int:
    """A byte count: ``65536``, ``512K``, ``64M``, ``1G`` (binary units)."""
    number = text.strip()
    unit = _UNITS.get(number[-1:].upper(), 1)
    if unit > 1:
        number = number[:-1]
    if not number.isascii() or not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"not a size such as 64M or 512K: {text!r}")
    return int(number) * unit


def _add_server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        default=_env("HOST", "127.0.0.1"),
        help="interface to listen on (CHATSERVER_HOST, default 127.0.0.1)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(_env("PORT", "8000") or 8000),
        help="TCP port (CHATSERVER_PORT, default 8000)",
    )
    p.add_argument(
        "--redis",
        default=_env("REDIS_URL"),
        metavar="URL",
        help="use the Redis backend at URL instead of the embedded one (CHATSERVER_REDIS_URL)",
    )
    p.add_argument(
        "--sqlite-sync",
        choices=("full", "normal"),
        default=_env("SQLITE_SYNC", "full"),
        help="SQLite synchronous mode: 'full' survives power loss, 'normal' only process "
        "crashes (CHATSERVER_SQLITE_SYNC, default full)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=float(_env("GRACE", "30") or 30),
        help="seconds an agent who dropped keeps their chats before they are requeued "
        "(CHATSERVER_GRACE, default 30)",
    )
    p.add_argument(
        "--session-check",
        type=float,
        default=float(_env("SESSION_CHECK", "60") or 60),
        metavar="SECONDS",
        help="seconds between checks that every open agent socket's sign-in is still valid "
        "(a safety net for missed sign-out events; 0 turns it off; CHATSERVER_SESSION_CHECK, "
        "default 60)",
    )
    p.add_argument(
        "--blobs",
        type=Path,
        default=Path(b) if (b := _env("BLOBS")) else None,
        metavar="DIR",
        help="directory for attachments and recordings (CHATSERVER_BLOBS, default DATA/blobs; "
        "with Redis and several machines, a shared volume)",
    )
    p.add_argument(
        "--upload-memory",
        type=size,
        default=_env("UPLOAD_MEMORY", "64M"),
        metavar="SIZE",
        help="bytes of attachment uploads held in memory at once by the process, such as 64M "
        "or 512K; an upload that would pass it gets 503 and Retry-After "
        "(CHATSERVER_UPLOAD_MEMORY, default 64M)",
    )
    _add_quota_options(p)
    p.add_argument(
        "--log-level",
        default=_env("LOG_LEVEL", "info"),
        choices=("critical", "error", "warning", "info", "debug"),
        help="log level (CHATSERVER_LOG_LEVEL, default info)",
    )
    p.add_argument(
        "--log-format",
        default=_env("LOG_FORMAT", "text"),
        choices=("text", "json"),
        help="'json' writes every log line as one JSON object (time, level, logger, message, "
        "exception) for log shippers (CHATSERVER_LOG_FORMAT, default text)",
    )
    p.add_argument(
        "--shutdown-delay",
        type=float,
        default=float(_env("SHUTDOWN_DELAY", "0") or 0),
        metavar="SECONDS",
        help="on SIGTERM, keep serving this long with /readyz answering 503 (so the load "
        "balancer stops sending traffic) before closing sockets with 1001 "
        "(CHATSERVER_SHUTDOWN_DELAY, default 0)",
    )
    p.add_argument(
        "--metrics-token",
        default=_env("METRICS_TOKEN"),
        metavar="TOKEN",
        help="bearer token a Prometheus scrape of /metrics must send; without one, only "
        "loopback clients may read /metrics (CHATSERVER_METRICS_TOKEN)",
    )
    p.add_argument(
        "--forwarded-allow-ips",
        default=_env("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        metavar="ADDRESSES",
        help="comma-separated addresses or networks of the reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are trusted for the client's address "
        "(login throttle, rate limits, logs), or '*' when only the proxy can reach the "
        "server (CHATSERVER_FORWARDED_ALLOW_IPS, default 127.0.0.1)",
    )


def _count(text: str) -> int:
    """A limit: a whole number, 0 for none."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number (0 for no limit): {text!r}")
    return int(text)


def _quota_size(text: str) -> int:
    """A byte quota such as 512M, or 0 for none."""
    return 0 if text.strip() == "0" else size(text)


def _add_quota_options(p: argparse.ArgumentParser) -> None:
    """The abuse limits of chatserver/quotas.py (docs/operations.md, "Abuse limits")."""
    d = QuotaConfig()
    counts = (
        (
            "hellos-per-address",
            d.hellos_per_address,
            "visitor connections (hello) per client address per minute",
        ),
        ("hellos-per-site", d.hellos_per_site, "visitor connections (hello) per site per minute"),
        (
            "uploads-per-address",
            d.uploads_per_address,
            "attachment uploads per client address per 10 minutes",
        ),
        ("uploads-per-site", d.uploads_per_site, "attachment uploads per site per 10 minutes"),
        (
            "site-new-visitors",
            d.site_new_visitors,
            "visitor records created per site per hour "
            "(a visitor gets one with its first message, attrs, identify or track)",
        ),
    )
    for name, default, what in counts:
        env = name.upper().replace("-", "_")
        p.add_argument(
            f"--{name}",
            type=_count,
            default=_env(env, str(default)),
            metavar="N",
            help=f"{what}, per process; 0: no limit (CHATSERVER_{env}, default {default})",
        )
    p.add_argument(
        "--upload-ttl",
        type=float,
        default=float(_env("UPLOAD_TTL", str(int(d.upload_ttl))) or d.upload_ttl),
        metavar="SECONDS",
        help="seconds an uploaded file that was never posted into a conversation is kept "
        f"before a sweep deletes it; 0: never (CHATSERVER_UPLOAD_TTL, default {d.upload_ttl:g})",
    )
    p.add_argument(
        "--site-unposted-bytes",
        type=_quota_size,
        default=_env("SITE_UNPOSTED_BYTES", "256M"),
        metavar="SIZE",
        help="bytes of uploads not yet posted a site may hold, such as 512M; more get 507; "
        "0: no limit (CHATSERVER_SITE_UNPOSTED_BYTES, default 256M)",
    )
    p.add_argument(
        "--site-attachment-bytes",
        type=_quota_size,
        default=_env("SITE_ATTACHMENT_BYTES", "0"),
        metavar="SIZE",
        help="bytes of attachments (posted or not) a site may hold, such as 20G; more get "
        "507; 0: no limit (CHATSERVER_SITE_ATTACHMENT_BYTES, default 0)",
    )


def _add_data_option(p: argparse.ArgumentParser, redis: bool = True) -> None:
    p.add_argument(
        "--data",
        type=Path,
        default=Path(_env("DATA", "data") or "data"),
        help="data directory: SQLite file and server secret (CHATSERVER_DATA, default ./data)",
    )
    if redis:
        p.add_argument(
            "--redis",
            default=_env("REDIS_URL"),
            metavar="URL",
            help="manage the Redis backend at URL instead of the SQLite file "
            "(CHATSERVER_REDIS_URL)",
        )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="chatserver", description="Self-hosted live chat for online shops."
    )
    root.add_argument("--version", action="version", version=f"chatserver {__version__}")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server")
    _add_server_options(serve)
    _add_data_option(serve, redis=False)

    demo = sub.add_parser(
        "demo", help="create the demo site and agents if missing, print the logins, then serve"
    )
    _add_server_options(demo)
    _add_data_option(demo, redis=False)

    site = sub.add_parser("site", help="manage sites").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    site_add = site.add_parser("add", help="add a site and print its key")
    site_add.add_argument("name", help="the shop's name, shown to visitors")
    site_add.add_argument(
        "--origin",
        action="append",
        default=[],
        help="allowed page origin such as https://shop.example (repeatable; none allows all)",
    )
    site_add.add_argument(
        "--department", action="append", default=[], help="a department name (repeatable)"
    )
    site_add.add_argument(
        "--no-typing-preview",
        action="store_true",
        help="never stream visitors' drafts to agents (privacy)",
    )
    site_add.add_argument(
        "--require-identity",
        action="store_true",
        help="refuse identify calls with an id but without a valid hash (docs/widget.md)",
    )
    _add_data_option(site_add)
    site_list = site.add_parser("list", help="list sites and their keys")
    _add_data_option(site_list)
    site_secret = site.add_parser(
        "secret",
        help="print a site's identity secret (for identify hashes); rotate it, require it",
    )
    site_secret.add_argument("site", help="site key or site id")
    site_secret.add_argument(
        "--rotate", action="store_true", help="replace the secret (old hashes stop verifying)"
    )
    required = site_secret.add_mutually_exclusive_group()
    required.add_argument(
        "--require",
        dest="require",
        action="store_const",
        const=True,
        help="refuse identify calls with an id but without a valid hash",
    )
    required.add_argument(
        "--optional",
        dest="require",
        action="store_const",
        const=False,
        help="accept them, marked unverified (the default)",
    )
    _add_data_option(site_secret)

    agent = sub.add_parser("agent", help="manage agents").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    agent_add = agent.add_parser(
        "add", help="add an agent; the password is read from a prompt, or stdin when piped"
    )
    agent_add.add_argument("--site", required=True, help="site key or site id")
    agent_add.add_argument("--email", required=True, help="login email")
    agent_add.add_argument("--name", required=True, help="name shown to visitors")
    agent_add.add_argument("--admin", action="store_true", help="give the admin role")
    agent_add.add_argument("--capacity", type=int, default=5, help="concurrent chats (default 5)")
    agent_add.add_argument(
        "--department", action="append", default=[], help="a department served (repeatable)"
    )
    _add_data_option(agent_add)

    from recordings import cli as recordings_cli  # here: it imports this module

    recordings_cli.add_commands(sub)
    return root


def _config(args: argparse.Namespace) -> Config:
    return Config(
        host=args.host,
        port=args.port,
        data_dir=args.data,
        redis_url=args.redis or None,
        sqlite_sync=args.sqlite_sync,
        grace=args.grace,
        session_check=args.session_check,
        log_level=args.log_level,
        blob_dir=args.blobs,
        upload_memory=args.upload_memory,
        metrics_token=args.metrics_token or None,
        log_format=args.log_format,
        shutdown_delay=args.shutdown_delay,
        forwarded_allow_ips=args.forwarded_allow_ips,
        quotas=QuotaConfig(
            hellos_per_address=args.hellos_per_address,
            hellos_per_site=args.hellos_per_site,
            uploads_per_address=args.uploads_per_address,
            uploads_per_site=args.uploads_per_site,
            upload_ttl=max(0.0, args.upload_ttl),
            site_unposted_bytes=args.site_unposted_bytes,
            site_attachment_bytes=args.site_attachment_bytes,
            site_new_visitors=args.site_new_visitors,
        ),
    )


async def _with_store(
    data: Path, work: Callable[[Store], Awaitable[T]], redis_url: str | None = None
) -> T:
    store: Store
    if redis_url:
        from .store_redis import RedisStore

        store = RedisStore(redis_url)
    else:
        store = SQLiteStore(data / "chatserver.db")
    await store.start()
    try:
        return await work(store)
    finally:
        await store.close()


async def _find_site(store: Store, ref: str) -> Site:
    site = await store.site_by_key(ref) or await store.get_site(ref)
    if site is None:
        raise ChatError(f"no site with key or id {ref!r}")
    return site


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat: "):
            raise ChatError("passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise ChatError("a password needs at least 8 characters")
    return password


def cmd_site_add(args: argparse.Namespace) -> None:
    async def work(store: Store) -> Site:
        settings = SiteSettings(
            typing_preview=not args.no_typing_preview, require_identity=args.require_identity
        )
        return await store.create_site(args.name, args.origin, settings, args.department)

    site = asyncio.run(_with_store(args.data, work, args.redis))
    print(f"site {site.name!r} id {site.id}")
    print(f"site key: {site.key}")


def cmd_site_list(args: argparse.Namespace) -> None:
    async def work(store: Store) -> list[Site]:
        return await store.list_sites()

    sites = asyncio.run(_with_store(args.data, work, args.redis))
    for site in sites:
        origins = ", ".join(site.allowed_origins) or "any origin"
        print(f"{site.key}  {site.id}  {site.name}  ({origins})")


def cmd_site_secret(args: argparse.Namespace) -> None:
    async def work(store: Store) -> tuple[Site, str]:
        site = await _find_site(store, args.site)
        if args.require is not None:
            settings = replace(site.settings, require_identity=args.require)
            site = replace(site, settings=settings)
            await store.save_site(site)
        return site, await store.identity_secret(site.id, rotate=args.rotate)

    site, secret = asyncio.run(_with_store(args.data, work, args.redis))
    state = "required" if site.settings.require_identity else "optional"
    print(f"identity secret of {site.name!r} ({site.key}): {secret}")
    print(f"identity verification: {state}; keep the secret on the shop's server only")


def cmd_agent_add(args: argparse.Namespace) -> None:
    password = _read_password()

    async def work(store: Store) -> None:
        site = await _find_site(store, args.site)
        unknown = set(args.department) - set(site.departments)
        if unknown:
            raise ChatError(f"unknown departments for this site: {', '.join(sorted(unknown))}")
        agent = await store.create_agent(
            site.id,
            args.email,
            args.name,
            await hash_password_off_loop(password),
            Role.ADMIN if args.admin else Role.AGENT,
            args.capacity,
            args.department,
        )
        print(f"agent {agent.email} ({agent.role.value}) added to {site.name} as {agent.id}")

    asyncio.run(_with_store(args.data, work, args.redis))


async def ensure_demo(data: Path, redis_url: str | None = None) -> tuple[Site, dict[str, str]]:
    """Create the demo site and agents once; return the site and the logins."""
    logins_file = data / "demo-logins.txt"

    async def work(store: Store) -> tuple[Site, dict[str, str]]:
        site = await demo_site(store) or await store.create_site(
            DEMO_SITE, (), SiteSettings(greeting="Hi! How can we help?"), DEMO_DEPARTMENTS
        )
        logins: dict[str, str] = {}
        if logins_file.exists():
            for line in logins_file.read_text().splitlines():
                email, _, password = line.partition(" ")
                logins[email] = password
        for email, name, role in (
            (DEMO_EMAIL, "Anna (demo agent)", Role.AGENT),
            (DEMO_ADMIN_EMAIL, "Marc (demo admin)", Role.ADMIN),
        ):
            if await store.agent_by_email(email) is None:
                password = secrets.token_urlsafe(9)
                await store.create_agent(
                    site.id,
                    email,
                    name,
                    await hash_password_off_loop(password),
                    role,
                    5,
                    DEMO_DEPARTMENTS,
                )
                logins[email] = password
        fd = os.open(logins_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"{e} {p}\n" for e, p in logins.items())
        return site, logins

    data.mkdir(parents=True, exist_ok=True)
    return await _with_store(data, work, redis_url)


def _check_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ChatError(f"cannot reach Redis at {redact_url(url)}: {scrub(str(exc), url)}") from exc
    finally:
        client.close()


def serve(config: Config) -> None:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    refused = versions.check()
    if refused is not None:
        raise ChatError(refused)
    if config.redis_url:
        _check_redis(config.redis_url)

    from .app import create_app
    from .logs import configure, limit_client_errors
    from .uvicorn_ws import ChatWebSocketProtocol

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
        # The stock asyncio loop, which the test suite runs on: "auto" would
        # switch to uvloop wherever it happens to be installed.
        loop="asyncio",
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
    config = _config(args)
    site, logins = asyncio.run(ensure_demo(config.data_dir, config.redis_url))
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    base = f"http://{host}:{config.port}"
    print(f"demo shop:      {base}/demo/   (site key {site.key})", flush=True)
    print(f"agent page:     {base}/console")
    print(f"protocol:       POST {base}/api/login, then {base.replace('http', 'ws')}/ws")
    for email, password in logins.items():
        print(f"login:          {email} / {password}")
    print(f"(logins are kept in {config.data_dir / 'demo-logins.txt'})", flush=True)
    serve(config)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # The Redis URL's password stays out of every message, log line and traceback.
    protect(getattr(args, "redis", None))
    install_redaction()
    try:
        if args.command == "serve":
            serve(_config(args))
        elif args.command == "demo":
            cmd_demo(args)
        elif args.command == "site":
            {"add": cmd_site_add, "list": cmd_site_list, "secret": cmd_site_secret}[args.action](
                args
            )
        elif args.command == "agent":
            cmd_agent_add(args)
        elif args.command == "recordings":
            from recordings import cli as recordings_cli

            recordings_cli.run(args)
    except ChatError as exc:
        print(f"chatserver: {scrub(str(exc))}", file=sys.stderr)
        return 2
    except Exception:  # as Python would report it, without the secrets
        print(scrub(traceback.format_exc()), file=sys.stderr, end="")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

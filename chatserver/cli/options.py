"""Command-line options, each with help text and a ``CHATSERVER_*`` environment twin."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..blobs import BlobStore, DirectoryBlobs
from ..blobs_s3 import S3Blobs, S3Settings, parse_s3_url
from ..config import Config
from ..errors import ChatError
from ..quotas import QuotaConfig
from .redis_options import add_redis_coordination_options, redis_coordination_config
from .webhook_options import add_webhook_options, webhook_config


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"CHATSERVER_{name}", default)


def database_url(text: str) -> str:
    """A PostgreSQL URL (``postgresql://user:password@host:port/database``)."""
    from ..redact import redact_url

    if not text.startswith(("postgresql://", "postgres://")):
        raise argparse.ArgumentTypeError(
            f"not a PostgreSQL URL such as postgresql://user:password@host/db: {redact_url(text)}"
        )
    return text


_DATABASE_HELP = (
    "keep the record (sites, agents, conversations...) in the PostgreSQL database at URL, "
    "postgresql://user:password@host:port/database, instead of the SQLite file; with --redis "
    "too, Redis carries only the messages between processes (CHATSERVER_DATABASE)"
)


_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}


def smtp_url(text: str) -> str:
    """``--smtp``: an SMTP URL with the sender (checked; shown without its password)."""
    from ..mail.settings import parse_url
    from ..redact import redact_url

    try:
        parse_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}: {redact_url(text)}") from None
    return text


def size(text: str) -> int:
    """A byte count: ``65536``, ``512K``, ``64M``, ``1G`` (binary units)."""
    number = text.strip()
    unit = _UNITS.get(number[-1:].upper(), 1)
    if unit > 1:
        number = number[:-1]
    if not number.isascii() or not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"not a size such as 64M or 512K: {text!r}")
    return int(number) * unit


def blob_location(text: str) -> Path | str:
    """``--blobs``: a directory, or an ``s3://bucket/prefix`` URL (checked)."""
    if "://" not in text:
        return Path(text)
    try:
        parse_s3_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_s3_options(p: argparse.ArgumentParser) -> None:
    """The S3 endpoint and credentials for ``--blobs s3://...`` (docs/storage.md)."""
    p.add_argument(
        "--s3-endpoint",
        default=_env("S3_ENDPOINT"),
        metavar="URL",
        help="http(s)://host:port of an S3-compatible service (MinIO, SeaweedFS, Garage, R2); "
        "unset: AWS (CHATSERVER_S3_ENDPOINT)",
    )
    p.add_argument(
        "--s3-region",
        default=_env("S3_REGION"),
        metavar="NAME",
        help="the bucket's region (CHATSERVER_S3_REGION; unset: AWS_REGION, else us-east-1)",
    )
    p.add_argument(
        "--s3-access-key",
        default=_env("S3_ACCESS_KEY"),
        metavar="ID",
        help="access key id; its secret comes from CHATSERVER_S3_SECRET_KEY, never from the "
        "command line (unset: the AWS_* variables or the machine's role) "
        "(CHATSERVER_S3_ACCESS_KEY)",
    )


def s3_settings(blobs: Path | str | None, args: argparse.Namespace) -> S3Settings | None:
    """The S3 settings when ``blobs`` is an ``s3://`` URL; ``ChatError`` if they are wrong."""
    if not isinstance(blobs, str):
        return None
    try:
        return S3Settings(
            url=blobs,
            endpoint=args.s3_endpoint or None,
            region=args.s3_region or None,
            access_key=args.s3_access_key or None,
            secret_key=_env("S3_SECRET_KEY") or None,
        )
    except ValueError as exc:
        raise ChatError(str(exc)) from None


def add_blobs_option(p: argparse.ArgumentParser) -> None:
    """``--blobs`` and the ``--s3-*`` options of a command that reads the server's blobs."""
    p.add_argument(
        "--blobs",
        type=blob_location,
        default=os.environ.get("CHATSERVER_BLOBS") or None,
        metavar="DIR|s3://BUCKET/PREFIX",
        help="blob directory or S3 bucket and prefix, as the server's (CHATSERVER_BLOBS, "
        "default DATA/blobs)",
    )
    add_s3_options(p)


def blobs_from(args: argparse.Namespace) -> BlobStore:
    """The blob store ``add_blobs_option``'s options (and ``--data``) name."""
    settings = s3_settings(args.blobs, args)
    if settings is not None:
        return S3Blobs(settings)
    return DirectoryBlobs(args.blobs if args.blobs is not None else args.data / "blobs")


def add_server_options(p: argparse.ArgumentParser) -> None:
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
    add_redis_coordination_options(p)
    add_webhook_options(p, size)
    p.add_argument(
        "--database",
        type=database_url,
        default=_env("DATABASE"),
        metavar="URL",
        help=_DATABASE_HELP,
    )
    p.add_argument(
        "--sqlite-sync",
        choices=("full", "normal"),
        default=_env("SQLITE_SYNC", "full"),
        help="SQLite synchronous mode: 'full' survives power loss, 'normal' only process "
        "crashes (CHATSERVER_SQLITE_SYNC, default full)",
    )
    p.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default=_env("LOOP", "auto"),
        help="the event loop: 'auto' is uvloop where installed, else asyncio's own "
        "(CHATSERVER_LOOP, default auto)",
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
        type=blob_location,
        default=_env("BLOBS"),
        metavar="DIR|s3://BUCKET/PREFIX",
        help="where attachments and recordings go: a directory (CHATSERVER_BLOBS, default "
        "DATA/blobs; with Redis and several machines, a shared volume) or an S3-compatible "
        "bucket and prefix (then the --s3-* options)",
    )
    add_s3_options(p)
    p.add_argument(
        "--recording-chunks",
        action="store_true",
        default=_env("RECORDING_CHUNKS", "") not in ("", "0", "false", "no"),
        help="store new recordings as immutable chunk objects on a directory too (always so "
        "on S3): for several processes sharing one blob directory "
        "(CHATSERVER_RECORDING_CHUNKS)",
    )
    p.add_argument(
        "--recording-seal-seconds",
        type=float,
        default=float(_env("RECORDING_SEAL_SECONDS", "0.05") or 0.05),
        metavar="SECONDS",
        help="a recording's newest batches wait at most this long before they are written "
        "together as one chunk object and acknowledged; 0: each at once "
        "(CHATSERVER_RECORDING_SEAL_SECONDS, default 0.05)",
    )
    p.add_argument(
        "--recording-seal-bytes",
        type=size,
        default=_env("RECORDING_SEAL_BYTES", "1M"),
        metavar="SIZE",
        help="... or until they hold this many bytes (CHATSERVER_RECORDING_SEAL_BYTES, default 1M)",
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
    add_quota_options(p)
    p.add_argument(
        "--api-rate",
        type=_count,
        default=_env("API_RATE", "600"),
        metavar="N",
        help="REST API requests per key per minute (with --redis, over every process); "
        "more get 429 and Retry-After; 0: no limit (CHATSERVER_API_RATE, default 600)",
    )
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
        "--smtp",
        type=smtp_url,
        default=_env("SMTP"),
        metavar="URL",
        help="the SMTP server of every site that sets none in the console: "
        "smtp+starttls://user:password@host:587?from=chat@shop.example (also smtp:// and "
        "smtps://; &reply_to=ADDRESS for answers by e-mail); a site's own console settings "
        "win (docs/email.md) (CHATSERVER_SMTP)",
    )
    p.add_argument(
        "--public-url",
        default=_env("PUBLIC_URL"),
        metavar="URL",
        help="the server's address as people reach it, for links in e-mails, such as "
        "https://chat.shop.example (CHATSERVER_PUBLIC_URL, default http://HOST:PORT)",
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


def add_quota_options(p: argparse.ArgumentParser) -> None:
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


def add_data_option(p: argparse.ArgumentParser, redis: bool = True) -> None:
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
        p.add_argument(
            "--database",
            type=database_url,
            default=_env("DATABASE"),
            metavar="URL",
            help="manage the PostgreSQL database at URL (CHATSERVER_DATABASE)",
        )


def config_from(args: argparse.Namespace) -> Config:
    return Config(
        host=args.host,
        port=args.port,
        data_dir=args.data,
        redis_url=args.redis or None,
        **redis_coordination_config(args),
        database_url=args.database or None,
        sqlite_sync=args.sqlite_sync,
        loop=args.loop,
        grace=args.grace,
        session_check=args.session_check,
        log_level=args.log_level,
        blob_dir=args.blobs if isinstance(args.blobs, Path) else None,
        blob_s3=s3_settings(args.blobs, args),
        recording_chunks=True if args.recording_chunks else None,
        recording_seal_seconds=max(0.0, args.recording_seal_seconds),
        recording_seal_bytes=args.recording_seal_bytes,
        upload_memory=args.upload_memory,
        metrics_token=args.metrics_token or None,
        smtp_url=args.smtp or None,
        public_url=(args.public_url or "").rstrip("/") or None,
        log_format=args.log_format,
        shutdown_delay=args.shutdown_delay,
        forwarded_allow_ips=args.forwarded_allow_ips,
        api_rate=args.api_rate,
        webhooks=webhook_config(args),
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

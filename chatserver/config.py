"""One ``Config`` object; the CLI and environment variables fill it in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .protocol.frames import Limits
from .quotas import QuotaConfig
from .webhooks.settings import WebhookConfig

if TYPE_CHECKING:
    from .blobs_s3 import S3Settings


@dataclass(slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    redis_url: str | None = None
    database_url: str | None = None  # postgresql://...: PostgreSQL is the record (the Store)
    # Redis for coordination only (fan-out, presence, routing): coordination.py
    coordination_url: str | None = None  # default: redis_url
    redis_cluster: bool = False  # the coordination URL names a Redis Cluster node
    redis_sentinels: str | None = None  # "host:port,...": Sentinel names the primary
    redis_master: str | None = None  # the primary's name at the Sentinels
    sqlite_sync: str = "full"
    # The event loop: "auto" is uvloop where it is installed (a dependency, but
    # not on every platform), else asyncio's own; "asyncio" or "uvloop" to choose.
    loop: str = "auto"
    grace: float = 30.0
    session_check: float = 60.0  # seconds between re-checks of agent sockets' sign-ins
    log_level: str = "info"
    limits: Limits = field(default_factory=Limits)
    blob_dir: Path | None = None  # attachments and recordings; default data_dir / "blobs"
    blob_s3: S3Settings | None = None  # --blobs s3://...: objects instead of blob_dir
    upload_memory: int = 64 * 1024 * 1024  # bytes of attachment uploads in flight, whole process
    metrics_token: str | None = None  # bearer token for /metrics; None: loopback clients only
    log_format: str = "text"  # "text" or "json" (one object a line: chatserver.logs)
    forwarded_allow_ips: str = "127.0.0.1"  # proxies trusted for X-Forwarded-For (uvicorn's)
    shutdown_delay: float = 0.0  # seconds of /readyz 503 before a stop closes anything
    quotas: QuotaConfig = field(default_factory=QuotaConfig)  # abuse limits (quotas.py)
    api_rate: int = 600  # REST API requests per key per minute (api/keys.py); 0: no limit
    # Recordings: a tail is sealed into a chunk object after this long or this many bytes.
    recording_chunks: bool | None = None  # None: where the blob store cannot append
    recording_seal_seconds: float = 0.05
    recording_seal_bytes: int = 1024 * 1024
    # Webhooks and the outbox their deliveries wait in (docs/integrations.md).
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)
    # E-mail (chatserver/mail/, docs/email.md): the SMTP server of sites that set none.
    smtp_url: str | None = None  # smtp[s|+starttls]://user:password@host:port?from=...
    public_url: str | None = None  # the server's address in mailed links; default host:port

    @property
    def blobs(self) -> Path:
        return self.blob_dir if self.blob_dir is not None else self.data_dir / "blobs"

    @property
    def backend(self) -> str:
        if self.database_url:
            return "postgres+redis" if self.redis_url or self.coordination_url else "postgres"
        return "redis" if self.redis_url else "embedded"

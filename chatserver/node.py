"""The composition root: one object builds a chatserver process's parts and owns their lives.

``Node.build(config)`` makes the seams chosen by the configuration (Store,
Broker, Router, Presence: ``backends.py``), the token signer, the blob store,
the services and the hub, and installs the features that plug in from
outside the hub (session recording, ``recordings/``), with the conversation
events' listeners registered before anything starts.  ``start`` and
``close`` bring them up and down in order (the store first and last).

The web application (``web/app.py``) is built around a node, and so are the
tests' in-process nodes: nothing else constructs these parts.  Handlers,
features, the console and the HTTP endpoints are given the node
(``request.app.state.node``) and reach the hub through ``node.hub``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import archive
import recordings

from . import features, handlers, logins, redact
from .api.keys import ApiKeys
from .audit import Audit
from .backends import build
from .blobs import BlobStore, DirectoryBlobs
from .broker import Broker
from .config import Config
from .conversations import Conversations
from .features.attachments import UploadBudget
from .held import HeldPages
from .hub import Hub
from .loop_lag import LoopLag
from .mail.service import MailService
from .outbox import Outbox
from .presence import Presence
from .privacy.retention import Retention
from .quotas import Quotas
from .reports.service import Reports
from .routing import Router
from .security import Signer, load_secret, load_secret_postgres, load_secret_redis
from .store import Store
from .types import new_id
from .webhooks import Webhooks

if TYPE_CHECKING:
    from .features.cobrowse import Cobrowse
    from .proactive import Proactive


def open_blobs(config: Config) -> BlobStore:
    """The blob store ``config`` names: S3 (``--blobs s3://...``) or a directory."""
    if config.blob_s3 is not None:
        from .blobs_s3 import S3Blobs

        return S3Blobs(config.blob_s3)
    return DirectoryBlobs(config.blobs)


class Node:
    """One chatserver process's parts (see the module docstring).

    What handlers, features and the console are given: the seams (``store``,
    ``broker``, ``router``, ``presence``, ``blobs``), the services (``convs``,
    ``quotas``, ``held``, ``triggers``, ``cobrowse``, ``recordings``,
    ``outbox``, ``webhooks``, ...)
    and the ``hub`` (this process's sessions, channels, fan-out, dispatch).
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        broker: Broker,
        router: Router,
        presence: Presence,
        signer: Signer,
        blobs: BlobStore,
    ) -> None:
        self.config = config
        self.id = new_id("n")  # this process, in control events it receives back
        self.store = store
        self.broker = broker
        self.router = router
        self.presence = presence
        self.signer = signer
        self.blobs = blobs  # attachments and recording segments
        self.limits = config.limits
        self.grace = config.grace
        # Seconds between re-checks of the open agent sockets' sign-ins
        # (control.recheck_sessions), jittered by a quarter either way; 0: never.
        self.session_check = config.session_check
        self.quotas = Quotas(config.quotas)  # abuse limits (quotas.py)
        self.held = HeldPages()  # page views of visitors without a row yet (held.py)
        self.convs = Conversations(store, broker, router)
        self.hub = Hub(
            store,
            broker,
            router,
            signer,
            config.limits,
            grace=config.grace,
            presence=presence,
            convs=self.convs,
        )
        self.hub.node = self
        self.metrics = self.hub.metrics
        self.convs.publish_seconds = self.metrics.broker_publish
        # event-loop lag into chatserver_event_loop_lag_seconds (loop_lag.py)
        self.loop_lag = LoopLag(self.metrics.loop_lag)
        self.hub.add_service(self.loop_lag.start, self.loop_lag.close)
        self.hub.add_service(None, self.convs.close_retries)
        # Set by ``features.install``: the trigger engine and co-browsing.
        self.triggers: Proactive
        self.cobrowse: Cobrowse
        handlers.install(self)
        features.install(self)
        seal = recordings.RecordingLimits(
            chunks=config.recording_chunks,
            seal_seconds=config.recording_seal_seconds,
            seal_bytes=config.recording_seal_bytes,
        )
        self.recordings = recordings.Recordings(store, blobs, seal)
        self.recordings.install(self)
        # Reports: the facts rows kept from conversation events (reports/service.py).
        self.reports = Reports(self)
        self.reports.install()
        self.archive = archive.Archive(store)  # the conversation archive's index
        self.archive.install(self)
        # Who did what: sign-ins, transcripts and replays read, exports, admin changes.
        self.audit = Audit(store)
        self.audit.install(self)
        self.retention = Retention(self)  # every site's periods (privacy/retention.py)
        self.hub.add_service(self.retention.start, self.retention.close)
        # Failed sign-ins counted in the store (shared by every process).
        self.login_throttle = logins.LoginThrottle(store, limit=10, window=300.0)
        # Durable jobs (webhook deliveries) and the webhooks fed from the change feed.
        self.outbox = Outbox(store, config.webhooks.outbox)
        self.outbox.observe = self.metrics.delivered
        self.hub.add_service(self.outbox.start, self.outbox.close)
        self.webhooks = Webhooks(self)
        self.webhooks.install()
        # E-mail out and in (mail/, docs/email.md).
        self.mail = MailService(self)
        self.mail.install()
        # Attachment upload bodies held in memory at once, by this process.
        self.upload_budget = UploadBudget(config.upload_memory)
        # The REST API's keys and this process's request rate per key (api/keys.py).
        shared = config.backend in ("redis", "postgres+redis")  # many processes
        self.api_keys = ApiKeys(store, config.api_rate, shared=shared)

    @classmethod
    def build(cls, config: Config) -> Node:
        """The parts ``config`` asks for (nothing is started)."""
        config.data_dir.mkdir(parents=True, exist_ok=True)
        redact.protect(config.redis_url)  # its password never reaches a log line
        redact.protect(config.database_url)
        redact.protect(config.smtp_url)
        redact.install()
        store, broker, router, presence = build(config)
        if config.database_url:  # PostgreSQL is the record: the secret lives there
            signer = Signer(load_secret_postgres(config.database_url))
        elif config.redis_url:
            signer = Signer(load_secret_redis(config.redis_url))
        else:
            signer = Signer(load_secret(config.data_dir))
        return cls(config, store, broker, router, presence, signer, open_blobs(config))

    async def start(self) -> None:
        """The store, then the hub (broker, router, presence, triggers, events), then features."""
        await self.store.start()
        await self.hub.start()
        await self.recordings.start()

    async def close(self) -> None:
        """In reverse: features, the hub, the store (which flushes last)."""
        await self.recordings.close()
        await self.hub.close()
        await self.store.close()

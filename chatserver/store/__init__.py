"""The Store seam: durable state of sites, agents, visitors and conversations.

``Store`` is the composite of one Protocol per domain; each domain's contract
is in its Protocol's docstring, and the contract tests in ``tests/contracts/``
(one file per domain) check it for each backend:

======================  =====================  ==========================================
module                  Protocol               holds
======================  =====================  ==========================================
``sites.py``            ``SiteStore``          sites, identity secret, site documents
``agents.py``           ``AgentStore``         agent accounts, password hashes
``visitors.py``         ``VisitorStore``       visitors, page views, events, identities
``conversations.py``    ``ConversationStore``  conversations, entries, read markers
``attachments.py``      ``AttachmentStore``    uploaded files' records, byte counters
``logins.py``           ``LoginStore``         session generations, revocations, throttle
``firings.py``          ``FiringStore``        trigger firings, per-site counters
``reports.py``          ``ReportStore``        conversation facts rows (reports)
``outbox.py``           ``OutboxStore``        change feed, cursors, durable jobs
``erasure.py``          ``ErasureStore``       erasing a person, retention's deletions
======================  =====================  ==========================================

The backends are ``store/sqlite/`` and ``store/redis/``: one engine module each
and one module per domain.  What every implementation keeps, in every domain:

* **Durability.** When an awaited method that writes returns, the write is
  durable: it survives a kill -9 of the server process, and with the default
  settings a power cut too.  Nothing is acknowledged to a client before that.
* **Atomicity across domains.** A write that touches two domains is still one
  atomic step: ``open_conversation`` with its visitor, ``bind_attachment``
  with the byte counters, ``save_agent`` with the session generation.
* Records are returned as frozen dataclasses from ``types``; ``None`` means
  "no such row".
"""

from __future__ import annotations

from typing import Protocol

from .agents import AgentStore
from .attachments import AttachmentStore
from .common import (
    ATTACHMENT_BYTES,
    MAX_PAGE_VIEWS,
    MAX_VISITOR_EVENTS,
    VISIT_GAP,
    merge_attributes,
    throttle_delay,
)
from .conversations import ConversationStore
from .erasure import ERASED, Erased, ErasureStore
from .firings import FiringStore
from .logins import LoginStore
from .outbox import OutboxStore
from .reports import ReportStore
from .sites import SiteStore
from .visitors import VisitorStore

__all__ = [
    "ATTACHMENT_BYTES",
    "ERASED",
    "MAX_PAGE_VIEWS",
    "MAX_VISITOR_EVENTS",
    "VISIT_GAP",
    "AgentStore",
    "AttachmentStore",
    "ConversationStore",
    "Erased",
    "ErasureStore",
    "FiringStore",
    "LoginStore",
    "OutboxStore",
    "ReportStore",
    "SiteStore",
    "Store",
    "VisitorStore",
    "merge_attributes",
    "throttle_delay",
]


class Store(
    SiteStore,
    AgentStore,
    VisitorStore,
    ConversationStore,
    AttachmentStore,
    LoginStore,
    FiringStore,
    ReportStore,
    OutboxStore,
    ErasureStore,
    Protocol,
):
    """Every domain of the Store, and the lifecycle of the backend that holds them."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Return once the store can serve requests; raise ``StoreError`` if not.

        Cheap (one round trip, no data read): ``/readyz`` calls it on every
        probe, under a short timeout of its own.  On SQLite it passes
        through the writer thread, so a stopped or wedged writer fails it.
        """

    async def scrub(self) -> None:
        """Make what was deleted unreadable in the backend's own files, where it
        can (after an erasure): SQLite truncates its WAL (deleted rows are zeroed
        as they go), Redis rewrites its append-only file, PostgreSQL vacuums
        the tables erasure deletes from."""

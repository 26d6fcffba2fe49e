"""Retention for everything: each site's periods, applied by an hourly sweep.

A site's settings name how long to keep (in days; 0 keeps for ever):

* ``conversation_retention_days``: closed conversations, counted from their
  close, with their messages, files and read markers (their report rows are
  kept without the person, as an erasure keeps them: ``ErasureStore``);
* ``attachment_retention_days``: files posted in chats, from their upload
  (the message stays; the file can no longer be opened);
* ``visitor_retention_days``: visitors with no conversation (never chatted,
  or their conversations are gone), from the last page view or custom event;
* ``activity_retention_days``: every visitor's page views and custom events.

Recordings (``recording_retention_days``, ``recordings/retention.py``) and
the audit trail (``audit_retention_days``, ``chatserver/audit``) have sweeps
of their own.  Every process sweeps, with jitter; a process skips a site
another one swept less than half an interval ago (the site document
``privacy/retention-run``, which the privacy page shows), and every deletion
may be repeated, so two sweeps at once delete nothing twice.  A sweep that
deleted something adds ``retention.sweep`` to the audit trail, with the counts.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

from ..store import Erased
from ..types import JSON, Site

if TYPE_CHECKING:
    from ..node import Node

log = logging.getLogger("chatserver.retention")

DAY = 86400.0
EVERY = 3600.0  # seconds between sweeps
BATCH = 200  # rows per Store call
BATCHES = 50  # calls per kind per site per sweep (the next sweep goes on)
RUN_DOC = ("privacy", "retention-run")  # (kind, id) of the site document
KINDS = ("conversations", "attachments", "visitors", "page_views", "events")


def periods(site: Site) -> dict[str, int]:
    s = site.settings
    return {
        "conversations": s.conversation_retention_days,
        "attachments": s.attachment_retention_days,
        "visitors": s.visitor_retention_days,
        "activity": s.activity_retention_days,
    }


async def sweep_site(node: Node, site: Site, now: float) -> dict[str, int]:
    """Delete what is past the site's periods; how many of each kind."""
    store, days = node.store, periods(site)
    counts = dict.fromkeys(KINDS, 0)
    if days["conversations"] > 0:
        cutoff = now - days["conversations"] * DAY
        for _ in range(BATCHES):
            ids = await store.expired_conversations(site.id, cutoff, BATCH)
            if not ids:
                break
            done = await store.erase_conversations(ids)
            await _files_gone(node, done)
            await node.archive.index.forget(site.id, done.conversations)
            counts["conversations"] += len(done.conversations)
            counts["attachments"] += len(done.attachments)
    if days["attachments"] > 0:
        cutoff = now - days["attachments"] * DAY
        for _ in range(BATCHES):
            files = await store.expired_attachments(site.id, cutoff, BATCH)
            if not files:
                break
            gone = await store.delete_attachments([f.id for f in files])
            await _files_gone(node, Erased(attachments=gone))
            counts["attachments"] += len(gone)
    if days["visitors"] > 0:
        cutoff = now - days["visitors"] * DAY
        for _ in range(BATCHES):
            idle = await store.idle_visitors(site.id, cutoff, BATCH)
            if not idle:
                break
            for visitor_id in idle:
                done = await store.erase_visitor(visitor_id, remember=False)
                await _files_gone(node, done)
                counts["visitors"] += done.visitors
    if days["activity"] > 0:
        views, events = await store.prune_activity(site.id, now - days["activity"] * DAY)
        counts["page_views"] += views
        counts["events"] += events
    if any(counts.values()):
        await store.scrub()
        log.info("retention: site %s: deleted %s", site.id, counts)
    return counts


async def _files_gone(node: Node, done: Erased) -> None:
    for att in done.attachments:
        await node.blobs.delete(att.blob_key)


async def sweep(node: Node, now: float | None = None, *, force: bool = False) -> dict[str, JSON]:
    """Sweep every site with a period set; each site's run, by site id.

    Skips a site swept by any process less than ``EVERY / 2`` ago (unless
    ``force``).  Each run is kept as the site document ``RUN_DOC``.
    """
    at = time.time() if now is None else now
    runs: dict[str, JSON] = {}
    for site in await node.store.list_sites():
        if not any(d > 0 for d in periods(site).values()):
            continue
        last = await node.store.get_doc(site.id, *RUN_DOC)
        if not force and last is not None and at - float(last.data.get("at", 0)) < EVERY / 2:
            continue
        started = time.monotonic()
        counts = await sweep_site(node, site, at)
        run: JSON = {"at": at, "seconds": round(time.monotonic() - started, 3), "deleted": counts}
        await node.store.put_doc(site.id, *RUN_DOC, run)
        if any(counts.values()):
            gone = {k: n for k, n in counts.items() if n}
            await node.audit.record(site.id, "system", "retention.sweep", "", "", gone)
        runs[site.id] = run
    return runs


class Retention:
    """The node's sweep: started with the hub, every ``EVERY`` seconds, jittered."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._forever())

    async def close(self) -> None:
        from ..tasks import stop

        task, self._task = self._task, None
        if task is not None:
            await stop(task)

    async def _forever(self) -> None:
        await asyncio.sleep(random.uniform(5, 60))  # not every process at start-up
        while True:
            try:
                await sweep(self.node)
            except Exception:
                log.exception("retention sweep failed; trying again later")
            await asyncio.sleep(EVERY * random.uniform(0.8, 1.2))

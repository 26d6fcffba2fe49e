"""The sweep of unposted uploads: files uploaded but never posted within ``--upload-ttl``.

``sweeper`` runs for the life of the hub (``Hub.start``) and calls
``sweep_unposted`` every ``sweep_interval(ttl)`` seconds, jittered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

from ...errors import StoreError

if TYPE_CHECKING:
    from ...node import Node

log = logging.getLogger("chatserver.attachments")

SWEEP_BATCH = 100  # attachments listed per Store call
SWEEP_BATCHES = 50  # batches per round at most (the next round goes on)


async def sweep_unposted(node: Node, ttl: float, now: float | None = None) -> int:
    """Delete uploads never posted within ``ttl`` seconds: record, then blob.

    Safe with many processes sweeping at once: the Store deletes a record
    only while it is unbound and only once (``delete_unposted_attachment``),
    and only the process that deleted it deletes the blob (a missing blob is
    no error).  Returns how many this call deleted.
    """
    assert node.blobs is not None
    before = (time.time() if now is None else now) - ttl
    deleted = 0
    for _ in range(SWEEP_BATCHES):
        batch = await node.store.unposted_attachments(before, SWEEP_BATCH)
        for att in batch:
            gone = await node.store.delete_unposted_attachment(att.id)
            if gone is not None:
                await node.blobs.delete(gone.blob_key)
                deleted += 1
        if len(batch) < SWEEP_BATCH:
            break
    node.quotas.swept += deleted
    return deleted


def sweep_interval(ttl: float) -> float:
    """Seconds between sweeps: a quarter of the time to live, 0.2 s to 5 minutes."""
    return max(0.2, min(ttl / 4, 300.0))


async def sweeper(node: Node) -> None:
    """Sweep unposted uploads for ever (``--upload-ttl``), jittered."""
    ttl = node.quotas.config.upload_ttl
    while True:
        await asyncio.sleep(sweep_interval(ttl) * random.uniform(0.75, 1.25))
        try:
            count = await sweep_unposted(node, ttl)
            if count:
                log.info("deleted %d unposted uploads older than %gs", count, ttl)
        except (StoreError, OSError) as exc:  # the next round tries again
            log.warning("sweeping unposted uploads failed: %s", exc)
        except Exception:
            log.exception("sweeping unposted uploads failed")

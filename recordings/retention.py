"""Deleting recordings: by age per site (retention), and one visitor's on request.

Blobs go first, then the index: if the process dies in between, the index
row is still there and the next purge deletes it (deleting a missing blob
is a no-op), so no segment is ever left without an index row to find it by.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from chatserver.blobs import BlobStore
from chatserver.store import Store
from chatserver.types import Recording, VisitorId

from .chunks import is_segment
from .index import RecordingIndex

log = logging.getLogger("recordings.retention")

DAY = 86400.0
PURGE_BATCH = 500

Forget = Callable[[list[str]], None]


async def delete(
    index: RecordingIndex,
    blobs: BlobStore,
    recs: Sequence[Recording],
    forget: Forget | None = None,
) -> int:
    """Delete ``recs``: their chunks (or segments), then their index rows; how many rows went."""
    for rec in recs:
        if is_segment(rec.blob):  # written by an earlier version
            await blobs.delete(rec.blob)
        else:
            await blobs.delete_prefix(rec.blob)
    ids = [rec.id for rec in recs]
    if forget is not None:
        forget(ids)
    return await index.delete_recordings(ids) if ids else 0


async def purge(
    store: Store,
    index: RecordingIndex,
    blobs: BlobStore,
    now: float | None = None,
    forget: Forget | None = None,
) -> int:
    """Delete every site's recordings that ended more than its retention ago.

    ``store`` names the sites (and their settings); ``index`` is its recordings index.

    A site's ``recording_retention_days`` of 0 or less keeps recordings
    forever.  Returns how many were deleted.
    """
    clock = time.time() if now is None else now
    total = 0
    for site in await store.list_sites():
        days = site.settings.recording_retention_days
        if days <= 0:
            continue
        cutoff = clock - days * DAY
        while True:
            old = await index.expired_recordings(site.id, cutoff, PURGE_BATCH)
            if not old:
                break
            total += await delete(index, blobs, old, forget)
            if len(old) < PURGE_BATCH:
                break
    if total:
        log.info("retention: deleted %d recordings", total)
    return total


async def delete_visitor(
    index: RecordingIndex, blobs: BlobStore, visitor_id: VisitorId, forget: Forget | None = None
) -> int:
    """Delete every recording of one visitor (a data-protection request)."""
    return await delete(index, blobs, await index.visitor_recordings(visitor_id), forget)

"""What the Store's backends share: the bounds the contracts name, and the arithmetic
every backend does the same way (a merge of attributes, the throttle's wait)."""

from __future__ import annotations

from collections.abc import Iterable

from ..types import JSON

VISIT_GAP = 30 * 60  # seconds between page views that start a new visit
MAX_PAGE_VIEWS = 200  # page views kept per visitor
ATTACHMENT_BYTES = "attachment-bytes"  # counter group of attachment_bytes
MAX_VISITOR_EVENTS = 200  # tracked custom events kept per visitor
# A resend (the same author's ``cid`` again) is recognised at least while its
# first copy is among the conversation's newest CID_WINDOW entries.  SQLite
# looks there only (a scan of the pages the append writes anyway, instead of
# an index with a random page per message: schema step 10); PostgreSQL and
# Redis keep an index and recognise older ones too.
CID_WINDOW = 64


def merge_attributes(current: JSON, patch: JSON) -> JSON:
    """``current`` with ``patch`` merged in: a ``None`` value deletes its key."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def throttle_delay(stamps: Iterable[float], limit: int, window: float, now: float) -> float:
    """Seconds until fewer than ``limit`` of ``stamps`` lie in the ``window`` before
    ``now``; 0 when fewer do already (the backends share this arithmetic)."""
    recent = sorted(t for t in stamps if now - t < window)
    if len(recent) < limit:
        return 0.0
    return window - (now - recent[-limit])

"""What the Store's backends share: the bounds the contracts name, and the arithmetic
every backend does the same way (a merge of attributes, the throttle's wait, a
recording batch applied to its row)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ..types import JSON, Recording, RecordingBatch

VISIT_GAP = 30 * 60  # seconds between page views that start a new visit
MAX_PAGE_VIEWS = 200  # page views kept per visitor
ATTACHMENT_BYTES = "attachment-bytes"  # counter group of attachment_bytes
MAX_VISITOR_EVENTS = 200  # tracked custom events kept per visitor


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


def apply_batch(rec: Recording, batch: RecordingBatch) -> Recording:
    """``rec`` after ``batch`` (the backends share this arithmetic).

    The first batch with events fixes ``first_ts``; ``started`` and ``ended``
    follow the event times shifted by the recording's clock skew.
    """
    empty = rec.events == 0
    first = batch.first_ts if empty else min(rec.first_ts, batch.first_ts)
    last = batch.last_ts if empty else max(rec.last_ts, batch.last_ts)
    pages = sum(1 for m in batch.marks if m.kind == "page")
    return replace(
        rec,
        first_ts=first,
        last_ts=last,
        started=(first + rec.skew_ms) / 1000.0,
        ended=(last + rec.skew_ms) / 1000.0,
        last_seq=batch.seq,
        events=rec.events + batch.events,
        bytes=rec.bytes + batch.bytes,
        raw_bytes=rec.raw_bytes + batch.raw_bytes,
        clicks=rec.clicks + batch.clicks,
        inputs=rec.inputs + batch.inputs,
        pages=rec.pages + pages,
        marks=rec.marks + len(batch.marks),
        conv_id=rec.conv_id or batch.conv_id,
    )

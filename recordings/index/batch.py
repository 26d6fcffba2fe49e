"""A batch applied to its recording's row: the arithmetic both backends share."""

from __future__ import annotations

from chatserver.types import Recording, RecordingBatch


def apply_batch(rec: Recording, batch: RecordingBatch) -> Recording:
    """``rec`` after ``batch`` (the backends share this arithmetic).

    The first batch with events fixes ``first_ts``; ``started`` and ``ended``
    follow the event times shifted by the recording's clock skew.
    """
    empty = rec.events == 0
    first = batch.first_ts if empty else min(rec.first_ts, batch.first_ts)
    last = batch.last_ts if empty else max(rec.last_ts, batch.last_ts)
    pages = 0
    for mark in batch.marks:
        pages += mark.kind == "page"
    # Built field by field rather than with ``dataclasses.replace``, which
    # costs several times as much (it runs once per batch stored).
    return Recording(
        rec.id,
        rec.site_id,
        rec.visitor_id,
        rec.blob,
        rec.created_at,
        rec.skew_ms,
        (first + rec.skew_ms) / 1000.0,
        (last + rec.skew_ms) / 1000.0,
        first,
        last,
        batch.seq,
        rec.events + batch.events,
        rec.bytes + batch.bytes,
        rec.raw_bytes + batch.raw_bytes,
        rec.clicks + batch.clicks,
        rec.inputs + batch.inputs,
        rec.pages + pages,
        rec.marks + len(batch.marks),
        rec.conv_id or batch.conv_id,
    )

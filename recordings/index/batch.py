"""A batch applied to its recording's row: the arithmetic both backends share."""

from __future__ import annotations

from dataclasses import replace

from chatserver.types import Recording, RecordingBatch


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

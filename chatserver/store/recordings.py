"""The recordings domain of the Store: the index of recorded sessions (recordings/)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..types import (
    Recording,
    RecordingBatch,
    RecordingId,
    RecordingMark,
    SiteId,
    VisitorId,
)


class RecordingStore(Protocol):
    """The recordings index: one row per recording, its batches and marks.

    * A recording belongs to the site and visitor that claimed it first
      (``claim_recording``).
    * ``add_recording_batch`` applies a batch once (a ``seq`` at or below
      ``last_seq`` changes nothing and reports a duplicate), atomically with
      its marks.
    """

    async def claim_recording(
        self,
        rec_id: RecordingId,
        site_id: SiteId,
        visitor_id: VisitorId,
        blob: str,
        skew_ms: float,
    ) -> Recording:
        """The recording ``rec_id``, created empty (``last_seq`` -1) if new.

        Atomic: of concurrent claims one creates the row and all return it.
        An existing row is returned as it is, whoever owns it: the caller
        compares ``site_id`` and ``visitor_id`` before writing anything.
        """

    async def get_recording(self, rec_id: RecordingId) -> Recording | None: ...

    async def add_recording_batch(
        self, rec_id: RecordingId, batch: RecordingBatch
    ) -> tuple[Recording, bool]:
        """Apply a stored batch (``apply_batch``) and append its marks; ``(row, duplicate)``.

        A ``batch.seq`` at or below ``last_seq`` changes nothing and returns
        the row with ``True``.  Raises ``NotFound`` when the row is gone.
        """

    async def recording_marks(
        self, rec_id: RecordingId, kinds: Sequence[str] | None = None
    ) -> list[RecordingMark]:
        """The recording's marks (of ``kinds``, default all) in the order they were added."""

    async def list_recordings(
        self,
        site_id: SiteId,
        *,
        since: float | None = None,
        until: float | None = None,
        url: str | None = None,
        min_duration: float | None = None,
        had_chat: bool | None = None,
        visitor_id: VisitorId | None = None,
        before: tuple[float, RecordingId] | None = None,
        limit: int = 50,
    ) -> list[Recording]:
        """A site's recordings with at least one event, newest ``started`` first.

        Filters: ``since <= started < until``; ``url`` is a substring of a
        page the recording visited; ``duration >= min_duration``;
        ``had_chat`` whether a conversation is linked; one visitor.  Paging:
        ``before`` is the ``(started, id)`` of the last row of the previous
        page; rows come in ``(started, id)`` descending order.
        """

    async def expired_recordings(
        self, site_id: SiteId, ended_before: float, limit: int = 500
    ) -> list[Recording]:
        """Recordings of a site (empty ones too) that ended before ``ended_before``."""

    async def visitor_recordings(self, visitor_id: VisitorId) -> list[Recording]:
        """Every recording of a visitor, empty ones too, newest first."""

    async def delete_recordings(self, rec_ids: Sequence[RecordingId]) -> int:
        """Delete the index rows and marks; how many rows existed."""

"""The outbox domain of the Store: the change feed, consumers' cursors and durable jobs.

Work that must reach the world outside (a webhook delivery, later an e-mail)
is written here as a **job** before anything tries it, so a process that
dies (kill -9) loses none: another process, or the next start, runs it.
Conversations reach the outbox through the **change feed**: every
``append`` gives the conversation a new ``feed_seq`` from one global
sequence in the same atomic step as the entry, so a consumer that keeps its
position in the feed finds every conversation that changed since, across a
crash.  One place per conversation, not one per entry: a busy conversation
has one place in the feed, its latest.  (On SQLite every entry takes a
place, ``entries.seq``, and ``changes`` passes over those that are not
their conversation's newest: an append writes no page of the row.)

* **Feed.** ``changes(after)`` returns conversations whose ``feed_seq`` is
  above ``after``, in ``feed_seq`` order, with their ``last_offset``.  On
  SQLite and Redis ``feed_seq`` order is commit order.  On PostgreSQL a
  sequence value is taken before its transaction commits, so a smaller seq
  can become visible after a larger one: consumers re-read a margin behind
  their position (``FEED_MARGIN``) and skip by their cursors what they did.
* **Cursors.** Named integers (a consumer's feed position, the last offset
  of a conversation a webhook endpoint has taken); they only move forward.
* **Enqueue is atomic and idempotent.** ``enqueue(jobs, cursors)`` stores
  the jobs and raises the cursors in one step.  A job whose ``cursor`` is
  already stored at or past its ``seq`` is skipped, and so is a job whose
  id exists: two processes dispatching the same change store it once.
* **Order per key.** A job is claimable only when it is due and no pending
  job of the same ``key`` has a smaller ``seq``: jobs of one key run one at
  a time in ``seq`` order (a job that failed for good no longer holds its
  key back); jobs of different keys run concurrently.
* **Claims are leases.** ``claim`` moves the claimed jobs' ``due_at`` to
  ``now + lease`` (the jobs returned show it); a job neither completed nor
  retried by then (its process died) is claimed again: at least once.
* **Finishing.** ``complete`` marks a job done; ``retry`` counts a failed
  attempt and sets when to try again; ``fail`` counts it and gives up
  (state ``failed``); ``resend`` makes a done or failed job pending again,
  due now, with its attempts reset (the admin's re-send).  Each returns the
  job as it is after the change, ``None`` for an unknown id.
* ``jobs(site, key_prefix)`` lists a site's jobs whose key starts with the
  prefix, newest first; ``prune(before)`` deletes done and failed jobs last
  changed before ``before``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ..types import JSON, ConversationId, SiteId

# How far behind its position a feed consumer re-reads on PostgreSQL (see above).
FEED_MARGIN = 256


class JobState(Enum):
    PENDING = "pending"  # waiting for its time, or claimed (a lease) and running
    DONE = "done"
    FAILED = "failed"  # given up (too old, or refused for good)


@dataclass(frozen=True, slots=True)
class Change:
    """A conversation that changed: its place in the feed and its newest offset."""

    seq: int
    conv_id: ConversationId
    site_id: SiteId
    last_offset: int


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to store: ``kind`` names its handler, ``key`` its order group."""

    id: str
    site_id: SiteId
    kind: str
    key: str
    seq: int
    payload: JSON
    cursor: str | None = None  # skipped when this cursor is already at or past ``seq``


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    site_id: SiteId
    kind: str
    key: str
    seq: int
    payload: JSON
    state: JobState
    attempts: int
    due_at: float
    created_at: float
    updated_at: float
    last_error: str = ""


class OutboxStore(Protocol):
    """The change feed, cursors and jobs (the rules are in the module docstring)."""

    async def changes(self, after: int, limit: int = 200) -> list[Change]:
        """Conversations with ``feed_seq > after``, smallest first, at most ``limit``."""

    async def feed_head(self) -> int:
        """The largest ``feed_seq`` handed out so far (0 for none)."""

    async def cursors(self, names: Sequence[str]) -> dict[str, int]:
        """The stored cursors among ``names`` (absent ones are left out)."""

    async def enqueue(self, jobs: Sequence[NewJob], cursors: Mapping[str, int]) -> int:
        """Store ``jobs`` and raise ``cursors`` atomically; the number of jobs added."""

    async def claim(self, now: float, lease: float, limit: int) -> list[Job]:
        """Claim up to ``limit`` due jobs, each the head of its key, oldest due first."""

    async def complete(self, job_id: str, now: float) -> Job | None: ...

    async def retry(self, job_id: str, now: float, due_at: float, error: str) -> Job | None: ...

    async def fail(self, job_id: str, now: float, error: str) -> Job | None: ...

    async def resend(self, job_id: str, now: float) -> Job | None: ...

    async def get_job(self, job_id: str) -> Job | None: ...

    async def jobs(self, site_id: SiteId, key_prefix: str = "", limit: int = 50) -> list[Job]:
        """The site's jobs whose key starts with ``key_prefix``, newest first."""

    async def prune(self, before: float) -> int:
        """Delete done and failed jobs last changed before ``before``; how many."""

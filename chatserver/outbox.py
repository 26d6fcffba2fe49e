"""The outbox runner: runs the durable jobs of ``store/outbox.py`` by kind.

A feature registers an async handler for its job kind (``handle``): webhooks
register ``webhook``, e-mail will register its own.  The runner claims due
jobs (each the head of its order key, so jobs of one key run one at a time in
order and different keys at once), runs each in its own task and records the
outcome:

* the handler returns: the job is done;
* it raises ``GiveUp``: the job fails for good now (``last_error`` says why);
* it raises anything else: the attempt failed; the job is retried after an
  exponential backoff with jitter (``retry_base * 2**attempts``, capped at
  ``retry_cap``, times a random factor in [0.5, 1]), until it is older than
  ``give_up`` seconds, when it fails for good.

A claim is a lease of ``lease`` seconds: a process killed mid-delivery
leaves its jobs to be claimed again after it, so a job may run more than
once (receivers de-duplicate; webhooks carry a delivery id).  The lease
must outlast a handler's longest run (the CLI keeps it above the webhook
timeout); a job still running here when its lease ends is not started twice.  The runner
wakes when a job is enqueued in this process (``wake``) and otherwise polls
every ``poll`` seconds, for jobs other processes wrote and retries falling
due.  Done and failed jobs are pruned ``keep`` seconds after they finished.
Nothing here is on the chat's path: the handlers run in the runner's tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter

from .store import Store
from .store.outbox import Job
from .tasks import stop
from .types import now

log = logging.getLogger("chatserver.outbox")

Handler = Callable[[Job], Awaitable[None]]


class GiveUp(Exception):
    """Raised by a handler: this job can never succeed; fail it now."""


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    retry_base: float = 10.0  # seconds before the first retry (then doubling)
    retry_cap: float = 3600.0  # the longest wait between two attempts
    give_up: float = 86400.0  # a job older than this fails for good
    lease: float = 60.0  # a claimed job is claimed again after this (its process died)
    poll: float = 1.0  # seconds between looks for due jobs when nothing woke the runner
    concurrency: int = 32  # jobs running at once in this process
    keep: float = 7 * 86400.0  # done and failed jobs are kept this long


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones (with jitter)."""
    return min(cap, base * 2.0 ** min(attempts, 40)) * random.uniform(0.5, 1.0)


class Outbox:
    """This process's runner of outbox jobs (see the module docstring)."""

    PRUNE_EVERY = 3600.0

    def __init__(self, store: Store, config: OutboxConfig | None = None) -> None:
        self.store = store
        self.config = config or OutboxConfig()
        self._handlers: dict[str, Handler] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: dict[asyncio.Task[None], str] = {}  # task -> job id
        self._pruned = 0.0
        self.done = 0
        self.retried = 0
        self.failed = 0
        # ``(kind, outcome, seconds)`` per attempt (the node passes ``metrics.delivered``)
        self.observe: Callable[[str, str, float], None] | None = None

    def handle(self, kind: str, handler: Handler) -> None:
        """Run jobs of ``kind`` with ``handler`` (registered before ``start``)."""
        self._handlers[kind] = handler

    def wake(self) -> None:
        """Look for due jobs now (a job was enqueued)."""
        self._wake.set()

    async def start(self) -> None:
        if self._handlers:
            self._task = asyncio.create_task(self._loop(), name="chatserver-outbox")

    async def close(self) -> None:
        if self._task is not None:
            await stop(self._task)
            self._task = None
        for task in list(self._running):  # their jobs' leases bring them back
            await stop(task)

    async def _loop(self) -> None:
        while True:
            try:
                await self._round()
            except Exception:
                log.exception("outbox round failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll)
            self._wake.clear()

    async def _round(self) -> None:
        free = self.config.concurrency - len(self._running)
        while free > 0:
            jobs = await self.store.claim(now(), self.config.lease, free)
            running = set(self._running.values())
            for job in jobs:
                if job.id in running:  # still running here past its lease: not twice
                    continue
                task = asyncio.create_task(self._run(job), name=f"chatserver-outbox-{job.kind}")
                self._running[task] = job.id
                task.add_done_callback(self._finished)
            if len(jobs) < free:
                break
            free = self.config.concurrency - len(self._running)
        if now() - self._pruned > self.PRUNE_EVERY:
            self._pruned = now()
            await self.store.prune(now() - self.config.keep)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()  # the key's next job may be due

    async def _run(self, job: Job) -> None:
        try:
            await self._attempt(job)
        except Exception:  # the store failed to record it: the lease brings it back
            log.exception("outbox job %s: recording the outcome failed", job.id)

    async def _attempt(self, job: Job) -> None:
        handler = self._handlers.get(job.kind)
        started = perf_counter()
        try:
            if handler is None:
                raise GiveUp(f"no handler for jobs of kind {job.kind!r}")
            await handler(job)
        except GiveUp as exc:
            self._observe(job.kind, "failed", started)
            self.failed += 1
            await self.store.fail(job.id, now(), str(exc)[:500])
        except Exception as exc:
            error = (str(exc) or type(exc).__name__)[:500]
            t = now()
            if t - job.created_at >= self.config.give_up:
                self._observe(job.kind, "failed", started)
                self.failed += 1
                await self.store.fail(job.id, t, f"gave up: {error}")
            else:
                self._observe(job.kind, "retry", started)
                self.retried += 1
                cfg = self.config
                due = t + backoff(job.attempts, cfg.retry_base, cfg.retry_cap)
                await self.store.retry(job.id, t, due, error)
        else:
            self._observe(job.kind, "ok", started)
            self.done += 1
            await self.store.complete(job.id, now())

    def _observe(self, kind: str, outcome: str, started: float) -> None:
        if self.observe is not None:
            self.observe(
                kind if kind in self._handlers else "unknown", outcome, perf_counter() - started
            )

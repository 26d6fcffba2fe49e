"""The seam between what decides to send a mail and what sends it.

``MailQueue.put(mail, key=...)`` takes a mail to be sent, in order with the
other mails of the same ``key`` (a conversation id, so a visitor gets the
answers in the order agents wrote them).  The handler behind it is
``send.send(node, mail)``: one attempt, ``MailRetry`` for a temporary
failure, ``MailRejected`` for a permanent one.

``OutboxQueue`` is the queue of a node: every mail is a job of kind ``mail``
in the durable outbox (``chatserver/store/outbox.py``, ``chatserver/outbox.py``),
written before ``put`` returns, whose payload is ``Mail.to_json()``.  The
outbox's runner sends it (a job of one key at a time, in order), retries a
``MailRetry`` (or any other error) with backoff for a day, and fails a
``MailRejected`` at once: a mail server that is down delays mail, and a
process killed meanwhile loses none (another process, or the next start,
sends it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from ..outbox import GiveUp, Outbox
from ..store import Store
from ..store.outbox import Job, NewJob
from .message import Mail
from .send import MailRejected, MailRetry

log = logging.getLogger("chatserver.mail")

Handler = Callable[[Mail], Awaitable[None]]
MAX_TRACKED = 10_000  # mails of this process whose outcome ``pending``/``idle`` follow


class MailQueue(Protocol):
    async def put(self, mail: Mail, *, key: str) -> None:
        """Take ``mail`` to be sent after the earlier mails of ``key``; never waits
        for the SMTP server."""


class OutboxQueue:
    """Mails as durable outbox jobs (the module docstring).  ``sent``, ``failed``,
    ``pending`` and ``idle`` count what this process put and ran (tests, stats)."""

    KIND = "mail"

    def __init__(self, store: Store, outbox: Outbox, handler: Handler) -> None:
        self.store = store
        self.outbox = outbox
        self.handler = handler
        self.sent = 0
        self.failed = 0
        self._mine: dict[str, None] = {}  # job ids put here and not finished yet (in order)
        self._changed = asyncio.Event()
        outbox.handle(self.KIND, self.run)

    @property
    def pending(self) -> int:
        return len(self._mine)

    async def put(self, mail: Mail, *, key: str) -> None:
        job = NewJob(
            id=f"mail-{mail.id}",
            site_id=mail.site_id,
            kind=self.KIND,
            key=f"mail:{key}",
            seq=time.time_ns() // 1000,  # the order of one key's mails
            payload=mail.to_json(),
        )
        if await self.store.enqueue([job], {}):
            self._mine[job.id] = None
            if len(self._mine) > MAX_TRACKED:  # run by other processes: forget the oldest
                del self._mine[next(iter(self._mine))]
        self.outbox.wake()

    async def run(self, job: Job) -> None:
        """The outbox's handler of ``mail`` jobs."""
        mail = Mail.from_json(job.payload)
        try:
            await self.handler(mail)
        except MailRejected as exc:
            self._finished(job.id, ok=False)
            log.warning("%s mail %s not sent: %s", mail.kind, mail.id, exc)
            raise GiveUp(str(exc)) from None
        except MailRetry as exc:
            log.info("%s mail %s: %s; the outbox retries it", mail.kind, mail.id, exc)
            if time.time() - job.created_at >= self.outbox.config.give_up:
                self._finished(job.id, ok=False)
            raise
        except Exception:
            self._finished(job.id, ok=False)
            raise
        self._finished(job.id, ok=True)

    def _finished(self, job_id: str, *, ok: bool) -> None:
        if ok:
            self.sent += 1
        else:
            self.failed += 1
        self._mine.pop(job_id, None)
        self._changed.set()

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until every mail put here was sent or given up (tests)."""
        async with asyncio.timeout(timeout):
            while self._mine:
                self._changed.clear()
                await self._changed.wait()

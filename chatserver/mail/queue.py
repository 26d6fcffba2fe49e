"""The seam between what decides to send a mail and what sends it.

``MailQueue.put(mail, key=...)`` takes a mail to be sent, in order with the
other mails of the same ``key`` (a conversation id, so a visitor gets the
answers in the order agents wrote them).  The handler behind any queue is
``send.send(node, mail)``: one attempt, ``MailRetry`` for a temporary
failure, ``MailRejected`` for a permanent one.

**Durability comes with the outbox.**  The implementation here,
``TaskQueue``, sends from background tasks of this process with a few
bounded retries and logs what it gives up on; mail still queued when the
process stops, or still failing after the last retry, is lost.  The durable
outbox (issue 19, webhooks) takes its place: a job of kind ``mail`` whose
payload is ``Mail.to_json()`` and whose handler is ``send``, with the
outbox's own retries, so a mail server that is down delays mail and loses
none.  Nothing else in ``chatserver/mail/`` changes then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ..tasks import stop
from .message import Mail
from .send import MailRejected, MailRetry

log = logging.getLogger("chatserver.mail")

Handler = Callable[[Mail], Awaitable[None]]
RETRY_DELAYS = (2.0, 10.0, 30.0, 60.0, 120.0, 300.0)  # about 9 minutes in all
MAX_PENDING = 10_000  # mails waiting in this process at most; past that, dropped and logged


class MailQueue(Protocol):
    async def put(self, mail: Mail, *, key: str) -> None:
        """Take ``mail`` to be sent after the earlier mails of ``key``; never waits
        for the SMTP server."""


class TaskQueue:
    """Sends from this process's background tasks, retrying ``MailRetry`` after
    each of ``delays`` (see the module docstring: not durable)."""

    def __init__(
        self, handler: Handler, delays: Sequence[float] = RETRY_DELAYS, concurrency: int = 4
    ) -> None:
        self.handler = handler
        self.delays = tuple(delays)
        self._gate = asyncio.Semaphore(concurrency)
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0  # given up on: rejected, or still failing after the last retry
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def put(self, mail: Mail, *, key: str) -> None:
        if len(self._tasks) >= MAX_PENDING:
            self.dropped += 1
            log.warning("mail queue full: %s mail to the site %s dropped", mail.kind, mail.site_id)
            return
        before = self._chains.get(key)
        task = asyncio.create_task(self._run(mail, before), name=f"chatserver-mail-{mail.kind}")
        self._chains[key] = task
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if self._chains.get(key) is t:
                del self._chains[key]

        task.add_done_callback(done)

    async def _run(self, mail: Mail, before: asyncio.Task[None] | None) -> None:
        if before is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(before)
        for attempt, delay in enumerate((*self.delays, None), 1):
            try:
                async with self._gate:
                    await self.handler(mail)
            except MailRejected as exc:
                self.failed += 1
                log.warning("%s mail %s not sent: %s", mail.kind, mail.id, exc)
                return
            except MailRetry as exc:
                if delay is None:
                    self.failed += 1
                    log.error(
                        "%s mail %s not sent after %d attempts: %s",
                        mail.kind,
                        mail.id,
                        attempt,
                        exc,
                    )
                    return
                log.info("%s mail %s: %s; retrying in %.1fs", mail.kind, mail.id, exc, delay)
                await asyncio.sleep(delay)
            except Exception:
                self.failed += 1
                log.exception("%s mail %s failed", mail.kind, mail.id)
                return
            else:
                self.sent += 1
                return

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until nothing is pending (tests), at most ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Stop sending; what is still queued is lost (logged), until the outbox."""
        waiting = list(self._tasks)
        if waiting:
            log.warning("%d mails not sent at shutdown", len(waiting))
        for task in waiting:
            await stop(task)

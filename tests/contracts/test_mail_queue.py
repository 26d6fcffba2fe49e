"""The ``MailQueue`` contract (``chatserver/mail/queue.py``).

A queue takes a mail and a key, never waits for the SMTP server, and calls
the handler (``send.send`` in a node) until it returns or raises
``MailRejected``; mails of one key are handled in the order they were put,
mails of other keys do not wait behind them.  The handler here stands in for
``send.send`` and records what it was given (the real handler against a
real SMTP server: ``tests/mail/``).  The queue is ``OutboxQueue``: durable
jobs of the outbox, on every Store backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from chatserver.mail.message import Mail
from chatserver.mail.queue import MailQueue, OutboxQueue
from chatserver.mail.send import MailRejected, MailRetry
from chatserver.outbox import Outbox, OutboxConfig
from chatserver.store import Store
from chatserver.types import SiteId

from .conftest import FACTORIES as STORES

pytestmark = pytest.mark.anyio

Handler = Callable[[Mail], Awaitable[None]]


async def _outbox_queue(
    store: Store, handler: Handler
) -> tuple[MailQueue, Callable[[], Awaitable[None]]]:
    outbox = Outbox(store, OutboxConfig(retry_base=0.01, retry_cap=0.04, poll=0.02))
    queue = OutboxQueue(store, outbox, handler)
    await outbox.start()
    return queue, outbox.close


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    """The handler: records each call; ``plan`` says what each mail's calls do."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.done: list[str] = []
        self.plan: dict[str, list[type[Exception] | None]] = {}
        self.hold: dict[str, asyncio.Event] = {}

    async def __call__(self, mail: Mail) -> None:
        self.calls.append(mail.subject)
        if mail.subject in self.hold:
            await self.hold[mail.subject].wait()
        outcomes = self.plan.get(mail.subject, [])
        outcome = outcomes.pop(0) if outcomes else None
        if outcome is not None:
            raise outcome("planned")
        self.done.append(mail.subject)

    async def until(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        # Every outbox step is a store write; on the redis-server of the tests
        # (appendfsync always) each waits for a disk sync, and a retried mail
        # takes about a dozen of them.  A CI run under load took over 3 s
        # (nominally 0.1 s); the wait ends as soon as the check holds.
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.005)


@pytest.fixture(params=sorted(STORES))
async def queue(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[MailQueue, Recorder]]:
    store = STORES[request.param](tmp_path, request)
    await store.start()
    recorder = Recorder()
    made, close = await _outbox_queue(store, recorder)
    try:
        yield made, recorder
    finally:
        await close()
        await store.close()


def mail(subject: str) -> Mail:
    return Mail(SiteId("s_1"), "ann@example.com", subject, "text", "<p>html</p>", "reply")


async def test_put_does_not_wait_for_the_handler(queue: tuple[MailQueue, Recorder]) -> None:
    q, rec = queue
    rec.hold["slow"] = asyncio.Event()
    async with asyncio.timeout(1):
        await q.put(mail("slow"), key="c_1")
    await rec.until(lambda: rec.calls == ["slow"])
    rec.hold["slow"].set()
    await rec.until(lambda: rec.done == ["slow"])


async def test_one_keys_mails_in_order_others_alongside(queue: tuple[MailQueue, Recorder]) -> None:
    q, rec = queue
    rec.hold["a1"] = asyncio.Event()
    for subject, key in (("a1", "c_a"), ("a2", "c_a"), ("b1", "c_b"), ("a3", "c_a")):
        await q.put(mail(subject), key=key)
    await rec.until(lambda: rec.done == ["b1"])  # not behind c_a's held mail
    assert "a2" not in rec.calls
    rec.hold["a1"].set()
    await rec.until(lambda: len(rec.done) == 4)
    assert [s for s in rec.done if s.startswith("a")] == ["a1", "a2", "a3"]


async def test_a_retry_is_tried_again_and_keeps_the_order(
    queue: tuple[MailQueue, Recorder],
) -> None:
    q, rec = queue
    rec.plan["first"] = [MailRetry, MailRetry]
    await q.put(mail("first"), key="c_1")
    await q.put(mail("second"), key="c_1")
    await rec.until(lambda: len(rec.done) == 2)
    assert rec.done == ["first", "second"]
    assert rec.calls == ["first", "first", "first", "second"]


async def test_a_rejected_mail_is_not_tried_again(queue: tuple[MailQueue, Recorder]) -> None:
    q, rec = queue
    rec.plan["bad"] = [MailRejected]
    await q.put(mail("bad"), key="c_1")
    await q.put(mail("next"), key="c_1")
    await rec.until(lambda: rec.done == ["next"])
    assert rec.calls == ["bad", "next"]

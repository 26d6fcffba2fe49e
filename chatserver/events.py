"""Conversation events: the one door through which features follow what happens in chats.

Every change to a conversation made in this process is announced as a
``ConversationEvent`` to the listeners registered when the process is built
(``ConversationEvents.listen``): an entry appended (a visitor's or agent's
message, a note, a file, a system event such as "joined"), a conversation
opened, assigned, transferred, tagged, closed or rated.  The trigger engine is the
first listener (an answered greeting is routed, a chat that followed a
firing is counted); reports, webhooks, e-mail and search are the next.

The contract, for whoever writes a listener:

* **After the record.**  An event is emitted once its cause is in the Store
  and published to clients: a listener reads a consistent Store, and a
  message is never lost because a listener failed or fell behind.
* **Never on the relay path.**  ``emit`` only queues; each listener runs in
  its own task and awaits what it likes without slowing the chat.  A
  listener that raises is logged and gets the next event.  The one
  exception is an *inline* listener (``listen_inline``): a plain function
  that ``emit`` calls at once, for a listener that only notes the event in
  memory (the archive gathers a batch to write later), which saves a queue
  and a task wake-up per message; it must not block, and what it raises is
  logged and counted like any listener's failure.
* **In order, per process.**  A listener gets events in the order this
  process emitted them, one at a time; so per conversation in the order the
  operations here completed.  Entries carry their offset: a consumer that
  needs every entry of a conversation exactly once and in offset order
  across processes (webhooks) keeps its position by offset and reads the
  Store for what it lacks.
* **In memory, bounded.**  Each listener's queue holds ``capacity`` events;
  past that the newest are dropped and counted (``dropped``), with one
  warning line.  Events are not kept across a restart: a durable consumer
  rebuilds from the record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

from .tasks import stop
from .types import JSON, AgentId, ConversationId, Entry, SiteId, now

log = logging.getLogger("chatserver.events")


class EventKind(Enum):
    ENTRY = "entry"  # an entry was appended (``entry``)
    OPENED = "opened"  # a conversation was created (by a visitor's post or a trigger)
    ASSIGNED = "assigned"  # an agent joined it (``agent``)
    TRANSFERRED = "transferred"  # handed to an agent or department (``data``)
    CLOSED = "closed"  # closed (``data["by"]``)
    RATED = "rated"  # the visitor rated it (``entry``: the rating entry)
    TAGGED = "tagged"  # an agent changed its tags (``data``: add, remove, tags)


@dataclass(frozen=True, slots=True)
class ConversationEvent:
    kind: EventKind
    site_id: SiteId
    conv_id: ConversationId
    entry: Entry | None = None
    agent_id: AgentId | None = None
    data: JSON = field(default_factory=dict)
    at: float = field(default_factory=now)


Listener = Callable[[ConversationEvent], Awaitable[None]]
Inline = Callable[[ConversationEvent], None]  # called by ``emit`` itself (``listen_inline``)
# A listener's filter, called synchronously by ``emit``: only events it says
# yes to are queued (and wake the listener's task).  It must be cheap and not
# raise; a listener that needs few events (the trigger engine needs a
# visitor's post only while a greeting waits for it) saves a task wake-up per
# message this way.
Wants = Callable[[ConversationEvent], bool]


class _Subscriber:
    def __init__(self, name: str, listener: Listener, capacity: int, wants: Wants | None) -> None:
        self.name = name
        self.listener = listener
        self.wants = wants
        self.queue: asyncio.Queue[ConversationEvent] = asyncio.Queue(capacity)
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.failed = 0

    async def run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self.listener(event)
            except Exception:
                self.failed += 1
                log.exception("conversation event listener %r failed on %s", self.name, event.kind)
            finally:
                self.queue.task_done()


class ConversationEvents:
    """The listeners of this process and the queue in front of each."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._subscribers: list[_Subscriber] = []
        self._inline: list[tuple[str, Inline, Wants | None]] = []
        self._inline_failed: dict[str, int] = {}
        self._started = False

    def listen(self, name: str, listener: Listener, wants: Wants | None = None) -> None:
        """Register ``listener`` (at build time, before ``start``), for the events
        ``wants`` accepts (all without one)."""
        if self._started:
            raise RuntimeError("listeners are registered before the events start")
        self._subscribers.append(_Subscriber(name, listener, self.capacity, wants))

    def listen_inline(self, name: str, note: Inline, wants: Wants | None = None) -> None:
        """Register ``note``, called by ``emit`` itself for the events ``wants``
        accepts: for a listener that only notes an event in memory (it must not
        block; the module docstring)."""
        if self._started:
            raise RuntimeError("listeners are registered before the events start")
        self._inline.append((name, note, wants))
        self._inline_failed[name] = 0

    def start(self) -> None:
        self._started = True
        for sub in self._subscribers:
            sub.task = asyncio.create_task(sub.run(), name=f"chatserver-events-{sub.name}")

    async def close(self) -> None:
        """Stop the listeners; events still queued are dropped (they are not durable)."""
        for sub in self._subscribers:
            if sub.task is not None:
                await stop(sub.task)
                sub.task = None
        self._started = False

    def emit(self, event: ConversationEvent) -> None:
        """Queue ``event`` for every listener; never waits."""
        for name, note, wants in self._inline:
            if wants is not None and not wants(event):
                continue
            try:
                note(event)
            except Exception:
                self._inline_failed[name] += 1
                log.exception("conversation event listener %r failed on %s", name, event.kind)
        for sub in self._subscribers:
            if sub.wants is not None and not sub.wants(event):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.dropped += 1
                if sub.dropped == 1 or sub.dropped % 1000 == 0:
                    log.warning(
                        "conversation event listener %r is behind: %d events dropped",
                        sub.name,
                        sub.dropped,
                    )

    async def idle(self) -> None:
        """Wait until every listener has handled what was queued (for tests and shutdown)."""
        for sub in self._subscribers:
            await sub.queue.join()

    def stats(self) -> dict[str, dict[str, int]]:
        out = {
            sub.name: {"queued": sub.queue.qsize(), "dropped": sub.dropped, "failed": sub.failed}
            for sub in self._subscribers
        }
        for name, failed in self._inline_failed.items():
            out[name] = {"queued": 0, "dropped": 0, "failed": failed}
        return out

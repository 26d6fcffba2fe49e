"""The Broker seam: fan-out of events between server processes.

The local ``Hub`` owns this process's connections; the broker carries events
between processes and calls back into the hub (``handler``) for every event
on a channel this process subscribed to.

Semantics every implementation keeps:

* **Delivery** is at most once: an event published while a process is not
  subscribed, or lost in a broker outage, is not delivered later.  Nothing
  relies on the broker for durability; the Store is the record and clients
  recover from it by offset (see ``docs/protocol.md``, "Recovery").
* **Ordering**: events published to one channel by one process are handed to
  every subscriber in publish order.  No order holds across channels.
* **Handler**: called on the event loop, never concurrently with itself; it
  must not block (it only queues bytes for local connections).
* ``subscribe`` returns once events published afterwards will be delivered.
* Events are JSON-like maps; the handler must not mutate them (the memory
  broker hands the same object to every subscriber).
* **Re-subscription**: a broker that lost a subscription (its connection to
  Redis broke) and got it back calls ``resubscribed(channel)`` once events
  published afterwards will be delivered again, for every channel it held.
  Events published in between are lost; the caller catches up from the
  Store (``Hub._resubscribed``).  Called on the event loop like the handler;
  the memory broker never loses a subscription and never calls it.

Channels are ``conv:<id>``, ``visitor:<id>``, ``agent:<id>``, ``site:<id>`` and
``control`` (admin changes every process applies: ``chatserver.control``).
``cobrowse:<conv id>`` (a co-browse's live stream, ``cobrowse.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from .types import JSON

Handler = Callable[[str, JSON], None]
Resubscribed = Callable[[str], None]


class Broker(Protocol):
    async def start(self, handler: Handler, resubscribed: Resubscribed | None = None) -> None: ...

    async def close(self) -> None: ...

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def publish(self, channel: str, event: JSON) -> None: ...

    async def publish_many(self, items: Sequence[tuple[str, JSON]]) -> None:
        """Publish several ``(channel, event)`` pairs, in order, in one go
        (one round trip on Redis): for updates that go out side by side."""

    # -- publish without waiting (typing previews) -------------------------

    def publish_soon(self, channel: str, event: JSON) -> None:
        """Publish from code that cannot or need not wait (a timer callback).

        Delivery and per-channel order among ``publish_soon`` calls are as
        for ``publish``; nothing is raised: a failure is logged and the
        event lost (at most once).  For ephemeral events such as typing
        previews.  The memory broker calls the handler before returning
        (no task); the Redis broker publishes from a task."""

    # -- operations: readiness (docs/operations.md) ------------------------

    async def ping(self) -> None:
        """Return once the broker can carry events; raise if not (``/readyz``).

        Cheap, one round trip at most.  The Redis broker also fails it while
        its pub/sub connection is being re-established."""

"""The in-process Broker of the embedded backend: a set and a direct call."""

from __future__ import annotations

from collections.abc import Sequence

from .broker import Handler, Resubscribed
from .types import JSON


class MemoryBroker:
    """``Broker`` for one process: publish calls the handler synchronously."""

    def __init__(self) -> None:
        self._handler: Handler | None = None
        self._channels: set[str] = set()

    async def start(self, handler: Handler, resubscribed: Resubscribed | None = None) -> None:
        self._handler = handler  # subscriptions are never lost: ``resubscribed`` is not called

    async def close(self) -> None:
        self._channels.clear()
        self._handler = None

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, event: JSON) -> None:
        if self._handler is not None and channel in self._channels:
            self._handler(channel, event)

    async def publish_many(self, items: Sequence[tuple[str, JSON]]) -> None:
        for channel, event in items:
            await self.publish(channel, event)

    # -- publish without waiting (typing previews) -------------------------

    def publish_soon(self, channel: str, event: JSON) -> None:
        if self._handler is not None and channel in self._channels:
            self._handler(channel, event)

    # -- operations: readiness --------------------------------------------

    async def ping(self) -> None:
        """Always ready: the broker is this process."""

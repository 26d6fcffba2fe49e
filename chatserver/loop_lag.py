"""Event-loop lag: how late the loop runs a callback that was due.

``LoopLag`` keeps one timer: every ``interval`` seconds it asks the loop to
call it back and records by how much the callback came late into
``chatserver_event_loop_lag_seconds``.  A loop busy with a long
synchronous step (a big JSON dump, a slow regex, GC) delays every
connection's frames by as much; this is where it shows.  One wake-up per
interval (four a second by default), nothing per message.
"""

from __future__ import annotations

import asyncio

from .histogram import Histogram

INTERVAL = 0.25  # seconds between two measurements


class LoopLag:
    """Measures the running loop's lag into ``histogram`` while started."""

    def __init__(self, histogram: Histogram, interval: float = INTERVAL) -> None:
        self.histogram = histogram
        self.interval = interval
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._schedule()

    async def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        assert self._loop is not None
        self._due = self._loop.time() + self.interval
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        self.histogram.observe(max(0.0, self._loop.time() - self._due))
        self._schedule()

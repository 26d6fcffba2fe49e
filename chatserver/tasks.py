"""Stopping background tasks without hiding the caller's own cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

RECANCEL = 1.0  # seconds between cancellations of a task that has not ended


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended.

    Whatever the task raised on its way out is retrieved and dropped (it is
    being stopped), but if the caller itself is cancelled while it waits,
    that cancellation propagates: ``suppress(BaseException)`` around the
    ``await`` would swallow it and let the caller run on, so that a shutdown
    waiting for the caller (``asyncio.run``'s, a test runner's) never ends.

    A task whose code swallows a cancellation (a library that catches
    ``CancelledError`` somewhere below a loop) is cancelled again every
    ``RECANCEL`` seconds until it ends: a background loop such as a Redis
    heartbeat once kept a shutdown waiting for ever that way.
    """
    while not task.done():
        task.cancel()
        # ``wait`` does not raise what the task raised; it does raise the
        # caller's CancelledError.  (Not for a done task: ``wait`` would
        # schedule a callback on the task's loop, which may be closed.)
        await asyncio.wait([task], timeout=RECANCEL)
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" log

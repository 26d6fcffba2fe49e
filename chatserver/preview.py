"""Typing-preview coalescing for one visitor connection.

A visitor's widget may send a ``typing`` frame per keystroke; agents get at
most one ``preview`` per ``interval`` (0.1 s by default), and always the
newest draft (trailing edge): the first keystroke after a pause goes out at
once, the rest of a burst waits for the interval and only the latest text is
sent.  Drafts are never stored.  ``cancel`` drops a pending draft, as a sent
message makes it stale.  No task per visitor: a pending draft is one timer
handle on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .types import ConversationId

Emit = Callable[[ConversationId, str], None]


class Preview:
    __slots__ = ("_emit", "conv_id", "handle", "interval", "last_sent", "text")

    def __init__(self, interval: float, emit: Emit) -> None:
        self.interval = interval
        self._emit = emit
        self.last_sent = -1e9
        self.text: str | None = None
        self.conv_id: ConversationId | None = None
        self.handle: asyncio.TimerHandle | None = None

    def typed(self, conv_id: ConversationId, draft: str) -> None:
        """The visitor's draft in ``conv_id`` is now ``draft``."""
        if self.conv_id != conv_id:
            self.cancel()
            self.conv_id = conv_id
        self.text = draft
        if self.handle is not None:
            return  # a flush is scheduled and will send the newest draft
        loop = asyncio.get_running_loop()
        wait = self.last_sent + self.interval - loop.time()
        if wait <= 0:
            self.flush()
        else:
            self.handle = loop.call_later(wait, self.flush)

    def flush(self) -> None:
        self.handle = None
        text, self.text = self.text, None
        if text is None or self.conv_id is None:
            return
        self.last_sent = asyncio.get_running_loop().time()
        self._emit(self.conv_id, text)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.text = None

"""One client connection as the hub sees it: identity, outbox, subscriptions.

The outbox is bounded in bytes: a client that stops reading is closed with
``SLOW_CONSUMER`` instead of growing the server's memory.  ``push`` never
blocks and never raises, so fan-out to thousands of sessions is a loop of
cheap appends.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from .errors import CloseCode, short_reason
from .protocol import Connection
from .types import JSON, Agent, ClientKind, ConversationId, Site


class Follow:
    """A session's view of one conversation's entries.

    ``last`` is the highest offset the client has been given or told about;
    live entries at or below it are duplicates and dropped.  While
    ``buffer`` is a list (a position or history read is in flight) live
    entries wait there and are flushed, in order, right after the read.
    """

    __slots__ = ("buffer", "last")

    def __init__(self) -> None:
        self.last = 0
        self.buffer: list[tuple[int, JSON]] | None = []


class Session:
    __slots__ = (
        "__weakref__",
        "agent",
        "channels",
        "close_code",
        "close_reason",
        "conn",
        "conv_id",
        "dept",
        "follows",
        "kind",
        "max_outbox",
        "outbox",
        "outbox_bytes",
        "preview",
        "remote",
        "site",
        "visitor_id",
        "wake",
    )

    def __init__(self, conn: Connection, max_outbox: int, remote: str = "") -> None:
        self.conn = conn
        self.kind: ClientKind | None = None
        self.site: Site | None = None
        self.agent: Agent | None = None
        self.visitor_id: str | None = None
        self.conv_id: ConversationId | None = None  # a visitor's open conversation
        self.dept: str | None = None  # a visitor's department from hello
        self.follows: dict[ConversationId, Follow] = {}
        self.channels: set[str] = set()
        self.outbox: deque[bytes | str] = deque()
        self.outbox_bytes = 0
        self.max_outbox = max_outbox
        self.wake = asyncio.Event()
        self.close_code: CloseCode | None = None
        self.close_reason = ""
        self.preview: Any = None  # the hub's typing-preview coalescer state
        self.remote = remote

    @property
    def author_id(self) -> str:
        if self.agent is not None:
            return self.agent.id
        assert self.visitor_id is not None
        return self.visitor_id

    def send(self, frame: JSON) -> None:
        self.push(self.conn.encode(frame))

    def push(self, data: bytes | str) -> None:
        if self.close_code is not None:
            return
        self.outbox_bytes += len(data)
        if self.outbox_bytes > self.max_outbox:
            self.outbox.clear()
            self.outbox_bytes = 0
            self.close(CloseCode.SLOW_CONSUMER, "client is not reading")
            return
        self.outbox.append(data)
        self.wake.set()

    def close(self, code: CloseCode, reason: str) -> None:
        """Ask the writer to flush what is queued and close with ``code``."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = short_reason(reason)
            self.conn.close()
            self.wake.set()

    def deliver(self, conv_id: ConversationId, offset: int, data: JSON) -> bool:
        """Whether a live entry at ``offset`` should go out now (see ``Follow``)."""
        follow = self.follows.get(conv_id)
        if follow is None:
            return True
        if follow.buffer is not None:
            follow.buffer.append((offset, data))
            return False
        if offset <= follow.last:
            return False
        follow.last = offset
        return True

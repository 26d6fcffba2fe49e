"""One client connection as the hub sees it: identity, outbox, subscriptions.

``push`` never blocks and never raises, so fan-out to thousands of sessions
is a loop of cheap calls.  A frame goes straight to the socket through
``write`` when nothing is queued and the socket can take it (the common
case); otherwise it waits in the outbox and ``flush`` asks the connection's
owner (``web/ws.py``) to drain it.  The outbox is bounded in bytes: a client
that stops reading is closed with ``SLOW_CONSUMER`` instead of growing the
server's memory.  That close drops the outbox and goes through the owner's
``abort`` when it has one, so the close frame is the next frame on the
socket instead of waiting behind frames the client is not reading.  The
outbox is created on first use, so an idle connection has none.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from .errors import CloseCode, short_reason
from .logins import Grant
from .preview import Preview
from .protocol.codec import Connection
from .types import JSON, Agent, ClientKind, ConversationId, Site


class Follow:
    """A session's view of one conversation's entries.

    ``last`` is the highest offset the client has been given or told about;
    live entries at or below it are duplicates and dropped.  While
    ``buffer`` is a list (a position or history read is in flight) live
    entries wait there and are flushed, in order, right after the read.
    ``ready`` turns true once the position is read (``Hub.follow``); a
    ``history`` request arriving before waits for it in ``waiters``.
    ``stale`` is set when the broker lost the conversation's channel for a
    while: entries past ``last`` may have been published unseen, and the hub
    reads them from the store (``Hub._catch_up``) once no read is in flight.
    """

    __slots__ = ("buffer", "last", "ready", "stale", "waiters")

    def __init__(self) -> None:
        self.last = 0
        self.stale = False
        self.buffer: list[tuple[int, JSON, bool]] | None = []
        self.ready = False
        self.waiters: list[asyncio.Future[None]] | None = None

    async def positioned(self) -> None:
        """Return once the position is read (at once if it is)."""
        if self.ready:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.waiters is None:
            self.waiters = []
        self.waiters.append(waiter)
        await waiter

    def set_ready(self) -> None:
        """The position is read (or will never be): wake ``positioned`` waiters."""
        self.ready = True
        waiters, self.waiters = self.waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)


class Session:
    __slots__ = (
        "__weakref__",
        "abort",
        "agent",
        "agents_online",
        "channels",
        "close_code",
        "close_reason",
        "conn",
        "conv_id",
        "dept",
        "draining",
        "flush",
        "follows",
        "frame_at",
        "grant",
        "kind",
        "max_outbox",
        "outbox",
        "outbox_bytes",
        "presence_info",
        "present",
        "preview",
        "remote",
        "site",
        "stored",
        "viewing",
        "visitor_id",
        "write",
    )

    def __init__(self, conn: Connection, max_outbox: int, remote: str = "") -> None:
        self.conn = conn
        self.kind: ClientKind | None = None
        self.site: Site | None = None
        self.agent: Agent | None = None
        self.grant: Grant | None = None  # an agent's sign-in (logins.py), set by hello
        self.visitor_id: str | None = None
        self.stored = False  # whether the visitor has a row in the Store (visitors.py)
        self.conv_id: ConversationId | None = None  # a visitor's open conversation
        self.dept: str | None = None  # a visitor's department from hello
        self.follows: dict[ConversationId, Follow] = {}
        self.channels: set[str] = set()
        self.outbox: deque[bytes | str] | None = None  # created on first backlog
        self.outbox_bytes = 0
        self.max_outbox = max_outbox
        # Set by the connection's owner: ``write(data)`` sends now or returns
        # False (socket busy); ``flush()`` starts draining the outbox and, once
        # ``close_code`` is set, closing.  ``draining`` is True from ``flush()``
        # until the owner has emptied the outbox.
        self.write: Callable[[bytes | str], bool] | None = None
        self.flush: Callable[[], None] = _no_flush
        # ``abort(code, reason)`` closes at once, dropping what is not sent
        # yet; False if it could not (the owner then drains and closes).
        self.abort: Callable[[int, str], bool] | None = None
        self.draining = False
        self.close_code: CloseCode | None = None
        self.close_reason = ""
        self.preview: Preview | None = None  # a visitor's typing-preview coalescer
        self.present = False  # registered in the site's visitor (or agent) presence
        self.viewing: dict[ConversationId, bool] = {}  # an agent's viewed conversations: typing?
        self.presence_info: JSON = {}  # what presence shows of this visitor (since, page)
        self.remote = remote
        # ``time.monotonic()`` when the frame being handled was read (web/ws.py):
        # where ``chatserver_frame_to_ack_seconds`` starts.
        self.frame_at = 0.0
        # A visitor's count of online agents as last told (welcome, ``agents``):
        # an ``agents`` frame repeating it is not sent (Hub._fan_out).
        self.agents_online: int | None = None

    @property
    def author_id(self) -> str:
        if self.agent is not None:
            return self.agent.id
        assert self.visitor_id is not None
        return self.visitor_id

    def send(self, frame: Mapping[str, Any]) -> None:
        self.push(self.conn.encode(frame))

    def push(self, data: bytes | str) -> None:
        if self.close_code is not None:
            return
        if not self.draining and self.write is not None and self.write(data):
            return  # nothing queued before it, and the socket took it
        self.outbox_bytes += len(data)
        if self.outbox_bytes > self.max_outbox:
            if self.outbox is not None:
                self.outbox.clear()
            self.outbox_bytes = 0
            self.close(CloseCode.SLOW_CONSUMER, "client is not reading", now=True)
            return
        if self.outbox is None:
            self.outbox = deque()
        self.outbox.append(data)
        if not self.draining:
            self.draining = True
            self.flush()

    def close(self, code: CloseCode, reason: str, now: bool = False) -> None:
        """Ask the owner to send what is queued and close with ``code``.

        With ``now`` the outbox is dropped and the owner's ``abort`` (if
        any) sends the close frame at once, ahead of the frames the socket
        could not take yet: for a client that stopped reading.
        """
        if self.close_code is None:
            self.close_code = code
            self.close_reason = short_reason(reason)
            self.conn.close()
            if now:
                if self.outbox is not None:
                    self.outbox.clear()
                self.outbox_bytes = 0
                if self.abort is not None and self.abort(int(code), self.close_reason):
                    self.draining = True  # nothing more goes out
                    return
            if not self.draining:
                self.draining = True
                self.flush()

    def detach(self) -> None:
        """The connection is gone: drop the owner's ``write`` and ``flush``.

        They refer back to this session; without them a closed session is
        freed by reference counting instead of waiting for a full collection.
        """
        self.write = None
        self.flush = _no_flush
        self.abort = None

    def deliver(self, conv_id: ConversationId, offset: int, frame: JSON, visible: bool) -> Verdict:
        """What to do with a live entry at ``offset`` (see ``Follow``).

        ``visible`` says whether this session may see the entry at all (a
        visitor never sees notes); invisible entries still advance ``last``
        so they are not taken for gaps.
        """
        follow = self.follows.get(conv_id)
        if follow is None:
            return Verdict.SEND if visible else Verdict.SKIP
        if follow.buffer is not None:
            follow.buffer.append((offset, frame, visible))
            return Verdict.SKIP
        if offset <= follow.last:
            return Verdict.SKIP
        if offset > follow.last + 1:
            # Entries are missing (lost or reordered between processes): hold
            # this one; the hub reads the hole from the store, then flushes.
            follow.buffer = [(offset, frame, visible)]
            return Verdict.GAP
        follow.last = offset
        return Verdict.SEND if visible else Verdict.SKIP


def _no_flush() -> None:
    """A session nobody drains (tests, or before the owner set ``flush``)."""


class Verdict(Enum):
    SEND = "send"
    SKIP = "skip"
    GAP = "gap"

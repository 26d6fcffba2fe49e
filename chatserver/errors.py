"""Errors: one exception root, error codes and close codes as data.

Exception tree::

    ChatError                 root of everything chatserver raises on purpose
    ├── FrameError            a client frame is unusable; carries an ErrorCode
    │   (raised by the sans-I/O protocol and by the hub's request handlers and
    │   turned into an ``error`` frame; the connection stays open)
    ├── ConnectionClosing     the connection must close; carries a CloseCode
    └── StoreError            the durable store refused or failed an operation
        ├── NotFound          a row the caller named does not exist
        └── Closed            the conversation is closed (``append(open_only=True)``)

Client-facing failures are values, never tracebacks.  ``ErrorCode`` values are
sent in ``error`` frames and split into ranges:

* 100-199  retry: a temporary condition, the same frame may succeed later;
* 200-299  request: the frame is wrong, sending it again will fail again.

``CloseCode`` values are WebSocket close codes in the application range:

* 4000-4099  reconnect: reconnect with backoff and resume;
* 4100-4199  terminal: do not reconnect until something is fixed.

``docs/protocol.md`` documents every code; a test keeps the two in step.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Codes of ``error`` frames."""

    # 100-199: retry later
    INTERNAL = 100
    UNAVAILABLE = 101
    RATE_LIMITED = 102
    QUOTA_EXCEEDED = 103
    # 200-299: fix the request
    BAD_FRAME = 200
    FRAME_TOO_LARGE = 201
    UNKNOWN_TYPE = 202
    INVALID_FIELD = 203
    NOT_ALLOWED = 204
    NOT_FOUND = 205
    FORBIDDEN = 206
    CONFLICT = 207
    TOO_LONG = 208

    @property
    def retryable(self) -> bool:
        return 100 <= self.value < 200


class CloseCode(IntEnum):
    """WebSocket close codes used by the hub (RFC 6455 application range)."""

    # 4000-4099: reconnect with backoff
    INTERNAL = 4001
    HELLO_TIMEOUT = 4002
    SLOW_CONSUMER = 4003
    TOO_MANY_ERRORS = 4004
    RATE_LIMITED = 4005
    UNAVAILABLE = 4006  # storage failed during hello
    ERASED = 4007  # the visitor was erased on request: reconnect as a new visitor
    # 4100-4199: terminal
    PROTOCOL_VIOLATION = 4100
    UNSUPPORTED_VERSION = 4101
    UNAUTHORIZED = 4102
    UNKNOWN_SITE = 4103
    ORIGIN_NOT_ALLOWED = 4104
    ACCOUNT_DISABLED = 4105
    SESSION_ENDED = 4106

    @property
    def reconnect(self) -> bool:
        return 4000 <= self.value < 4100


def short_reason(reason: str, limit: int = 120) -> str:
    """Cut a close reason to fit a WebSocket close frame (123 bytes at most)."""
    data = reason.encode()
    if len(data) <= limit:
        return reason
    return data[: limit - 3].decode(errors="ignore") + "..."


class ChatError(Exception):
    """Root of every exception chatserver raises on purpose."""


class FrameError(ChatError):
    """A client frame cannot be served; becomes an ``error`` frame."""

    def __init__(self, code: ErrorCode, message: str, *, rid: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.rid = rid


class ConnectionClosing(ChatError):
    """The connection must be closed with ``code``."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = short_reason(reason)


class StoreError(ChatError):
    """The durable store refused or failed an operation."""


class NotFound(StoreError):
    """The named row does not exist."""


class Closed(StoreError):
    """The conversation is closed and the write needs an open one."""


class NotMember(StoreError):
    """The writer is not one of the conversation's agents (``Store.append(member=...)``).

    ``site_id`` is the conversation's site, so that a caller can answer a
    stranger from another site as if the conversation did not exist.
    """

    def __init__(self, message: str, site_id: str) -> None:
        super().__init__(message)
        self.site_id = site_id

"""The sans-I/O protocol core: bytes in, frames out; frames in, bytes out.

``Connection`` holds one client connection's protocol state and nothing that
does I/O: no sockets, no asyncio, no clock of its own (callers pass ``now``).
The WebSocket endpoint in ``web/ws.py`` only moves bytes between the socket and
this object, which makes the whole protocol testable by feeding raw bytes.

Codecs: binary WebSocket messages are msgpack, text messages are JSON.  The
server answers in the codec the client negotiated with the WebSocket
subprotocol (``chatserver.msgpack``, the default, or ``chatserver.json``).

State machine::

    AWAITING_HELLO --accept()--> OPEN --close()--> CLOSING --closed()--> CLOSED
          \\____________________close()___________/

``receive`` returns a validated ``Frame``, raises ``FrameError`` for a frame
the client should be told about (the connection stays usable), or raises
``ConnectionClosing`` when the connection must end.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from enum import Enum
from typing import Any

import msgpack
import msgspec

from ..errors import CloseCode, ConnectionClosing, ErrorCode, FrameError
from ..types import ClientKind, ConnState
from . import wire
from .frames import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    STREAM_FRAMES,
    Frame,
    Limits,
    finish,
    validate,
)
from .structs import FAST


class Codec(Enum):
    MSGPACK = "chatserver.msgpack"
    JSON = "chatserver.json"

    @classmethod
    def negotiate(cls, offered: list[str]) -> Codec | None:
        """Pick the codec for a handshake's offered subprotocols.

        Returns ``None`` when the client offered none (msgpack is used and no
        subprotocol is echoed); prefers msgpack when both are offered.
        """
        for codec in (cls.MSGPACK, cls.JSON):
            if codec.value in offered:
                return codec
        return None


_UNPACK_LIMITS: dict[str, int] = {
    "max_str_len": MAX_FRAME_BYTES,
    "max_bin_len": 0,
    "max_ext_len": 0,
    "max_array_len": 1024,
    "max_map_len": 256,
}


_decode_json = msgspec.json.Decoder().decode


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:32]} is beyond a float64")
    return value


# ``json`` as RFC 8259 has it: no ``NaN``/``Infinity`` literals, and no number
# that only a float infinity could hold (``1e400``).
_decode_json_strict = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite).decode


def _all_finite(value: Any) -> bool:
    """Whether no float in a decoded msgpack value is NaN or infinite."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def decode(data: bytes | str) -> Any:
    """Decode one WebSocket message; raise ``FrameError(BAD_FRAME)`` if unreadable.

    JSON is read with ``msgspec`` (a few times faster than ``json`` on the
    escaped text of a recording batch's ``data``); what it refuses is read
    again with ``json``, which decides, so the frames accepted and their
    values are ``json.loads``'s (it also takes lone-surrogate escapes, which
    the frame checks then judge) except for numbers: ``NaN``, ``Infinity``
    and ``-Infinity`` are not JSON (RFC 8259 section 6) and a number beyond
    a float64 (``1e400``) has no value here, so such a text is not a valid
    JSON frame.  A msgpack frame holding a NaN or infinite float is refused
    the same way: frames carry JSON's values in either codec (a float
    marker, ``0xca`` or ``0xcb``, in the bytes is what makes the check run).
    """
    try:
        if isinstance(data, bytes):
            value = msgpack.unpackb(data, raw=False, strict_map_key=True, **_UNPACK_LIMITS)
            if (b"\xcb" in data or b"\xca" in data) and not _all_finite(value):
                raise FrameError(
                    ErrorCode.BAD_FRAME, "not a valid msgpack frame: a number is NaN or infinite"
                )
            return value
        try:
            return _decode_json(data)
        except (msgspec.DecodeError, RecursionError):
            return _decode_json_strict(data)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        kind = "msgpack" if isinstance(data, bytes) else "JSON"
        raise FrameError(ErrorCode.BAD_FRAME, f"not a valid {kind} frame") from exc


def encode(codec: Codec, frame: Mapping[str, Any]) -> bytes | str:
    if codec is Codec.MSGPACK:
        return msgpack.packb(frame, use_bin_type=True)  # type: ignore[no-any-return]
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def frame_size(data: bytes | str, limit: int) -> int:
    """Size in bytes of a WebSocket message (text is measured as UTF-8).

    Text of at most ``limit // 4`` characters cannot exceed ``limit`` bytes,
    so most frames are measured without encoding them.
    """
    if isinstance(data, bytes) or len(data) * 4 <= limit:
        return len(data)
    return len(data.encode("utf-8", "surrogatepass"))


def error_frame(code: ErrorCode, message: str, rid: int | None = None) -> wire.ErrorFrame:
    return wire.error(int(code), message, rid)


class TokenBucket:
    """Classic token bucket; ``now`` comes from the caller."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def retry_after(self) -> float:
        return max(0.0, (1.0 - self.tokens) / self.rate)


class Connection:
    """Protocol state of one client connection."""

    __slots__ = ("_bucket", "_stream_bucket", "codec", "errors", "kind", "limits", "state")

    def __init__(self, codec: Codec, limits: Limits, now: float) -> None:
        self.codec = codec
        self.limits = limits
        self.state = ConnState.AWAITING_HELLO
        self.kind: ClientKind | None = None
        self.errors = 0
        self._bucket = TokenBucket(limits.rate_per_second, limits.rate_burst, now)
        self._stream_bucket = TokenBucket(
            limits.stream_rate_per_second, limits.stream_rate_burst, now
        )

    # -- inbound ---------------------------------------------------------

    def receive(self, data: bytes | str, now: float) -> Frame:
        """Turn one WebSocket message into a validated frame.

        Before ``accept`` only a ``hello`` frame is acceptable; anything else
        (or a hello that does not parse) closes the connection.
        """
        if self.state is not ConnState.AWAITING_HELLO and self.state is not ConnState.OPEN:
            raise ConnectionClosing(
                CloseCode.PROTOCOL_VIOLATION, f"connection is {self.state.value}"
            )
        if self.state is ConnState.AWAITING_HELLO:
            return self._receive_hello(data)
        try:
            # Every frame takes a token, bad ones too; co-browse stream frames
            # (``STREAM_FRAMES``) from a bucket of their own, so a running
            # co-browse neither starves the chat nor is starved by it.
            fits = frame_size(data, self.limits.max_frame_bytes) <= self.limits.max_frame_bytes
            if fits:
                # The typed decoders (structs.py) accept the common frames in
                # one step; what they do not accept is decided below.
                assert self.kind is not None
                fast = FAST[self.kind].decode(data)
                if fast is not None:
                    ftype, rid, values = fast
                    stream = ftype in STREAM_FRAMES
                    bucket = self._stream_bucket if stream else self._bucket
                    if not bucket.take(now):
                        raise FrameError(
                            ErrorCode.RATE_LIMITED,
                            f"rate limited, retry in {bucket.retry_after():.2f}s",
                        )
                    return finish(self.kind, ftype, rid, values)  # the checks across fields
            raw: Any = None
            bad: FrameError | None = None
            if fits:
                try:
                    raw = decode(data)
                except FrameError as exc:
                    bad = exc
            kind = raw.get("t") if isinstance(raw, dict) else None
            stream = isinstance(kind, str) and kind in STREAM_FRAMES
            bucket = self._stream_bucket if stream else self._bucket
            if not bucket.take(now):
                raise FrameError(
                    ErrorCode.RATE_LIMITED,
                    f"rate limited, retry in {bucket.retry_after():.2f}s",
                )
            if not fits:
                raise FrameError(
                    ErrorCode.FRAME_TOO_LARGE,
                    f"frame larger than {self.limits.max_frame_bytes} bytes",
                )
            if bad is not None:
                raise bad
            assert self.kind is not None
            frame = validate(self.kind, raw)
            if frame.type == "hello":
                raise FrameError(ErrorCode.NOT_ALLOWED, "already said hello", rid=frame.rid)
            return frame
        except FrameError:
            self.count_error()
            raise

    def count_error(self) -> None:
        """Count one client mistake; too many close the connection."""
        self.errors += 1
        if self.errors > self.limits.max_errors:
            self.state = ConnState.CLOSING
            raise ConnectionClosing(CloseCode.TOO_MANY_ERRORS, "too many bad frames")

    def _receive_hello(self, data: bytes | str) -> Frame:
        if frame_size(data, self.limits.max_frame_bytes) > self.limits.max_frame_bytes:
            raise self._violation("hello frame too large")
        try:
            raw = decode(data)
        except FrameError as exc:
            raise self._violation(exc.message) from exc
        if not isinstance(raw, dict) or raw.get("t") != "hello":
            raise self._violation("the first frame must be hello")
        version = raw.get("v")
        if version != PROTOCOL_VERSION:
            self.state = ConnState.CLOSING
            raise ConnectionClosing(
                CloseCode.UNSUPPORTED_VERSION,
                f"protocol version {version!r} unsupported, this server speaks {PROTOCOL_VERSION}",
            )
        kind_name = raw.get("kind")
        kind = next((k for k in ClientKind if k.value == kind_name), None)
        if kind is None:
            raise self._violation("hello 'kind' must be 'visitor' or 'agent'")
        try:
            return validate(kind, raw)
        except FrameError as exc:
            raise self._violation(f"bad hello: {exc.message}") from exc

    def _violation(self, reason: str) -> ConnectionClosing:
        self.state = ConnState.CLOSING
        return ConnectionClosing(CloseCode.PROTOCOL_VIOLATION, reason)

    # -- transitions -----------------------------------------------------

    def accept(self, kind: ClientKind) -> None:
        """The hub accepted the hello: the connection is open as ``kind``."""
        self._expect(ConnState.AWAITING_HELLO)
        self.kind = kind
        self.state = ConnState.OPEN

    def close(self) -> None:
        if self.state in (ConnState.AWAITING_HELLO, ConnState.OPEN):
            self.state = ConnState.CLOSING

    def closed(self) -> None:
        self.state = ConnState.CLOSED

    def _expect(self, state: ConnState) -> None:
        if self.state is not state:
            raise RuntimeError(f"expected connection state {state.value}, got {self.state.value}")

    # -- outbound --------------------------------------------------------

    def encode(self, frame: Mapping[str, Any]) -> bytes | str:
        return encode(self.codec, frame)

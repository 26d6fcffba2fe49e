"""A lean WebSocket client for the load generator, on an asyncio ``BufferedProtocol``.

The load generator must stay cheaper than the servers it measures, so it
does not use the ``websockets.asyncio`` client (a reader task, a queue and
an ``await`` per message), nor, once connected, websockets' sans-I/O
parser and serializer (a generator-based reader and a ``Frame`` object per
message).  ``WSClient`` splits the work:

* **websockets' ``ClientProtocol``** does the opening handshake, and every
  frame off the fast path below: control frames (a ping is answered with a
  pong, a close frame gets the closing handshake and sets ``close_code``),
  fragmented messages, anything malformed, and everything once the
  connection is no longer OPEN.  Such frames are fed to it whole, so its
  parser stays aligned with the stream.
* **The fast path** parses the server's frames itself: a complete unmasked
  text or binary frame with FIN set and no RSV bits (7, 16 or 64-bit
  length) goes straight to the message callback, with the time the bytes
  arrived.  Text payloads are not checked for UTF-8 here (the links decode
  them anyway).  Outgoing messages are built directly: header, a 4-byte
  mask taken from an ``os.urandom`` pool, payload masked with websockets'
  C ``apply_mask`` (its pure-Python one if the extension is missing).

Bytes are read with ``recv_into`` one shared buffer per process (the event
loop calls ``get_buffer`` and ``buffer_updated`` back to back, so one buffer
serves every connection): no 256 KiB ``bytes`` per read, which costs three
extra syscalls (``mmap``, ``mremap``, ``munmap``) per read with glibc.

permessage-deflate is never offered (``extensions=None``).  ``rcvbuf`` sets a
small ``SO_RCVBUF`` before connecting, so that a client that stops reading
fills the server's buffers quickly (the slow-consumer scenario).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import cast

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

# on_message(data, is_text, arrival_time); on_close(code or None)
MessageHandler = Callable[[bytes, bool, float], None]
CloseHandler = Callable[[int | None], None]

_TEXT, _BINARY, _CONT, _CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.CLOSE
_OPEN = State.OPEN

# First header byte of the frames on the fast path: FIN, no RSV bits, opcode.
FIN_TEXT = 0x81
FIN_BINARY = 0x82

_HEAD_SHORT = struct.Struct("!BB").pack
_HEAD_16 = struct.Struct("!BBH").pack
_HEAD_64 = struct.Struct("!BBQ").pack

# One receive buffer for every connection of the process (see the module docstring).
_RECV_SIZE = 256 * 1024
_recv_view = memoryview(bytearray(_RECV_SIZE))

# Masks come from a pool of random bytes: one getrandom() per 1024 frames.
_MASK_POOL_SIZE = 4096
_mask_pool = b""
_mask_pos = _MASK_POOL_SIZE


def _mask() -> bytes:
    global _mask_pool, _mask_pos
    if _mask_pos >= _MASK_POOL_SIZE:
        _mask_pool, _mask_pos = os.urandom(_MASK_POOL_SIZE), 0
    _mask_pos += 4
    return _mask_pool[_mask_pos - 4 : _mask_pos]


def client_frame(first: int, payload: bytes) -> bytes:
    """A masked client frame: header byte ``first`` (FIN, RSV, opcode), then ``payload``."""
    n = len(payload)
    if n < 126:
        head = _HEAD_SHORT(first, 0x80 | n)
    elif n < 0x10000:
        head = _HEAD_16(first, 0xFE, n)
    else:
        head = _HEAD_64(first, 0xFF, n)
    mask = _mask()
    return head + mask + apply_mask(payload, mask)


def frame_size(data: bytes, i: int) -> int | None:
    """Length of the frame starting at ``data[i]`` (header included), ``None`` if incomplete."""
    end = len(data)
    if end - i < 2:
        return None
    b1 = data[i + 1]
    n = b1 & 0x7F
    head = 6 if b1 & 0x80 else 2
    if n == 126:
        if end - i < 4:
            return None
        n = int.from_bytes(data[i + 2 : i + 4], "big")
        head += 2
    elif n == 127:
        if end - i < 10:
            return None
        n = int.from_bytes(data[i + 2 : i + 10], "big")
        head += 8
    return head + n


class HandshakeError(ConnectionError):
    pass


class WSClient(asyncio.BufferedProtocol):
    """One client connection; see the module docstring."""

    __slots__ = (
        "_buf",
        "_early",
        "_handshaking",
        "_lean",
        "_on_message",
        "_part_text",
        "_parts",
        "_ready",
        "close_code",
        "closed",
        "on_close",
        "proto",
        "subprotocol",
        "transport",
    )

    def __init__(self, url: str, subprotocols: list[str] | None = None) -> None:
        self.proto = ClientProtocol(
            parse_uri(url),
            subprotocols=[Subprotocol(s) for s in subprotocols] if subprotocols else None,
            extensions=None,
            max_size=None,
        )
        self.transport: asyncio.Transport | None = None
        self._on_message: MessageHandler | None = None
        self._early: list[tuple[bytes, bool, float]] = []
        self.on_close: CloseHandler | None = None
        self.subprotocol: str | None = None
        self.close_code: int | None = None
        self.closed = False
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parts: list[bytes] = []
        self._part_text = False
        self._buf = b""  # received bytes not yet parsed (a partial frame or response)
        self._handshaking = True  # until the HTTP response has been handed to ``proto``
        self._lean = False  # fast path on: handshake done, connection OPEN

    @classmethod
    async def connect(
        cls,
        url: str,
        subprotocols: list[str] | None = None,
        *,
        timeout: float = 15.0,
        rcvbuf: int | None = None,
    ) -> WSClient:
        """Open the TCP connection and finish the WebSocket handshake."""
        loop = asyncio.get_running_loop()
        client = cls(url, subprotocols)
        uri = client.proto.uri
        sock = None
        if rcvbuf is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, (uri.host, uri.port)), timeout)
            except BaseException:
                sock.close()
                raise
            await loop.create_connection(lambda: client, sock=sock)
        else:
            await asyncio.wait_for(
                loop.create_connection(lambda: client, uri.host, uri.port), timeout
            )
        try:
            await asyncio.wait_for(asyncio.shield(client._ready), timeout)
        except BaseException:
            client.abort()
            raise
        return client

    @property
    def on_message(self) -> MessageHandler | None:
        return self._on_message

    @on_message.setter
    def on_message(self, handler: MessageHandler | None) -> None:
        """Set the handler; messages that arrived before it are delivered now.

        The server's first message can arrive in the same TCP segment as
        its handshake response, before the caller had a chance to set one.
        """
        self._on_message = handler
        while handler is not None and self._early and self._on_message is handler:
            handler(*self._early.pop(0))

    def _deliver(self, data: bytes, is_text: bool, now: float) -> None:
        if self._on_message is not None:
            self._on_message(data, is_text, now)
        else:
            self._early.append((data, is_text, now))

    # -- asyncio.Protocol ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.proto.send_request(self.proto.connect())
        self._flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _recv_view

    def buffer_updated(self, nbytes: int) -> None:
        now = time.monotonic()
        data = _recv_view[:nbytes].tobytes()
        if self._buf:
            data, self._buf = self._buf + data, b""
        if self._lean:
            self._parse(data, now)
        elif self._handshaking:
            self._handshake(data, now)
        else:
            self._feed(data, now)

    def _parse(self, data: bytes, now: float) -> None:
        """The fast path over ``data``; keeps a trailing partial frame in ``_buf``."""
        i, end = 0, len(data)
        while end - i >= 2:
            if not self._lean:  # a close frame, or a callback closed the connection
                self._feed(data[i:], now)
                return
            b0, n = data[i], data[i + 1]
            if n < 126:
                start = i + 2
            elif n == 126:
                if end - i < 4:
                    break
                n = (data[i + 2] << 8) | data[i + 3]
                start = i + 4
            elif n == 127:
                if end - i < 10:
                    break
                n = int.from_bytes(data[i + 2 : i + 10], "big")
                start = i + 10
            else:  # masked by the server: a protocol error, websockets fails the connection
                size = frame_size(data, i)
                if size is None or i + size > end:
                    break
                self._feed(data[i : i + size], now)
                i += size
                continue
            stop = start + n
            if stop > end:
                break
            if (b0 == FIN_BINARY or b0 == FIN_TEXT) and not self._parts:  # noqa: SIM109
                self._deliver(data[start:stop], b0 == FIN_TEXT, now)
            else:  # control frame, fragment, RSV bits: websockets handles it
                self._feed(data[i:stop], now)
            i = stop
        if i < end:
            self._buf = data[i:]

    def _handshake(self, data: bytes, now: float) -> None:
        """Hand the HTTP response, and only it, to ``proto``; then parse the rest lean."""
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            self._buf = data
            return
        self._handshaking = False
        head_end += 4
        self._feed(data[:head_end], now)
        if self.proto.state is _OPEN and not self.closed:
            self._lean = True
            self._parse(data[head_end:], now)
        elif head_end < len(data):
            self._feed(data[head_end:], now)

    def _feed(self, data: bytes | bytearray, now: float) -> None:
        """Let websockets' protocol handle ``data`` and act on what it parsed."""
        proto = self.proto
        proto.receive_data(data)
        writes = proto.data_to_send()
        if writes and self.transport is not None:
            self.transport.write(b"".join(writes))
        for event in proto.events_received():
            if isinstance(event, Response):
                self._handshake_done(event)
                continue
            if not isinstance(event, Frame):  # a Request: only servers receive those
                continue
            opcode = event.opcode
            # Received payloads are bytes already (``bytes()`` of bytes is the
            # same object); the type says any bytes-like.
            payload = bytes(event.data)
            if opcode is _BINARY or opcode is _TEXT:
                if event.fin:
                    self._deliver(payload, opcode is _TEXT, now)
                else:
                    self._parts = [payload]
                    self._part_text = opcode is _TEXT
            elif opcode is _CONT:
                self._parts.append(payload)
                if event.fin:
                    data_all, self._parts = b"".join(self._parts), []
                    self._deliver(data_all, self._part_text, now)
            elif opcode is _CLOSE:
                self.close_code = proto.close_rcvd.code if proto.close_rcvd else None
        if proto.state is not _OPEN:
            self._lean = False

    def eof_received(self) -> bool | None:
        self._lean = False
        if self._handshaking and self._buf:  # a partial response: websockets judges it
            data, self._buf = self._buf, b""
            self._feed(data, time.monotonic())
        self.proto.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._lean = False
        if not self._ready.done():
            self._ready.set_exception(ConnectionError(f"connection lost in handshake: {exc}"))
        if self.close_code is None and self.proto.close_rcvd is not None:
            self.close_code = self.proto.close_rcvd.code
        if self.on_close is not None:
            self.on_close(self.close_code)

    # -- internals -------------------------------------------------------

    def _handshake_done(self, response: Response) -> None:
        if self.proto.handshake_exc is not None:
            if not self._ready.done():
                self._ready.set_exception(HandshakeError(str(self.proto.handshake_exc)))
            self.abort()
            return
        self.subprotocol = response.headers.get("Sec-WebSocket-Protocol")
        if not self._ready.done():
            self._ready.set_result(None)

    def _flush(self) -> None:
        writes = self.proto.data_to_send()
        if writes and self.transport is not None and not self.transport.is_closing():
            data = b"".join(writes)
            if data:
                self.transport.write(data)

    # -- public ----------------------------------------------------------

    @property
    def open(self) -> bool:
        # ``_lean`` implies the rest (handshake done, no close frame, not lost).
        return self._lean or (not self.closed and self._ready.done() and self.close_code is None)

    def send_bytes(self, data: bytes) -> None:
        if self.closed:
            return
        if self._lean and self.transport is not None:
            self.transport.write(client_frame(FIN_BINARY, data))
            return
        self.proto.send_binary(data)
        self._flush()

    def send_text(self, text: str) -> None:
        if self.closed:
            return
        if self._lean and self.transport is not None:
            self.transport.write(client_frame(FIN_TEXT, text.encode()))
            return
        self.proto.send_text(text.encode())
        self._flush()

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake (the server then closes TCP)."""
        if self.closed:
            return
        self._lean = False
        try:
            self.proto.send_close(code)
        except Exception:
            self.abort()
            return
        self._flush()

    def abort(self) -> None:
        """Drop the TCP connection at once: no close frame (what a network failure looks like)."""
        if self.transport is not None:
            self.transport.abort()

"""A lean WebSocket client: websockets' sans-I/O ``ClientProtocol`` on an asyncio Protocol.

The load generator must stay cheaper than the servers it measures, so it
does not use the ``websockets.asyncio`` client (a reader task, a queue and
an ``await`` per message).  ``WSClient`` drives the same RFC 6455
implementation (``websockets.client.ClientProtocol``: handshake, masking,
framing, automatic pong) directly from ``data_received`` callbacks: every
complete message is handed to a plain callback with the time the bytes
arrived, and ``send_*`` writes to the transport without awaiting.

permessage-deflate is never offered (``extensions=None``).  ``rcvbuf`` sets a
small ``SO_RCVBUF`` before connecting, so that a client that stops reading
fills the server's buffers quickly (the slow-consumer scenario).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

# on_message(data, is_text, arrival_time); on_close(code or None)
MessageHandler = Callable[[bytes, bool, float], None]
CloseHandler = Callable[[int | None], None]

_TEXT, _BINARY, _CONT, _CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.CLOSE


class HandshakeError(ConnectionError):
    pass


class WSClient(asyncio.Protocol):
    """One client connection; see the module docstring."""

    __slots__ = (
        "_early",
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
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.proto.send_request(self.proto.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        proto = self.proto
        proto.receive_data(data)
        writes = proto.data_to_send()
        if writes and self.transport is not None:
            self.transport.write(b"".join(writes))
        for event in proto.events_received():
            if isinstance(event, Response):
                self._handshake_done(event)
                continue
            opcode = event.opcode
            if opcode is _BINARY or opcode is _TEXT:
                if event.fin:
                    self._deliver(event.data, opcode is _TEXT, now)
                else:
                    self._parts = [event.data]
                    self._part_text = opcode is _TEXT
            elif opcode is _CONT:
                self._parts.append(event.data)
                if event.fin:
                    data_all, self._parts = b"".join(self._parts), []
                    self._deliver(data_all, self._part_text, now)
            elif opcode is _CLOSE:
                self.close_code = proto.close_rcvd.code if proto.close_rcvd else None

    def eof_received(self) -> bool | None:
        self.proto.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
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
        return not self.closed and self._ready.done() and self.close_code is None

    def send_bytes(self, data: bytes) -> None:
        if self.closed:
            return
        self.proto.send_binary(data)
        self._flush()

    def send_text(self, text: str) -> None:
        if self.closed:
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

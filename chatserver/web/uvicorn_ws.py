"""The WebSocket protocol chatserver runs under uvicorn (``uvicorn.run(ws=...)``).

uvicorn's sans-I/O WebSocket protocol (``websockets-sansio``, built on
websockets' ``ServerProtocol``) with these changes (the first three measured in
``docs/performance.md``):

* **Reading pauses only under a backlog.**  uvicorn pauses the socket after
  every message and resumes it when the application asks for the next one:
  two ``epoll_ctl`` calls per message.  Here reading pauses when
  ``MAX_QUEUED`` messages wait for the application, and resumes when it has
  taken them all, so a client that floods still meets backpressure.
* **Lean per-connection state.**  The receive queue and the "writable" flag
  are small objects that allocate only when something waits, instead of an
  ``asyncio.Queue`` (three deques) and an ``asyncio.Event`` (one); the
  handshake response is dropped once sent.
* **A synchronous send for the application.**  The ASGI scope carries the
  extension ``chatserver.write``: ``write(data) -> bool`` sends one message
  (``bytes`` as binary, ``str`` as text) right away and returns ``True``, or
  returns ``False`` without sending when the socket cannot take it now (its
  write buffer is above the transport's high-water mark, or the connection
  is closing); the application then queues the message and sends it with the
  ordinary, awaitable ASGI ``send``.  Applications that ignore the extension
  see an ordinary ASGI WebSocket.  The data frames it writes are built by
  ``frame`` (control frames and the handshake still come from websockets).
* **One write per connection per loop iteration.**  What ``write`` accepts
  is framed at once and held (``corked``) until the end of the event-loop
  iteration, when every connection written to gets its frames in one
  ``transport.write``: a visitor's ``ack`` and the ``msg`` that follows it
  are one ``send`` syscall, as are the messages of an agent's chats stored
  in one group commit.  Anything else written to the connection (an ASGI
  ``send``, a close, bytes websockets writes while reading) sends the held
  frames first, so bytes keep their order, and so does the application's
  return (before uvicorn closes the transport); more than ``CORK_BYTES`` held
  are sent at once, so the transport's high-water mark (hence ``write``
  saying no) sees them as before.
* **Common client frames parsed directly.**  websockets parses every
  incoming frame with generator-based coroutines (``Frame.parse``, its
  stream reader); after the handshake, ``data_received`` reads complete,
  unfragmented, masked text and binary frames within ``ws_max_size`` itself
  (``_receive_fast``) and hands anything else, from the first byte it does
  not read, to websockets' parser: control frames, fragments, reserved bits,
  unmasked or oversized frames, and frames not yet complete in the read.  It
  does so only while websockets' parser sits between frames with nothing
  buffered (``_parser_idle``), so bytes never overtake one another.  Invalid
  UTF-8 in a text frame closes with 1007 as before, and is logged as a
  client error (``logs.CLIENT_ERRORS``: rate-limited, no traceback).
* **A close that does not wait.**  The extension ``chatserver.close``:
  ``close_now(code, reason) -> bool`` writes the close frame to the
  transport at once, without waiting for the socket to become writable: it
  is the next frame after those the transport holds already, and whatever
  the application had not written yet is never sent.  The application gets
  ``websocket.disconnect`` with ``code`` and must send nothing more.  The
  server then waits ``close_timeout`` for the client's close frame, closes
  the transport (still flushing its buffer to a client that reads again),
  and aborts it after another ``close_timeout`` if the client never read.
  It is how a slow consumer gets ``4003`` (``ws.py``).
* **Shutdown says "going away".**  When the server stops, open sockets
  close with 1001 instead of uvicorn's 1012 (``shutdown``).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN
from websockets.streams import StreamReader

from ..logs import CLIENT_ERRORS

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

MAX_QUEUED = 16  # messages waiting for the application before reading pauses
CORK_BYTES = 16 * 1024  # held frames of one connection sent before the iteration ends
WRITE_EXTENSION = "chatserver.write"
CLOSE_EXTENSION = "chatserver.close"
GOING_AWAY = 1001  # the close code of a server shutdown (RFC 6455 §7.4.1)
_BETWEEN_FRAMES = StreamReader.at_eof.__code__  # where websockets' parser waits for a frame


class Inbox:
    """The part of ``asyncio.Queue`` uvicorn uses, for one consumer.

    No allocation while empty except a list; a future only while the
    consumer waits.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            if self._waiter is not None:
                raise RuntimeError("Inbox.get() is already awaited")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class Gate:
    """The part of ``asyncio.Event`` uvicorn uses for "the socket is writable"."""

    __slots__ = ("_open", "_waiters")

    def __init__(self) -> None:
        self._open = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> bool:
        while not self._open:
            fut = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(fut)
            await fut
        return True


class Cork:
    """The connections of one event loop holding frames (``corked``) until the
    iteration ends: one callback per iteration sends them all."""

    __slots__ = ("_held", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._held: list[ChatWebSocketProtocol] = []

    def hold(self, protocol: ChatWebSocketProtocol) -> None:
        if not self._held:
            self.loop.call_soon(self.release)
        self._held.append(protocol)

    def release(self) -> None:
        held, self._held = self._held, []
        for protocol in held:
            protocol.uncork()


_cork: Cork | None = None


def cork_of(loop: asyncio.AbstractEventLoop) -> Cork:
    """The ``Cork`` of ``loop``.

    A server process runs one loop, so one is kept: that of the last loop
    asked.  Another loop gets a new one (tests run a loop each, one after
    the other); a cork replaced while it holds frames still releases them,
    its callback being on its own loop.
    """
    global _cork
    cork = _cork
    if cork is None or cork.loop is not loop:
        cork = _cork = Cork(loop)
    return cork


class ChatWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol with the changes above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Gate()  # type: ignore[assignment]
        self.writable.set()
        self.corked: list[bytes] | None = None  # frames written, not yet sent
        self.corked_bytes = 0
        # True while websockets' parser is known to sit between frames with
        # an empty buffer: it has not been fed since ``_parser_idle`` said so.
        self.parser_idle = False
        self.fast_frames = 0  # frames read by ``_receive_fast`` (for tests)

    def shutdown(self) -> None:
        """The server is stopping (SIGTERM): close with 1001, going away.

        uvicorn's own protocol closes with 1012 (service restart); 1001 is
        what the widget and the console reconnect on at once, to another
        process behind the load balancer (docs/operations.md).  The
        application gets ``websocket.disconnect`` with the same code and
        finishes what it was doing (a message being stored is stored and
        counted) before uvicorn runs the lifespan shutdown.
        """
        self.stop_keepalive()
        self.uncork()
        if self.close_sent:
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            self.transport.close()
            return
        if self.handshake_complete:
            self.queue.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
            self.conn.send_close(GOING_AWAY, "server shutting down")
            self.transport.write(b"".join(self.conn.data_to_send()))
        else:
            self.send_500_response()
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.corked is not None:
            self.uncork()  # before anything websockets may write (pong, close)
        if self.parser_idle or self._parser_idle():
            self.parser_idle = True
            data = self._receive_fast(data)
            if not data:
                return
            self.parser_idle = False
        super().data_received(data)

    def _parser_idle(self) -> bool:
        """Whether websockets' parser waits for the first byte of a frame.

        That is: the connection is open, no fragmented message or extension
        is in play, the reader's buffer is empty and the parser generator is
        suspended in ``StreamReader.at_eof`` (the top of its frame loop).  If
        websockets changes that shape, the answer is ``False`` and every
        frame takes websockets' path, as with uvicorn's own protocol.
        """
        conn = self.conn
        if (
            conn.state is not OPEN
            or conn.current_size is not None
            or conn.extensions
            or conn.reader.buffer
        ):
            return False
        gen: Any = conn.parser
        while (inner := getattr(gen, "gi_yieldfrom", None)) is not None:
            gen = inner
        return getattr(gen, "gi_code", None) is _BETWEEN_FRAMES

    def _receive_fast(self, data: bytes) -> bytes:
        """Read the leading complete data frames of ``data``; return the rest.

        A frame is read here when it is final (FIN), has no reserved bits,
        is text or binary, is masked, and its payload is within the
        connection's size limit and entirely in ``data`` (RFC 6455 §5.2).
        The first frame that is not stops the loop, and it and everything
        after it are returned for websockets' parser; so does the
        connection leaving the OPEN state (a 1007 close, for instance).
        """
        conn = self.conn
        limit = conn.max_message_size
        size = len(data)
        pos = 0
        while size - pos >= 6 and conn.state is OPEN:
            head = data[pos]
            if head != 0x82 and head != 0x81:  # FIN, no RSV, binary or text
                break
            length = data[pos + 1]
            if length < 0x80:  # a client must mask (1002 from websockets)
                break
            length &= 0x7F
            if length < 126:
                start = pos + 6
            elif length == 126:
                start = pos + 8
                if start > size:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            else:
                start = pos + 14
                if start > size:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            end = start + length
            if (limit is not None and length > limit) or end > size:
                break
            payload = apply_mask(data[start:end], data[start - 4 : start])
            pos = end
            self.fast_frames += 1
            self.deliver(payload, head == 0x81)
        return data[pos:] if pos else data

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = self.__dict__.get("scope")
        if scope is not None:
            scope["extensions"][WRITE_EXTENSION] = self.write_now
            scope["extensions"][CLOSE_EXTENSION] = self.close_now

    async def run_asgi(self) -> None:
        """uvicorn's, but the frames held for the connection are sent before the
        transport closes when the application returns."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        self.uncork()
        if self.close_timer is None:
            self.transport.close()

    def on_task_complete(self, task: asyncio.Task[None]) -> None:
        super().on_task_complete(task)
        # The application is done; the extension is a bound method, and
        # scope -> self -> scope a cycle only a full collection would free.
        self.scope["extensions"].pop(WRITE_EXTENSION, None)
        self.scope["extensions"].pop(CLOSE_EXTENSION, None)

    def send_receive_event_to_app(self) -> None:
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        self.deliver(data, self.curr_msg_data_type == "text")

    def deliver(self, data: bytes, text: bool) -> None:
        """Queue one received message for the application (uvicorn's logic)."""
        if self.close_sent:
            return  # past websocket.close: keep reading until the peer's close
        if text:
            try:
                self.queue.put_nowait({"type": "websocket.receive", "text": data.decode()})
            except UnicodeDecodeError:
                # The client's mistake: a rate-limited line, no traceback.
                client = self.client[0] if self.client else "?"
                CLIENT_ERRORS.log(
                    self.logger, "invalid_utf8", "invalid UTF-8 in a text frame from %s", client
                )
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": data})
        if not self.read_paused and self.queue.qsize() >= MAX_QUEUED:
            self.read_paused = True
            self.transport.pause_reading()

    async def send(self, message: Any) -> None:
        if self.corked is not None:
            self.uncork()
        await super().send(message)
        if message["type"] == "websocket.accept":
            self.__dict__.pop("response", None)  # the handshake is sent

    def write_now(self, data: bytes | str) -> bool:
        """Send one message now if the socket can take it (see module docstring)."""
        if (
            not self.writable.is_set()
            or self.close_sent
            or self.disconnected
            or not self.handshake_complete
            or self.initial_response is not None
            or self.conn.state is not OPEN
            or self.transport.is_closing()
        ):
            return False
        data = frame(data)
        corked = self.corked
        if corked is None:
            self.corked = [data]
            self.corked_bytes = len(data)
            cork_of(self.loop).hold(self)
        else:
            corked.append(data)
            self.corked_bytes += len(data)
        if self.corked_bytes >= CORK_BYTES:
            self.uncork()
        return True

    def uncork(self) -> None:
        """Send the frames ``write_now`` holds, in one ``transport.write``."""
        corked = self.corked
        if corked is None:
            return
        self.corked = None
        self.corked_bytes = 0
        if not self.transport.is_closing():
            self.transport.write(corked[0] if len(corked) == 1 else b"".join(corked))

    def close_now(self, code: int, reason: str) -> bool:
        """Close with ``code`` at once (see module docstring); ``False`` if closed already.

        The caller must not have a ``send`` waiting for the socket (cancel
        it first): like after an ordinary ``websocket.close``, uvicorn's
        ``send`` refuses every message from now on.
        """
        if (
            self.close_sent
            or self.disconnected
            or not self.handshake_complete
            or self.initial_response is not None
            or self.conn.state is not OPEN
            or self.transport.is_closing()
        ):
            return False
        self.uncork()  # what was written goes before the close frame
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()  # to read the client's close frame
        self.close_timer = self.loop.call_later(self.close_timeout, self._close_timed_out)
        return True

    def _close_timed_out(self) -> None:
        """No close frame back in time: close; abort if the buffer never drains."""
        self.close_timer = None
        self.transport.close()  # flushes what is buffered first, if the client reads
        self.loop.call_later(self.close_timeout, self._abort_unless_lost)

    def _abort_unless_lost(self) -> None:
        if not self.disconnected:
            self.transport.abort()


_last: tuple[object, bytes] = (object(), b"")


def frame(data: bytes | str) -> bytes:
    """One unfragmented server-to-client WebSocket frame (RFC 6455 §5.2).

    ``bytes`` become a binary frame and ``str`` a text frame, unmasked (a
    server never masks) and without extensions (permessage-deflate is off).
    websockets' ``send_binary`` builds the same bytes through a ``Frame``
    object and a buffer, the largest cost of a fan-out; here it is a header
    and a concatenation, and a fan-out that pushes the same message to many
    connections frames it once (the last message framed is remembered).
    """
    global _last
    if _last[0] is data:
        return _last[1]
    if isinstance(data, str):
        payload, head = data.encode(), 0x81  # FIN | text
    else:
        payload, head = data, 0x82  # FIN | binary
    n = len(payload)
    if n < 126:
        out = bytes((head, n)) + payload
    elif n < 65536:
        out = struct.pack("!BBH", head, 126, n) + payload
    else:
        out = struct.pack("!BBQ", head, 127, n) + payload
    _last = (data, out)
    return out

"""The chat WebSocket: the ASGI endpoint and ``ChatApp``, which routes ``/ws`` to it.

The endpoint only moves bytes: it feeds every message to the connection's
sans-I/O ``protocol.Connection``, hands validated frames to the hub, and lets
the session write frames to the socket (see ``Session.push``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from ..errors import (
    CloseCode,
    Closed,
    ConnectionClosing,
    FrameError,
    NotFound,
    NotMember,
    StoreError,
)
from ..logs import CLIENT_ERRORS
from ..node import Node
from ..protocol.codec import Codec, Connection, error_frame
from ..session import Session
from ..types import ClientKind
from .uvicorn_ws import CLOSE_EXTENSION, WRITE_EXTENSION

log = logging.getLogger("chatserver.app")  # the name operators know (docs/operations.md)


async def _drain(send: Send, session: Session) -> None:
    """Send the session's outbox (it had a backlog); then close if it asked to."""
    outbox = session.outbox
    while outbox:
        data = outbox.popleft()
        session.outbox_bytes -= len(data)
        if isinstance(data, bytes):
            await send({"type": "websocket.send", "bytes": data})
        else:
            await send({"type": "websocket.send", "text": data})
    session.draining = False
    if session.close_code is not None:
        session.draining = True  # nothing more to send after the close frame
        code, reason = int(session.close_code), session.close_reason
        await send({"type": "websocket.close", "code": code, "reason": reason})


async def _receive(receive: Receive) -> bytes | str:
    message = await receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    data = message.get("bytes")
    if data is None:
        data = message.get("text") or ""
    return data


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def websocket_endpoint(node: Node, scope: Scope, receive: Receive, send: Send) -> None:
    """The chat WebSocket as a plain ASGI app (see ``ChatApp``).

    Frames go out through ``Session.push``: straight to the socket when the
    server offers the ``chatserver.write`` extension (``uvicorn_ws``) and the
    socket can take them, otherwise through a task that drains the outbox
    with the ASGI ``send`` and exists only while there is a backlog.
    """
    if (await receive())["type"] != "websocket.connect":
        return
    limits = node.limits
    codec = Codec.negotiate(list(scope.get("subprotocols") or ()))
    try:
        await send({"type": "websocket.accept", "subprotocol": codec.value if codec else None})
    except OSError:  # the client left during the handshake
        return
    conn = Connection(codec or Codec.MSGPACK, limits, time.monotonic())
    client = scope.get("client")
    session = Session(conn, limits.max_outbox_bytes, f"{client[0]}" if client else "")
    extensions = scope.get("extensions") or {}
    session.write = extensions.get(WRITE_EXTENSION)
    close_now: Callable[[int, str], bool] | None = extensions.get(CLOSE_EXTENSION)
    drain: asyncio.Task[None] | None = None
    aborted = False

    def flush() -> None:
        nonlocal drain
        drain = asyncio.ensure_future(_drain(send, session))

    def abort(code: int, reason: str) -> bool:
        # The close frame goes out now; a drain waiting for the socket is
        # cancelled before it can run again (its frame is dropped).
        nonlocal aborted
        if close_now is None or not close_now(code, reason):
            return False
        aborted = True
        if drain is not None:
            drain.cancel()
        return True

    session.flush = flush
    session.abort = abort
    metrics = node.metrics
    errors = metrics.errors
    kind: ClientKind | None = None  # counted in metrics once past hello
    client_code = 1006  # the close code the client sent, if it closed first
    try:
        try:
            first = await asyncio.wait_for(_receive(receive), limits.hello_timeout)
        except TimeoutError:
            raise ConnectionClosing(CloseCode.HELLO_TIMEOUT, "no hello in time") from None
        hello = conn.receive(first, time.monotonic())
        await node.hub.hello(session, hello, _header(scope, b"origin"), Headers(scope=scope))
        kind = session.kind
        if kind is ClientKind.AGENT:
            metrics.agents += 1
        else:
            metrics.visitors += 1
        counts = metrics.frames[kind or ClientKind.VISITOR]
        counts["hello"] += 1
        while session.close_code is None:
            message = await receive()  # not _receive(): one coroutine less per idle connection
            if message["type"] == "websocket.disconnect":
                client_code = message.get("code", 1000)
                break
            data = message.get("bytes")
            if data is None:
                data = message.get("text") or ""
            try:
                session.frame_at = now = time.monotonic()
                frame = conn.receive(data, now)
                counts[frame.type] += 1
                await node.hub.handle(session, frame)
            except FrameError as exc:
                errors[exc.code] += 1
                session.send(error_frame(exc.code, exc.message, exc.rid))
    except ConnectionClosing as exc:
        session.close(exc.code, exc.reason)
    except WebSocketDisconnect as exc:
        client_code = exc.code
    except StoreError as exc:  # during hello (a frame's is answered with error 101)
        if isinstance(exc, NotFound | Closed | NotMember):  # a defect, not an outage
            log.exception("connection failed")
            session.close(CloseCode.INTERNAL, "internal error")
        else:
            log.warning("hello failed: storage unavailable: %s", exc)
            session.close(CloseCode.UNAVAILABLE, "storage unavailable, try again")
    except Exception:
        log.exception("connection failed")
        session.close(CloseCode.INTERNAL, "internal error")
    finally:
        if kind is ClientKind.AGENT:
            metrics.agents -= 1
        elif kind is not None:
            metrics.visitors -= 1
        metrics.closed(client_code if session.close_code is None else int(session.close_code))
        await node.hub.disconnect(session)
        if drain is not None:
            if session.close_code is not None and not aborted and not drain.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(drain, 2.0)
            drain.cancel()
            with contextlib.suppress(BaseException):
                await drain
        session.detach()
        conn.closed()


class ChatApp(Starlette):
    """Starlette for the HTTP routes; the chat WebSocket (``/ws``) ahead of them.

    The socket bypasses the middleware stack and the router: none of them
    applies to it, and each would keep coroutine frames alive for as long as
    the connection lives (about 5 KB per connection, see docs/performance.md).
    A request whose client disconnects mid-way (``ClientDisconnect``) is a
    rate-limited client-error line, not an "Exception in ASGI application".
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "websocket" and path in ("/ws", scope.get("root_path", "") + "/ws"):
            await websocket_endpoint(self.state.node, scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            # The client left while its request was read or its response
            # sent: nobody to answer, nothing wrong with the server.
            CLIENT_ERRORS.log(
                log,
                "client_disconnect",
                "%s %s: the client left before the exchange ended",
                scope.get("method", "?"),
                path[:100],
            )

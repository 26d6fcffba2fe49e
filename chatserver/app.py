"""The Starlette application: HTTP routes and the WebSocket adapter.

The WebSocket endpoint only moves bytes: it feeds every message to the
connection's sans-I/O ``protocol.Connection``, hands validated frames to the
hub, and lets the session write frames to the socket (see ``Session.push``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

import agent_console
import recordings

from . import __version__, attachments, control, demo, logins, ops
from .bundles import WIDGET_BUILD
from .config import Config
from .errors import CloseCode, ConnectionClosing, FrameError
from .hub import Hub
from .logs import CLIENT_ERRORS
from .node import Node
from .protocol import Codec, Connection, error_frame
from .session import Session
from .types import ClientKind
from .uvicorn_ws import CLOSE_EXTENSION, WRITE_EXTENSION

log = logging.getLogger("chatserver.app")

STATIC_DIR = Path(__file__).parent / "static"
_WIDGET_MISSING = (
    "%s is missing, so /widget.js answers 404: run scripts/setup "
    "(or: cd widget && npm ci && npm run build)"
)


class CachedStatic(StaticFiles):
    """Static files with a ``Cache-Control`` header.

    Files under ``immutable/`` have content-hashed names and are cached for a
    year; everything else for five minutes, revalidated by ETag.
    """

    def file_response(
        self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        path = scope.get("path", "")
        if "/immutable/" in path:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "public, max-age=300, must-revalidate"
        return response


_HASHED = re.compile(r"^[a-z]+\.[A-Z0-9]{8,}\.js$")


class WidgetFiles(StaticFiles):
    """The widget build: content-hashed bundles (``chat.<hash>.js``,
    ``cobrowse.<hash>.js``, ``recorder.<hash>.js``, ``replay.<hash>.js``)
    cached for a year, immutable; everything else (``widget.js``, the loader;
    ``replay.js``; ``manifest.json``; ``chat.d.ts``, the ``$chat`` API's
    TypeScript types, as ``text/plain``) five minutes.

    Every file is public and readable from any origin
    (``Access-Control-Allow-Origin: *``, ``Cross-Origin-Resource-Policy:
    cross-origin``): shops' pages load the bundles with Subresource Integrity
    (``crossorigin="anonymous"``), which needs CORS, and pages with
    ``Cross-Origin-Embedder-Policy`` need the second. No cookies are involved.

    A missing build folder is not an error at startup: every file answers 404.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, check_dir=False)

    async def check_config(self) -> None:
        """Accept a missing directory (the widget may not be built yet)."""

    def file_response(
        self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = Path(str(full_path)).name
        if not _HASHED.match(name):
            response.headers["Cache-Control"] = "public, max-age=300, must-revalidate"
        else:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        if name.endswith(".d.ts") and response.status_code == 200:
            # Not video/mp2t (the system's guess for .ts): text to read or save.
            response.headers["Content-Type"] = "text/plain; charset=utf-8"
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


_widget_missing_logged = False


async def widget_loader(request: Request) -> Response:
    """``/widget.js``: the script tag shops paste (from the widget build)."""
    global _widget_missing_logged
    files: WidgetFiles = request.app.state.widget_files
    if not (WIDGET_BUILD / "widget.js").is_file():
        if not _widget_missing_logged:
            log.error(_WIDGET_MISSING, WIDGET_BUILD / "widget.js")
            _widget_missing_logged = True
        return PlainTextResponse("widget not built: run scripts/setup\n", status_code=404)
    return await files.get_response("widget.js", request.scope)


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


async def websocket_endpoint(hub: Hub, scope: Scope, receive: Receive, send: Send) -> None:
    """The chat WebSocket as a plain ASGI app (see ``ChatApp``).

    Frames go out through ``Session.push``: straight to the socket when the
    server offers the ``chatserver.write`` extension (``uvicorn_ws``) and the
    socket can take them, otherwise through a task that drains the outbox
    with the ASGI ``send`` and exists only while there is a backlog.
    """
    if (await receive())["type"] != "websocket.connect":
        return
    limits = hub.limits
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
    metrics = hub.metrics
    errors = metrics.errors
    kind: ClientKind | None = None  # counted in metrics once past hello
    client_code = 1006  # the close code the client sent, if it closed first
    try:
        try:
            first = await asyncio.wait_for(_receive(receive), limits.hello_timeout)
        except TimeoutError:
            raise ConnectionClosing(CloseCode.HELLO_TIMEOUT, "no hello in time") from None
        hello = conn.receive(first, time.monotonic())
        await hub.hello(session, hello, _header(scope, b"origin"), Headers(scope=scope))
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
                frame = conn.receive(data, time.monotonic())
                counts[frame.type] += 1
                await hub.handle(session, frame)
            except FrameError as exc:
                errors[exc.code] += 1
                session.send(error_frame(exc.code, exc.message, exc.rid))
    except ConnectionClosing as exc:
        session.close(exc.code, exc.reason)
    except WebSocketDisconnect as exc:
        client_code = exc.code
    except Exception:
        log.exception("connection failed")
        session.close(CloseCode.INTERNAL, "internal error")
    finally:
        if kind is ClientKind.AGENT:
            metrics.agents -= 1
        elif kind is not None:
            metrics.visitors -= 1
        metrics.closed(client_code if session.close_code is None else int(session.close_code))
        await hub.disconnect(session)
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
            await websocket_endpoint(self.state.hub, scope, receive, send)
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


async def healthz(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "backend": request.app.state.config.backend,
            **hub.stats(),
            "recordings": request.app.state.recordings.stats(),
            "uploads": request.app.state.upload_budget.stats(),
            "limits": hub.quotas.stats(),
        }
    )


async def login(request: Request) -> Response:
    """Exchange an agent's email and password for a WebSocket token (a new sign-in)."""
    hub: Hub = request.app.state.hub
    throttle: logins.LoginThrottle = request.app.state.login_throttle
    try:
        body = await request.json()
        email, password = str(body["email"]), str(body["password"])
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": "send JSON with 'email' and 'password'"}, status_code=400)
    # Counted before the password check: concurrent guesses get no more checks.
    attempt = await throttle.attempt(
        throttle.keys(request.client.host if request.client else "", email)
    )
    if attempt.wait:
        return JSONResponse(
            {"error": "too many attempts"},
            status_code=429,
            headers={"Retry-After": str(int(attempt.wait) + 1)},
        )
    agent = await logins.sign_in(hub.store, email, password)
    if agent is None:
        return JSONResponse({"error": "wrong email or password"}, status_code=401)
    await throttle.succeeded(attempt)
    return JSONResponse(
        {
            "token": hub.agent_token(await logins.grant(hub.store, agent)),
            "agent": {"id": agent.id, "name": agent.name, "role": agent.role.value},
        }
    )


async def logout(request: Request) -> Response:
    """End the sign-in of the agent token in ``Authorization: Bearer <token>``.

    The console's sign-out, for API clients: the token's session is revoked
    in the Store (so the token, and any copy of it, is refused from now on,
    on every process) and its open agent sockets close with ``4106``
    everywhere (``control.session_ended``).  Answers 204, also when the
    sign-in had ended already (signing out twice is harmless); 401 for a
    missing, forged or expired token.
    """
    hub: Hub = request.app.state.hub
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    grant = logins.from_token(hub.signer, token.strip()) if scheme.lower() == "bearer" else None
    if grant is None:
        return JSONResponse(
            {"error": "send a valid agent token as 'Authorization: Bearer <token>'"},
            status_code=401,
        )
    await control.session_ended(hub, grant)
    return Response(status_code=204)


async def index(request: Request) -> Response:
    return RedirectResponse("/demo/")


async def console_redirect(request: Request) -> Response:
    """``/console`` (the address printed by ``chatserver demo``) is the workspace's."""
    return RedirectResponse("/console/")


def create_app(config: Config) -> Starlette:
    """The web application around a node (``node.py``, the composition root)."""
    node = Node.build(config)
    recorder = node.recordings
    lifecycle = ops.Lifecycle()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await node.start()
        # What start-up made lives as long as the process: keep it out of every
        # later full collection (docs/performance.md, "What the profiles changed").
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            lifecycle.shutting_down = True  # if no signal said so already
            await node.close()

    widget_files = WidgetFiles(WIDGET_BUILD)
    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        *ops.routes,  # /readyz, /metrics
        Route("/api/login", login, methods=["POST"]),
        Route("/api/logout", logout, methods=["POST"]),
        Mount("/static", CachedStatic(directory=STATIC_DIR), name="static"),
        Route("/widget.js", widget_loader, name="widget_loader"),
        Mount("/widget", widget_files, name="widget"),
        *demo.routes,
        *attachments.routes,
        Route("/console", console_redirect, name="console"),
        recorder.mount(),  # /console/api/recordings: the replay API
        # The analysts' pages (recordings/pages.py) share the console's mount.
        Mount("/console", routes=[*recordings.pages.routes, *agent_console.routes]),
    ]
    app = ChatApp(
        routes=routes,
        middleware=[Middleware(GZipMiddleware, minimum_size=512)],
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.node = node
    app.state.hub = node.hub
    app.state.lifecycle = lifecycle
    app.state.widget_files = widget_files
    app.state.blobs = node.blobs
    app.state.recordings = recorder
    app.state.login_throttle = node.login_throttle
    app.state.upload_budget = node.upload_budget
    return app

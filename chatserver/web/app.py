"""The Starlette application: ``create_app`` and its routes.

The parts live beside it in ``chatserver/web/``: the chat WebSocket and
``ChatApp`` in ``ws.py`` (its socket writes in ``uvicorn_ws.py``), static
files and the widget build in ``files.py``, the sign-in API in ``api.py``,
``/readyz`` and ``/metrics`` in ``ops.py``, the demo shop in ``demo.py``;
attachments bring their own routes (``chatserver/attachments/``).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

import agent_console
import archive.pages
import recordings

from .. import __version__
from ..api.routes import routes as api_routes
from ..bundles import WIDGET_BUILD
from ..config import Config
from ..features import attachments
from ..mail import web as mail_web
from ..node import Node
from ..reports import web as reports_web
from . import demo, ops
from .api import login, logout
from .files import STATIC_DIR, CachedStatic, WidgetFiles, widget_loader
from .ws import ChatApp


async def healthz(request: Request) -> Response:
    node: Node = request.app.state.node
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "backend": request.app.state.node.config.backend,
            **node.hub.stats(),
            "recordings": request.app.state.node.recordings.stats(),
            "uploads": request.app.state.node.upload_budget.stats(),
            "limits": node.quotas.stats(),
        }
    )


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
        *api_routes,  # /api/v1/: the REST API (chatserver/api/)
        Mount("/static", CachedStatic(directory=STATIC_DIR), name="static"),
        Route("/widget.js", widget_loader, name="widget_loader"),
        Mount("/widget", widget_files, name="widget"),
        *demo.routes,
        *attachments.routes,
        *mail_web.routes,  # /mail/inbound, /mail/unsubscribe
        Route("/console", console_redirect, name="console"),
        recorder.mount(),  # /console/api/recordings: the replay API
        recorder.rewind_mount(),  # /console/api/rewind: the agents' rewind in the chat
        # The analysts' pages (recordings/pages.py) share the console's mount.
        Mount(
            "/console",
            routes=[
                *recordings.pages.routes,
                *reports_web.routes,
                *archive.pages.routes,
                *agent_console.routes,
            ],
        ),
    ]
    app = ChatApp(
        routes=routes,
        middleware=[Middleware(GZipMiddleware, minimum_size=512)],
        lifespan=lifespan,
    )
    app.state.node = node
    app.state.lifecycle = lifecycle
    app.state.widget_files = widget_files
    return app

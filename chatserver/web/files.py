"""Static files and the widget build, as the web edge serves them.

``CachedStatic`` serves ``chatserver/static/`` at ``/static``; ``WidgetFiles``
the widget build (``bundles.WIDGET_BUILD``) at ``/widget``; ``widget_loader``
answers ``/widget.js``.  The package data (``static/``, ``templates/``,
``widget_build/``) stays at the top of ``chatserver/``, where the wheel's
package-data globs find it: ``STATIC_DIR`` and ``TEMPLATES_DIR`` point there.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ..bundles import WIDGET_BUILD

log = logging.getLogger("chatserver.app")  # the name operators know (docs/operations.md)

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # chatserver/
STATIC_DIR = PACKAGE_DIR / "static"
TEMPLATES_DIR = PACKAGE_DIR / "templates"
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

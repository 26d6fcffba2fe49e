"""The routes under ``/api/v1/`` (docs/integrations.md, "REST API")."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from . import actions, conversations, reports, visitors
from .endpoint import Handler, endpoint, no_such_endpoint
from .openapi import DOCUMENT

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 document of this API (no key needed)."""
    return JSONResponse(DOCUMENT, headers={"Cache-Control": "public, max-age=300"})


def _route(path: str, **handlers: Handler) -> Route:
    return Route(path, endpoint(**handlers), methods=ALL_METHODS)


routes: list[BaseRoute] = [
    Mount(
        "/api/v1",
        routes=[
            Route("/openapi.json", openapi, methods=["GET"]),
            _route("/conversations", GET=conversations.list_conversations),
            _route("/conversations/{conv_id}", GET=conversations.get_conversation),
            _route("/conversations/{conv_id}/entries", GET=conversations.list_entries),
            _route("/conversations/{conv_id}/messages", POST=actions.post_message),
            _route("/conversations/{conv_id}/assign", POST=actions.assign),
            _route("/conversations/{conv_id}/tags", POST=actions.tag),
            _route("/conversations/{conv_id}/close", POST=actions.close),
            _route("/visitors/{visitor_id}", GET=visitors.get_visitor),
            _route("/visitors/{visitor_id}/pages", GET=visitors.list_pages),
            _route("/reports", GET=reports.get_report),
            _route("/reports/{table}", GET=reports.get_table),
            Route("/{rest:path}", no_such_endpoint, methods=ALL_METHODS),
        ],
    ),
]

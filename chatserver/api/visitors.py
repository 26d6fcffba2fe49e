"""Reading visitors: one visitor's record, conversations and page views.

The visitors the Store keeps: everyone who chatted, left an offline
message, identified, set attributes or tracked an event.  An anonymous
visitor who only browsed has no record yet (``visitor_rows.py``) and is not
found here.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..handlers.visitors import visitor_record
from ..protocol.frames import Field
from ..store import MAX_PAGE_VIEWS
from ..types import JSON, Visitor
from . import params
from .conversations import conversation_json
from .endpoint import Caller, json
from .errors import not_found

MAX_CONVERSATIONS = 20  # a visitor's latest conversations listed with the record
DEFAULT_PAGES = 50
_PAGES = (Field("limit", int, False, min=1, max=MAX_PAGE_VIEWS),)


async def _own_visitor(caller: Caller, visitor_id: str) -> Visitor:
    found = await caller.node.store.get_visitor(visitor_id) if len(visitor_id) <= 64 else None
    if found is None or found.site_id != caller.site.id:
        raise not_found("visitor")
    return found


async def get_visitor(request: Request, caller: Caller) -> Response:
    """The record, its latest page and the visitor's latest conversations (newest first)."""
    params.query(request)
    visitor = await _own_visitor(caller, request.path_params["visitor_id"])
    store = caller.node.store
    latest = await store.page_views(visitor.id, limit=1)
    convs = await store.visitor_conversations(visitor.id, limit=MAX_CONVERSATIONS)
    record: JSON = visitor_record(visitor, latest[0] if latest else None)
    record["created_at"] = visitor.created_at
    return json({"visitor": record, "conversations": [conversation_json(c) for c in convs]})


async def list_pages(request: Request, caller: Caller) -> Response:
    """The visitor's page views, newest first (the Store keeps the latest 200)."""
    q = params.query(request, *_PAGES)
    visitor = await _own_visitor(caller, request.path_params["visitor_id"])
    views = await caller.node.store.page_views(visitor.id, limit=q.get("limit", DEFAULT_PAGES))
    return json({"pages": [v.to_wire() for v in views]})

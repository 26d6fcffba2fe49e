"""Reading conversations: the list (filters, cursor pages), one, its entries by offset.

``GET /api/v1/conversations`` searches the archive index (``archive/``):
newest first, filtered by state, agent, department, tag and creation time,
in keyset pages (``cursor``).  The index follows the conversation events a
batch at a time, so a conversation opened a moment ago shows within about a
quarter of a second.  ``GET .../entries`` reads the durable log itself, so
an entry is there as soon as it was acknowledged.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from archive.query import ArchiveQuery, BadCursor

from ..protocol.frames import MAX_HISTORY, Field
from ..types import JSON, Conversation, ConvState
from . import params
from .endpoint import Caller, json
from .errors import invalid, not_found

MAX_LIMIT = 100  # conversations per page
DEFAULT_LIMIT = 25
DEFAULT_ENTRIES = 100

_STATES = frozenset(s.value for s in ConvState)
_LIST = (
    Field("state", str, False, choices=_STATES),
    params.id_field("agent", False),
    params.id_field("department", False),
    Field("tag", str, False, max_len=32),
    Field("since", str, False, max_len=40),
    Field("until", str, False, max_len=40),
    Field("cursor", str, False, max_len=64),
    Field("limit", int, False, min=1, max=MAX_LIMIT),
)
_ENTRIES = (
    Field("after", int, False, min=0),
    Field("limit", int, False, min=1, max=MAX_HISTORY),
)


def conversation_json(conv: Conversation) -> JSON:
    """A conversation as the API shows it: the protocol's summary and when it closed."""
    return {**conv.summary(), "closed_at": conv.closed_at}


async def own_conversation(caller: Caller, conv_id: str) -> Conversation:
    """The conversation ``conv_id`` of the caller's site; 404 for another site's too."""
    conv = await caller.node.store.get_conversation(conv_id) if len(conv_id) <= 64 else None
    if conv is None or conv.site_id != caller.site.id:
        raise not_found("conversation")
    return conv


async def list_conversations(request: Request, caller: Caller) -> Response:
    q = params.query(request, *_LIST)
    since = params.timestamp("since", q["since"]) if "since" in q else None
    until = params.timestamp("until", q["until"], end_of_day=True) if "until" in q else None
    query = ArchiveQuery(
        caller.site.id,
        states=(ConvState(q["state"]),) if "state" in q else (),
        agent=q.get("agent"),
        department=q.get("department"),
        tag=q.get("tag"),
        since=since,
        until=until,
    )
    try:
        page = await caller.node.archive.index.search(
            query, q.get("cursor"), q.get("limit", DEFAULT_LIMIT)
        )
    except BadCursor:
        raise invalid("parameter 'cursor' is not one this API gave") from None
    return json(
        {
            "conversations": [conversation_json(hit.conv) for hit in page.hits],
            "next_cursor": page.cursor,
        }
    )


async def get_conversation(request: Request, caller: Caller) -> Response:
    conv = await own_conversation(caller, request.path_params["conv_id"])
    return json({"conversation": conversation_json(conv)})


async def list_entries(request: Request, caller: Caller) -> Response:
    """Entries past ``after`` (default 0) in offset order, notes included."""
    conv = await own_conversation(caller, request.path_params["conv_id"])
    q = params.query(request, *_ENTRIES)
    after, limit = q.get("after", 0), q.get("limit", DEFAULT_ENTRIES)
    entries = await caller.node.store.entries(conv.id, after=after, limit=limit)
    last = entries[-1].offset if entries else after
    return json(
        {
            "entries": [caller.node.convs.wire(e) for e in entries],
            "offset": conv.last_offset,
            "next_after": last if last < conv.last_offset else None,
        }
    )

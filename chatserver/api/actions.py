"""Acting on conversations: post a message or note as an agent, assign, tag, close.

Every write goes through the same calls as the agents' frames
(``handlers/agents.py``): the Store's ``append`` with its membership and
"still open" checks, then ``Conversations.publish_entry``; ``join``,
``tag`` and ``close`` of ``Conversations``.  So live clients, the
conversation events (reports, the archive, webhooks) and the record follow
an API write exactly as they follow one made in the console.

An API key acts for its site.  Posting needs an agent of that site in the
conversation (``agent_id``; assign one first), since a message is always
some agent's; closing names one too or, without, is shown as closed by the
key's integration (its name).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..errors import Closed, ErrorCode, FrameError, NotFound, NotMember
from ..handlers.agents import clean_tags
from ..protocol.frames import MAX_MESSAGE_CHARS, MAX_TAG_CHARS, MAX_TAGS, MAX_TAGS_PER_FRAME, Field
from ..types import JSON, Agent, AuthorKind, EntryKind, Role
from . import params
from .conversations import conversation_json, own_conversation
from .endpoint import Caller, json
from .errors import ApiError, not_found

_TAG = Field("tag", str, max_len=MAX_TAG_CHARS)
_MESSAGE = (
    params.id_field("agent_id"),
    Field("body", str, max_len=MAX_MESSAGE_CHARS),
    Field("note", bool, False),
    params.id_field("cid", False),
)
_ASSIGN = (params.id_field("agent_id"),)
_TAGS = (
    Field("add", list, False, item=_TAG, max_items=MAX_TAGS_PER_FRAME),
    Field("remove", list, False, item=_TAG, max_items=MAX_TAGS_PER_FRAME),
    params.id_field("agent_id", False),
)
_CLOSE = (params.id_field("agent_id", False),)


async def _agent(caller: Caller, agent_id: str) -> Agent:
    """An agent of the key's site who may chat (not disabled, not an analyst)."""
    agent = await caller.node.store.get_agent(agent_id)
    if (
        agent is None
        or agent.site_id != caller.site.id
        or agent.disabled
        or agent.role is Role.ANALYST
    ):
        raise not_found("agent")
    return agent


async def _answer(caller: Caller, conv_id: str, status: int = 200) -> Response:
    conv = await own_conversation(caller, conv_id)
    return json({"conversation": conversation_json(conv)}, status)


async def post_message(request: Request, caller: Caller) -> Response:
    """Append a text (or a note) by ``agent_id``; a used ``cid`` returns the first one."""
    conv_id = request.path_params["conv_id"]
    data = await params.body(request, *_MESSAGE)
    if not data["body"].strip():
        raise ApiError(ErrorCode.INVALID_FIELD, "field 'body' is empty")
    agent = await _agent(caller, data["agent_id"])
    kind = EntryKind.NOTE if data.get("note") else EntryKind.TEXT
    try:
        entry, duplicate = await caller.node.store.append(
            conv_id if len(conv_id) <= 64 else "",
            kind,
            AuthorKind.AGENT,
            agent.id,
            agent.name,
            data["body"],
            data.get("cid"),
            open_only=True,
            member=agent.id,
        )
    except NotFound:
        raise not_found("conversation") from None
    except NotMember as exc:
        if exc.site_id != caller.site.id:  # another site's: as if it did not exist
            raise not_found("conversation") from None
        raise ApiError(
            ErrorCode.FORBIDDEN, "the agent is not in this conversation: assign it first"
        ) from None
    except Closed:
        raise ApiError(ErrorCode.CONFLICT, "conversation is closed") from None
    if not duplicate:
        await caller.node.convs.publish_entry(caller.site.id, entry)
    wire = caller.node.convs.wire(entry)
    return json({"entry": wire, "duplicate": duplicate}, 200 if duplicate else 201)


async def assign(request: Request, caller: Caller) -> Response:
    """Add ``agent_id`` to the conversation (``join``): it must be online with room."""
    conv = await own_conversation(caller, request.path_params["conv_id"])
    data = await params.body(request, *_ASSIGN)
    agent = await _agent(caller, data["agent_id"])
    await caller.node.convs.join(caller.site, conv, agent)
    return await _answer(caller, conv.id)


async def tag(request: Request, caller: Caller) -> Response:
    """Add and remove tags (``Conversations.tag``); the site's agents see the change live.

    The ``tagged`` event names ``agent_id`` when given, else the key (``api-key:<id>``).
    """
    conv = await own_conversation(caller, request.path_params["conv_id"])
    data = await params.body(request, *_TAGS)
    add, remove = clean_tags(data.get("add") or []), clean_tags(data.get("remove") or [])
    if not add and not remove:
        raise FrameError(ErrorCode.INVALID_FIELD, "give 'add' or 'remove'")
    if len((set(conv.tags) | set(add)) - set(remove)) > MAX_TAGS:
        raise FrameError(ErrorCode.CONFLICT, f"a conversation carries at most {MAX_TAGS} tags")
    by = (await _agent(caller, data["agent_id"])).id if "agent_id" in data else None
    conv = await caller.node.convs.tag(conv, add, remove, by or f"api-key:{caller.key.id}")
    return json({"conversation": conversation_json(conv)})


async def close(request: Request, caller: Caller) -> Response:
    """Close the conversation (closing a closed one changes nothing)."""
    conv = await own_conversation(caller, request.path_params["conv_id"])
    data = await params.body(request, *_CLOSE)
    by: JSON
    if "agent_id" in data:
        by = {"kind": "agent", **(await _agent(caller, data["agent_id"])).public()}
    else:
        by = {"kind": "integration", "id": caller.key.id, "name": caller.key.name}
    await caller.node.convs.close(caller.site, conv.id, by)
    return await _answer(caller, conv.id)

"""The agent side of the hub: hello, and the frames only agents send.

Handlers are functions of the hub, the session and the frame; ``HANDLERS``
maps frame types to them (the shared ones live in ``hub.py``).  Agents see
only their own site; acting on a conversation (writing, typing, transfer,
close) needs membership, or the admin role for transfer and close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .conversations import agent_channel, conv_channel, frame_event, site_channel
from .errors import CloseCode, Closed, ConnectionClosing, ErrorCode, FrameError
from .frames import PROTOCOL_VERSION, Frame
from .session import Session
from .types import (
    Agent,
    AgentStatus,
    AuthorKind,
    ClientKind,
    Conversation,
    ConvState,
    EntryKind,
    Role,
)
from .visitors import visitor_record, visitors_key

if TYPE_CHECKING:
    from .hub import Handler, Hub

MAX_VISITORS_LISTED = 500
MAX_PAGES_LISTED = 50


def _agent(session: Session) -> Agent:
    assert session.agent is not None
    return session.agent


def _member(agent: Agent, conv: Conversation, admin_ok: bool = True) -> None:
    """Only agents in a conversation (or, where allowed, admins) may act on it."""
    if agent.id in conv.agents or (admin_ok and agent.role is Role.ADMIN):
        return
    raise FrameError(ErrorCode.FORBIDDEN, "join the conversation first")


async def hello(hub: Hub, session: Session, frame: Frame) -> None:
    agent = await hub.agent_from_token(frame.get("token"))
    if agent is None:
        raise ConnectionClosing(CloseCode.UNAUTHORIZED, "invalid or expired agent token")
    if agent.disabled:
        raise ConnectionClosing(CloseCode.ACCOUNT_DISABLED, "agent account is disabled")
    if agent.role is Role.ANALYST:
        raise ConnectionClosing(CloseCode.UNAUTHORIZED, "analysts take no chats")
    site = await hub.site(agent.site_id)
    session.conn.accept(ClientKind.AGENT)
    session.kind = ClientKind.AGENT
    session.site = site
    session.agent = agent
    hub.convs.remember(agent)
    status = AgentStatus(frame.get("status") or hub.agent_status.get(agent.id, "online"))
    hub.agent_status[agent.id] = status
    hub.agent_connected(agent.id, session)
    await hub.router.agent_connected(agent, status)
    open_convs = await hub.store.list_conversations(site.id, [ConvState.QUEUED, ConvState.ACTIVE])
    session.send(
        {
            "t": "welcome",
            "v": PROTOCOL_VERSION,
            "re": frame.rid,
            "agent": {
                "id": agent.id,
                "name": agent.name,
                "email": agent.email,
                "role": agent.role.value,
                "capacity": agent.capacity,
                "departments": list(agent.departments),
            },
            "status": status.value,
            "site": {
                "id": site.id,
                "name": site.name,
                "departments": list(site.departments),
                "settings": site.settings.to_json(),
            },
            "conversations": [await hub.convs.describe(c) for c in open_convs],
            "queue": await hub.router.queue(site.id),
            "limits": hub.limits_json(),
        }
    )
    await hub.subscribe(session, agent_channel(agent.id))
    await hub.subscribe(session, site_channel(site.id))
    for conv in open_convs:
        if agent.id in conv.agents:
            await hub.follow(session, conv.id)
    await hub.agents_changed(site)


async def send(hub: Hub, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    conv = await hub.conversation(session, frame.get("conv"))
    _member(agent, conv, admin_ok=False)
    if conv.state is ConvState.CLOSED:
        raise FrameError(ErrorCode.CONFLICT, "conversation is closed")
    kind = EntryKind.NOTE if frame.get("note") else EntryKind.TEXT
    try:
        entry, duplicate = await hub.store.append(
            conv.id,
            kind,
            AuthorKind.AGENT,
            agent.id,
            agent.name,
            frame.get("body"),
            frame.get("cid"),
            open_only=True,  # closed since the read above: refused atomically
        )
    except Closed:
        raise FrameError(ErrorCode.CONFLICT, "conversation is closed") from None
    hub.ack(session, frame, entry, duplicate)
    if not duplicate:
        await hub.convs.publish_entry(entry)


async def typing(hub: Hub, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    conv = await hub.conversation(session, frame.get("conv"))
    _member(agent, conv, admin_ok=False)
    if conv.state is ConvState.CLOSED:
        raise FrameError(ErrorCode.CONFLICT, "conversation is closed")
    event = {
        "t": "typing",
        "conv": conv.id,
        "from": {"kind": "agent", "id": agent.id, "name": agent.name},
        "on": frame.get("on"),
    }
    await hub.broker.publish(conv_channel(conv.id), frame_event(event))


async def status(hub: Hub, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    new = AgentStatus(frame.get("status"))
    hub.agent_status[agent.id] = new
    await hub.router.set_status(agent.id, new)
    await hub.broker.publish(agent_channel(agent.id), {"op": "status", "status": new.value})
    session.send({"t": "ok", "re": frame.rid})
    await hub.agents_changed(await hub.site(agent.site_id))


async def join(hub: Hub, session: Session, frame: Frame) -> None:
    conv = await hub.conversation(session, frame.get("conv"))
    await hub.convs.join(await hub.site(conv.site_id), conv, _agent(session))
    session.send({"t": "ok", "re": frame.rid})


async def leave(hub: Hub, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    conv = await hub.conversation(session, frame.get("conv"))
    if agent.id not in conv.agents:
        raise FrameError(ErrorCode.CONFLICT, "you are not in this conversation")
    await hub.convs.requeue(await hub.site(conv.site_id), conv.id, [agent.id])
    session.send({"t": "ok", "re": frame.rid})


async def watch(hub: Hub, session: Session, frame: Frame) -> None:
    conv = await hub.conversation(session, frame.get("conv"))
    await hub.follow(session, conv.id)
    session.send({"t": "ok", "re": frame.rid})


async def unwatch(hub: Hub, session: Session, frame: Frame) -> None:
    conv = await hub.conversation(session, frame.get("conv"))
    if _agent(session).id not in conv.agents:
        await hub.unfollow(session, conv.id)
    session.send({"t": "ok", "re": frame.rid})


async def transfer(hub: Hub, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    conv = await hub.conversation(session, frame.get("conv"))
    _member(agent, conv)
    if frame.get("agent") and frame.get("dept"):
        raise FrameError(ErrorCode.INVALID_FIELD, "give 'agent' or 'dept', not both")
    site = await hub.site(conv.site_id)
    await hub.convs.transfer(site, conv, agent, frame.get("agent"), frame.get("dept"))
    session.send({"t": "ok", "re": frame.rid})


async def close(hub: Hub, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    conv = await hub.conversation(session, frame.get("conv"))
    _member(agent, conv)
    by = {"kind": "agent", **agent.public()}
    await hub.convs.close(await hub.site(conv.site_id), conv.id, by)
    session.send({"t": "ok", "re": frame.rid})


async def visitors(hub: Hub, session: Session, frame: Frame) -> None:
    """The site's visitors connected right now (any process), newest first."""
    assert session.site is not None
    members = await hub.presence.members(visitors_key(session.site.id))
    listed = sorted(members.items(), key=lambda m: -float(m[1].get("since", 0)))
    session.send(
        {
            "t": "visitors",
            "re": frame.rid,
            "count": len(members),
            "visitors": [{"id": v, **info} for v, info in listed[:MAX_VISITORS_LISTED]],
        }
    )


async def visitor(hub: Hub, session: Session, frame: Frame) -> None:
    """A visitor of the agent's site: the record and its last page views."""
    assert session.site is not None
    record = await hub.store.get_visitor(frame.get("visitor"))
    if record is None or record.site_id != session.site.id:
        raise FrameError(ErrorCode.NOT_FOUND, "no such visitor")
    views = await hub.store.page_views(record.id, limit=MAX_PAGES_LISTED)
    session.send(
        {
            "t": "visitor",
            "re": frame.rid,
            "visitor": visitor_record(record, views[0] if views else None),
            "pages": [v.to_wire() for v in views],
        }
    )


HANDLERS: dict[str, Handler] = {
    "send": send,
    "typing": typing,
    "status": status,
    "join": join,
    "leave": leave,
    "watch": watch,
    "unwatch": unwatch,
    "transfer": transfer,
    "close": close,
    "visitors": visitors,
    "visitor": visitor,
}

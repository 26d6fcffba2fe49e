"""``start``: an agent starts a chat with a visitor who is on the site now.

From the console's live visitors view: the agent writes the first message;
the visitor gets a conversation with the agent already in it, that message,
and an ``open`` frame that opens their chat window.  A visitor already in a
chat is not given a second one: the agent joins that one if it waits in the
queue, and is told it is taken otherwise (docs/protocol.md, ``start``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..conversations import frame_event, visitor_channel
from ..errors import ErrorCode, FrameError
from ..presence import visitors_key
from ..protocol.frames import Frame
from ..session import Session
from ..types import AuthorKind, ConvState, EntryKind, Role

if TYPE_CHECKING:
    from ..node import Node


async def start(node: Node, session: Session, frame: Frame) -> None:
    agent = session.agent
    assert agent is not None and session.site is not None
    if agent.role is Role.ANALYST:
        raise FrameError(ErrorCode.FORBIDDEN, "analysts take no chats")
    site = await node.hub.site(session.site.id)
    visitor_id = frame.get("visitor")
    present = await node.presence.members(visitors_key(site.id))
    if visitor_id not in present:
        raise FrameError(ErrorCode.NOT_FOUND, "no such visitor on the site now")
    visitor = await node.store.get_visitor(visitor_id)
    if visitor is None:  # anonymous until now: the chat makes them a record
        visitor = await node.store.create_visitor(site.id, visitor_id)
    if visitor.site_id != site.id:
        raise FrameError(ErrorCode.NOT_FOUND, "no such visitor on the site now")
    conv, created = await node.store.open_conversation(site.id, visitor.id, None, offline=False)
    if not created and conv.agents and agent.id not in conv.agents:
        raise FrameError(ErrorCode.CONFLICT, "the visitor is already chatting with a colleague")
    if created:
        node.convs.opened(conv)
        await node.broker.publish(visitor_channel(visitor.id), {"op": "follow", "conv": conv.id})
    try:
        conv = await node.convs.join(site, conv, agent)
    except FrameError:
        if created:  # nobody may answer it: not left open and unrouted
            await node.convs.close(site, conv.id, {"kind": "system", "id": "", "name": ""})
        raise
    if conv.state is ConvState.CLOSED:
        raise FrameError(ErrorCode.CONFLICT, "conversation is closed")
    entry, duplicate = await node.store.append(
        conv.id,
        EntryKind.TEXT,
        AuthorKind.AGENT,
        agent.id,
        agent.name,
        frame.get("body"),
        frame.get("cid"),
        open_only=True,
        member=agent.id,
    )
    node.hub.ack(session, frame, entry, duplicate)
    if duplicate:
        return
    await node.convs.publish_entry(site.id, entry)
    await node.hub.follow(session, conv.id)
    opened = {"t": "open", "agent": agent.public()}
    await node.broker.publish(visitor_channel(visitor.id), frame_event(opened, "visitors"))

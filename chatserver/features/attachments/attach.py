"""The ``attach`` frame: post an uploaded file into a conversation.

Only the file's uploader may post it, and only into one conversation (the
first it was posted into, bound in the Store with ``bind_attachment``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...errors import ErrorCode, FrameError
from ...handlers.agents import _member
from ...posting import Post, post_from_visitor
from ...protocol.frames import Frame
from ...session import Session
from ...types import JSON, Attachment, AuthorKind, ConvState, Entry, EntryKind

if TYPE_CHECKING:
    from ...node import Node

log = logging.getLogger("chatserver.attachments")


async def _own(node: Node, session: Session, attachment_id: str, uploader: str) -> Attachment:
    """The attachment if this client uploaded it, else ``NOT_FOUND``."""
    assert session.site is not None
    att = await node.store.get_attachment(attachment_id)
    if att is None or att.uploader != uploader or att.site_id != session.site.id:
        raise FrameError(ErrorCode.NOT_FOUND, "no such attachment")
    return att


def _data(att: Attachment) -> JSON:
    return {"attachment": att.to_wire()}


async def _bind(node: Node, att: Attachment, entry: Entry) -> None:
    bound = await node.store.bind_attachment(att.id, entry.conversation_id)
    if bound.conv_id != entry.conversation_id:  # two posts racing; the uploader's own file
        log.warning(
            "attachment %s posted into %s and %s", att.id, bound.conv_id, entry.conversation_id
        )


async def attach_visitor(node: Node, session: Session, frame: Frame) -> None:
    """Post the visitor's uploaded file: the one posting flow (``posting.py``).

    A file posted before goes only where it was (a resend with the same
    ``cid`` is a duplicate); a new one is bound to its entry before the ack.
    """
    assert session.visitor_id is not None
    att = await _own(node, session, frame.get("attachment"), f"visitor:{session.visitor_id}")

    async def bound(entry: Entry) -> None:
        await _bind(node, att, entry)

    post = Post(att.name, frame.get("cid"), _data(att), conv=frame.get("conv"), only=att.conv_id)
    await post_from_visitor(node, session, frame, post, bound)


async def attach_agent(node: Node, session: Session, frame: Frame) -> None:
    """Post the agent's uploaded file into a conversation it is a member of."""
    agent = session.agent
    assert agent is not None
    conv = await node.hub.conversation(session, frame.get("conv"))
    _member(agent, conv, admin_ok=False)
    if conv.state is ConvState.CLOSED:
        raise FrameError(ErrorCode.CONFLICT, "conversation is closed")
    att = await _own(node, session, frame.get("attachment"), f"agent:{agent.id}")
    if att.conv_id is not None and att.conv_id != conv.id:
        raise FrameError(ErrorCode.CONFLICT, "attachment posted in another conversation")
    entry, duplicate = await node.store.append(
        conv.id,
        EntryKind.TEXT,
        AuthorKind.AGENT,
        agent.id,
        agent.name,
        att.name,
        frame.get("cid"),
        data=_data(att),
    )
    await _bind(node, att, entry)
    node.hub.ack(session, frame, entry, duplicate)
    if not duplicate:
        await node.convs.publish_entry(conv.site_id, entry)

"""Satisfaction ratings: the visitor rates a closed conversation.

A ``rate`` frame names the conversation, a rating (``great``, ``okay`` or
``poor``) and an optional comment.  Only the conversation's own visitor may
rate it (anyone else gets ``205 not_found``, as for every conversation id),
only once it is closed, and only within ``RATE_WINDOW`` of the close.  A
later ``rate`` replaces the earlier one (the visitor may change their mind
or add a comment); sending the same rating and comment again changes
nothing.  Each change is stored on the conversation (``rating`` in its
summary) and as a ``rated`` event entry, published to the conversation's
followers and, as a ``conv`` snapshot, to every agent of the site.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ErrorCode, FrameError
from ..events import ConversationEvent, EventKind
from ..protocol import wire
from ..protocol.frames import Frame
from ..session import Session
from ..types import AuthorKind, ConvState, EntryKind, now

if TYPE_CHECKING:
    from ..node import Node

RATE_WINDOW = 7 * 24 * 3600  # seconds after the close during which a rating is taken


async def rate(node: Node, session: Session, frame: Frame) -> None:
    conv = await node.hub.conversation(session, frame.get("conv"))
    rating = frame.get("rating")
    comment = frame.get("comment", "").strip()
    async with node.convs.locked(conv.id):
        current = await node.store.get_conversation(conv.id)
        assert current is not None
        if current.state is not ConvState.CLOSED:
            raise FrameError(ErrorCode.CONFLICT, "a conversation is rated once it is closed")
        if current.closed_at is not None and now() - current.closed_at > RATE_WINDOW:
            raise FrameError(ErrorCode.CONFLICT, "too late to rate this conversation")
        changed = (current.rating, current.rating_comment) != (rating, comment)
        if changed:
            await node.store.rate_conversation(conv.id, rating, comment)
            entry, _ = await node.store.append(
                conv.id,
                EntryKind.EVENT,
                AuthorKind.SYSTEM,
                "",
                "",
                "",
                data={"event": "rated", "rating": rating, "comment": comment},
            )
    session.send(wire.ok(frame.rid))
    if changed:
        await node.convs.publish_entry(conv.site_id, entry)
        await node.convs.publish_settled(conv.id)  # after the lock: a tag may overtake it
        node.convs.events.emit(
            ConversationEvent(
                EventKind.RATED,
                conv.site_id,
                conv.id,
                entry=entry,
                data={"rating": rating, "comment": comment},
            )
        )

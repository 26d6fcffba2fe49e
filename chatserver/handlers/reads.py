"""Read markers as connections get them: live ``read`` events and follow-start snapshots.

Live ``read`` events reach only the connections following a conversation at
that moment (``Hub._read`` publishes them; ``for_visitor`` decides what the
visitor's connections get of an agent's).  ``snapshot`` hands a connection
that starts following (hello resume, reload, join, watch, ...) the markers
stored so far, in the shape of those events without ``t`` and ``conv``:
``{"by": {"kind", "id"}, "offset"}``.  The hub reads them after subscribing,
so a marker moved later arrives as a live event and the client keeps the
larger of the two (markers only grow).

What a connection may see (docs/read-receipts.md):

* agents: every marker, the visitor's and each agent's, as stored;
* the visitor: its own marker, and each agent's lowered to the highest offset
  up to it that the visitor can see (an agent's marker may stop on a note;
  its position is not the visitor's business).  Nothing else: no other
  reader's marker, whatever the store holds.  Live, the visitor gets an
  agent's ``read`` only when that lowered offset grows, so a marker moving
  across notes alone tells the visitor nothing; the visitor's own marker is
  stored lowered already (``Hub._read``), so no offset it gets is a note's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..conversations import conv_channel, frame_event
from ..protocol.frames import Frame
from ..session import Session
from ..store import Store
from ..types import JSON, ClientKind, Conversation

if TYPE_CHECKING:
    from ..node import Node


def reader_key(kind: ClientKind, author_id: str) -> str:
    """The store's reader of a marker: ``"visitor:<id>"`` or ``"agent:<id>"``."""
    return f"{kind.value}:{author_id}"


async def snapshot(store: Store, conv: Conversation, session: Session) -> list[JSON]:
    """The conversation's read markers that ``session`` may see, ordered by reader."""
    visible: list[JSON] = []
    shown: dict[int, int] = {}  # a marker -> what the visitor sees of it
    for reader, offset in sorted((await store.read_markers(conv.id)).items()):
        kind, _, who = reader.partition(":")
        if kind not in (ClientKind.VISITOR.value, ClientKind.AGENT.value) or not who:
            continue  # not a reader the hub writes
        if session.kind is ClientKind.VISITOR:
            if kind == ClientKind.VISITOR.value and (
                who != session.visitor_id or who != conv.visitor_id
            ):
                continue
            # The visitor's own marker is stored lowered (one stored earlier may not be).
            if offset not in shown:
                shown[offset] = await visible_upto(store, conv, offset)
            offset = shown[offset]
        visible.append({"by": {"kind": kind, "id": who}, "offset": offset})
    return visible


async def visible_upto(store: Store, conv: Conversation, offset: int) -> int:
    """The highest offset at most ``offset`` of an entry the visitor gets (0: none)."""
    if offset <= 0:
        return 0
    last = await store.entries(conv.id, before=offset + 1, limit=1, include_notes=False)
    return last[-1].offset if last else 0


async def for_visitor(store: Store, conv: Conversation, before: int, marker: int) -> int | None:
    """What the visitor is told when an agent's marker moved from ``before`` to ``marker``.

    The new marker lowered to the highest offset the visitor can see, or
    ``None`` when that is not above what the visitor was told of ``before``
    (the marker did not move, or moved across notes only): then the visitor
    gets nothing, which is the same as what it would get with no notes.
    Comparing with ``before`` itself is enough: a visible offset at most
    ``before`` is at most ``before`` lowered too.
    """
    if marker <= before:
        return None
    shown = await visible_upto(store, conv, marker)
    return shown if shown > before else None


async def read(node: Node, session: Session, frame: Frame) -> None:
    """Store a read marker and tell the conversation's followers (docs/read-receipts.md).

    No offset the visitor gets is a note's: a visitor's marker is stored
    lowered to the last entry it can see, and an agent's reaches the
    visitor lowered the same way, and only when that lowered offset grew.
    """
    conv = await node.hub.conversation(session, frame.get("conv"))
    offset = min(frame.get("offset"), conv.last_offset)
    assert session.kind is not None
    reader = reader_key(session.kind, session.author_id)
    by = {"kind": session.kind.value, "id": session.author_id}
    channel = conv_channel(conv.id)
    if session.kind is ClientKind.VISITOR:
        offset = await visible_upto(node.store, conv, offset)
        marker = await node.store.set_read(conv.id, reader, offset)
        event = {"t": "read", "conv": conv.id, "by": by, "offset": marker}
        await node.broker.publish(channel, frame_event(event))
        return
    before = (await node.store.read_markers(conv.id)).get(reader, 0)
    marker = await node.store.set_read(conv.id, reader, offset)
    event = {"t": "read", "conv": conv.id, "by": by, "offset": marker}
    await node.broker.publish(channel, frame_event(event, "agents"))
    shown = await for_visitor(node.store, conv, before, marker)
    if shown is not None:
        event = {**event, "offset": shown}
        await node.broker.publish(channel, frame_event(event, "visitors"))

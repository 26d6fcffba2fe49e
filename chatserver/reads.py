"""Read markers as a connection gets them when it starts following a conversation.

Live ``read`` events reach only the connections following a conversation at
that moment; ``snapshot`` hands a connection that starts following (hello
resume, reload, join, watch, ...) the markers stored so far, in the shape of
those events without ``t`` and ``conv``: ``{"by": {"kind", "id"}, "offset"}``.
The hub reads them after subscribing, so a marker moved later arrives as a
live event and the client keeps the larger of the two (markers only grow).

What a connection may see (docs/read-receipts.md):

* agents: every marker, the visitor's and each agent's, as stored;
* the visitor: its own marker, and each agent's lowered to the highest offset
  up to it that the visitor can see (an agent's marker may stop on a note;
  its position is not the visitor's business).  Nothing else: no other
  reader's marker, whatever the store holds.
"""

from __future__ import annotations

from .session import Session
from .store import Store
from .types import JSON, ClientKind, Conversation


def reader_key(kind: ClientKind, author_id: str) -> str:
    """The store's reader of a marker: ``"visitor:<id>"`` or ``"agent:<id>"``."""
    return f"{kind.value}:{author_id}"


async def snapshot(store: Store, conv: Conversation, session: Session) -> list[JSON]:
    """The conversation's read markers that ``session`` may see, ordered by reader."""
    visible: list[JSON] = []
    shown: dict[int, int] = {}  # an agent's marker -> what the visitor sees of it
    for reader, offset in sorted((await store.read_markers(conv.id)).items()):
        kind, _, who = reader.partition(":")
        if kind not in (ClientKind.VISITOR.value, ClientKind.AGENT.value) or not who:
            continue  # not a reader the hub writes
        if session.kind is ClientKind.VISITOR:
            if kind == ClientKind.VISITOR.value:
                if who != session.visitor_id or who != conv.visitor_id:
                    continue
            else:
                if offset not in shown:
                    shown[offset] = await _visible_upto(store, conv, offset)
                offset = shown[offset]
        visible.append({"by": {"kind": kind, "id": who}, "offset": offset})
    return visible


async def _visible_upto(store: Store, conv: Conversation, offset: int) -> int:
    """The highest offset at most ``offset`` of an entry the visitor gets (0: none)."""
    if offset <= 0:
        return 0
    last = await store.entries(conv.id, before=offset + 1, limit=1, include_notes=False)
    return last[-1].offset if last else 0

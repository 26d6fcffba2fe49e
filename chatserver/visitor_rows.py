"""Visitor rows, made lazily: ``ensure`` writes a visitor's row when it first matters.

A ``hello`` without a token gets an id and a signed token but no Store row
(``visitors.hello``); ``ensure`` writes the row when the visitor first does
something worth keeping (a post, ``attrs``, ``identify``, ``track``, a
trigger firing), with the page views this process held for it
(``held.HeldPages``).  ``current`` and ``unsaved`` give the record of a
visitor with or without its row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .conversations import CONTROL_CHANNEL, visitor_channel
from .errors import ErrorCode, FrameError
from .session import Session
from .types import Visitor

if TYPE_CHECKING:
    from .node import Node


async def ensure(node: Node, session: Session) -> None:
    """Give the session's visitor a Store row if it has none yet.

    Idempotent, also across tabs and processes (``create_visitor`` with the
    id).  The page views this process holds for the visitor (``hub.held``)
    are written with it, and a ``visitor_stored`` control event tells every
    process to write the ones it holds and to mark the visitor's connections
    as stored.  A row that would pass the site's ``--site-new-visitors``
    quota is refused with ``103 quota_exceeded`` and nothing is written.
    """
    if session.stored:
        return
    assert session.site is not None and session.visitor_id is not None
    site_id = session.site.id
    created = False
    if await node.store.get_visitor(session.visitor_id) is None:
        wait = node.quotas.new_visitors.take(site_id)
        if wait:
            raise FrameError(
                ErrorCode.QUOTA_EXCEEDED,
                f"the site takes no more new visitors this hour, retry in {wait:.0f}s",
            )
        await node.store.create_visitor(site_id, session.visitor_id)
        created = True
    session.stored = True
    await write_held(node, session.visitor_id)
    if created:
        event = {"op": "visitor_stored", "visitor": session.visitor_id}
        await node.broker.publish(CONTROL_CHANNEL, event)


async def write_held(node: Node, visitor_id: str) -> None:
    """Write the page views this process holds for a visitor that has its row now."""
    for session in node.hub.local_sessions(visitor_channel(visitor_id)):
        session.stored = True
    for view in node.held.pop(visitor_id):
        await node.store.add_page_view(visitor_id, view.url, view.title, view.referrer, ts=view.ts)


async def current(node: Node, session: Session) -> Visitor:
    """The session's visitor: its row, or an unsaved record while it has none."""
    assert session.site is not None and session.visitor_id is not None
    visitor = await node.store.get_visitor(session.visitor_id) if session.stored else None
    if visitor is not None:
        return visitor
    return unsaved(node, session.visitor_id, session.site.id)


def unsaved(node: Node, visitor_id: str, site_id: str) -> Visitor:
    """The record of a visitor without a row: its visits from the views held here."""
    views = node.held.get(visitor_id)
    return Visitor(
        id=visitor_id, site_id=site_id, created_at=0.0, visits=views[-1].visit if views else 0
    )

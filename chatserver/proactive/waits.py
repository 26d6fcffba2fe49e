"""Greetings waiting for the visitor's answer: the ``WAIT_KIND`` marks.

A conversation a trigger opened is not routed until the visitor answers;
then exactly one process (the one whose ``delete_doc`` removes the mark)
routes it like a new conversation (``route``).  At start the restored queue
gives back the waiting ones (``restore``); one the visitor never answers is
closed by the periodic ``sweep`` once the visitor is gone and ``WAIT_LIMIT``
has passed.  ``waiting`` is the engine's set of conversation ids this process
believes are marked.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ..errors import StoreError
from ..presence import visitors_key
from ..store import VISIT_GAP
from ..types import Conversation, ConversationId, ConvState, SiteId
from .names import PROACTIVE_TAG, WAIT_KIND

if TYPE_CHECKING:
    from ..node import Node

SWEEP_EVERY = 300.0
WAIT_LIMIT = float(VISIT_GAP)  # an unanswered proactive chat is closed after this, visitor gone


def unanswered(conv: Conversation) -> bool:
    """A proactive conversation that may still wait for the visitor's answer."""
    return PROACTIVE_TAG in conv.tags and conv.state is ConvState.QUEUED and not conv.agents


async def restore(node: Node, waiting: set[ConversationId]) -> None:
    """Take unanswered proactive conversations out of the restored queue."""
    store, router = node.store, node.router
    for site in await store.list_sites():
        for doc in await store.list_docs(site.id, WAIT_KIND):
            waiting.add(doc.id)
            await router.remove(doc.id)
            if await store.get_doc(site.id, WAIT_KIND, doc.id) is None:
                # Answered on another process meanwhile: it belongs in the queue.
                conv = await store.get_conversation(doc.id)
                if conv is not None and conv.state is ConvState.QUEUED and not conv.agents:
                    await router.submit(conv, None)


async def route(node: Node, site_id: SiteId, conv_id: ConversationId) -> None:
    """The visitor answered a greeting: route its conversation like a new one."""
    conv = await node.store.get_conversation(conv_id)
    if conv is None or conv.state is not ConvState.QUEUED or conv.agents:
        return  # closed, or an agent took it already
    visitor = await node.store.get_visitor(conv.visitor_id)
    site = await node.hub.site(site_id)
    await node.convs.enqueue_new(site, conv, visitor.last_agent_id if visitor else None)


async def sweep(node: Node, waiting: set[ConversationId], now: float) -> None:
    """Close proactive conversations nobody answered whose visitor is gone."""
    store = node.store
    known = set(waiting)  # marked before the listing: forget those now gone
    listed: set[ConversationId] = set()
    for site in await store.list_sites():
        docs = await store.list_docs(site.id, WAIT_KIND)
        listed.update(d.id for d in docs)
        stale = [d for d in docs if now - float(d.data.get("at", 0.0)) > WAIT_LIMIT]
        if not stale:
            continue
        present = await node.presence.members(visitors_key(site.id))
        for doc in stale:
            if doc.data.get("visitor") in present:
                continue
            if not await store.delete_doc(site.id, WAIT_KIND, doc.id):
                continue  # answered or swept by another process
            waiting.discard(doc.id)
            conv = await store.get_conversation(doc.id)
            if conv is not None and unanswered(conv):
                with contextlib.suppress(StoreError):
                    await node.convs.close(site, conv.id, {"kind": "system"})
    waiting.difference_update(known - listed)

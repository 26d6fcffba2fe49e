"""Erase one visitor: everything stored about a person, deleted for good.

``erase`` works on the sources alone (the store, the blobs, the recordings
index and the archive index: what ``chatserver privacy erase`` has);
``erase_live`` is what a serving node does, around it, so that nothing of
the person is left in any process either:

1. their open conversations are closed (agents see "closed", the router
   lets them go);
2. the Store forgets the visitor and marks the id erased, so a widget that
   comes back with its old token gets a new id;
3. every process closes the visitor's sockets (``4007 erased``, the widget
   reconnects as a new visitor) and drops what it held for them (page views
   of a visitor without a row);
4. after a short wait for recording batches under way (``SETTLE``), the
   Store is erased again (whatever arrived meanwhile), their recordings are
   deleted with their chunks, the archive index forgets the conversations,
   and the backends make the deleted bytes unreadable in their files
   (``Store.scrub``).

What the reports keep is said in ``ErasureStore`` and docs/privacy.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..conversations import CONTROL_CHANNEL
from ..presence import visitors_key
from ..store import Erased
from ..types import ConvState, SiteId, Visitor
from .export import Sources

if TYPE_CHECKING:
    from archive.index import ArchiveIndex

    from ..node import Node

log = logging.getLogger("chatserver.privacy")

SETTLE = 1.0  # seconds for batches already on their way when the sockets closed


@dataclass
class Result:
    """What an erasure removed, for the page, the command line and the audit trail."""

    erased: Erased
    recordings: int = 0

    def counts(self) -> dict[str, int]:
        return {**self.erased.counts(), "recordings": self.recordings}


async def erase(
    src: Sources,
    archive: ArchiveIndex,
    site_id: SiteId,
    visitors: Sequence[Visitor],
    *,
    keep_facts: bool = True,
) -> Result:
    """Delete every record of ``visitors`` (of ``site_id``) from every backend."""
    from recordings import retention

    result = Result(Erased())
    for visitor in visitors:
        if visitor.site_id != site_id:
            raise ValueError(f"visitor {visitor.id} is not of site {site_id}")
        done = await src.store.erase_visitor(visitor.id, keep_facts=keep_facts)
        for att in done.attachments:
            await src.blobs.delete(att.blob_key)
        result.recordings += await retention.delete_visitor(src.recordings, src.blobs, visitor.id)
        await archive.forget(site_id, done.conversations)
        result.erased.add(done)
    if not keep_facts and result.erased.conversations:
        await src.store.rebuild_cells(site_id)
    await src.store.scrub()
    log.info("erased %d visitor records of site %s: %s", len(visitors), site_id, result.counts())
    return result


async def erase_live(
    node: Node, site_id: SiteId, visitors: Sequence[Visitor], *, keep_facts: bool = True
) -> Result:
    """``erase`` on a serving node: live sockets, caches and open chats too (module docstring)."""
    site = await node.hub.site(site_id)
    by = {"kind": "system", "reason": "erased"}
    for visitor in visitors:
        conv = await node.store.current_conversation(visitor.id)
        if conv is not None and conv.state is not ConvState.CLOSED:
            await node.convs.close(site, conv.id, by)
    first = Erased()
    for visitor in visitors:
        first.add(await node.store.erase_visitor(visitor.id, keep_facts=keep_facts))
    ids = [v.id for v in visitors]
    forget_visitors(node, ids)
    await node.broker.publish(CONTROL_CHANNEL, {"op": "erased", "visitors": ids, "from": node.id})
    await asyncio.sleep(SETTLE)
    for visitor_id in ids:  # the page they were on, as the site's visitors list had it
        await node.presence.drop(visitors_key(site_id), visitor_id)
    await node.archive.flush()
    await node.recordings.ingest.tails.seal_now()
    for att in first.attachments:
        await node.blobs.delete(att.blob_key)
    await node.archive.index.forget(site_id, first.conversations)
    result = await erase(
        Sources.of(node), node.archive.index, site_id, visitors, keep_facts=keep_facts
    )
    result.erased.add(first)
    return result


def forget_visitors(node: Node, visitor_ids: Sequence[str]) -> int:
    """Close this process's sockets of the visitors and drop what it holds of them."""
    from ..conversations import visitor_channel
    from ..errors import CloseCode
    from ..types import ClientKind

    closed = 0
    for visitor_id in visitor_ids:
        node.held.pop(visitor_id)
        for session in node.hub.local_sessions(visitor_channel(visitor_id)):
            if session.kind is not ClientKind.VISITOR or session.visitor_id != visitor_id:
                continue
            session.close(CloseCode.ERASED, "erased on request: reconnect as a new visitor")
            closed += 1
    return closed

"""Custom events a shop tracks for a visitor (``$chat.push(["track", name, props])``).

A ``track`` frame names the event (1..64 characters) and may carry ``props``
(validated like ``attrs``).  The event is stored in the visitor's history
(the newest ``MAX_VISITOR_EVENTS`` are kept) and the site's agents get a
``visitor`` frame carrying it in ``event``, as they do for page views.

Events are rate limited per connection with their own token bucket
(``TRACK_BURST`` at once, then ``TRACK_PER_SECOND``), on top of the
connection's frame rate: an event over it gets ``102 rate_limited`` and is
not stored.
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING

from ..conversations import frame_event, site_channel
from ..errors import ErrorCode, FrameError
from ..handlers.visitors import visitor_record
from ..protocol import wire
from ..protocol.codec import TokenBucket
from ..protocol.frames import Frame
from ..session import Session
from ..visitor_rows import ensure

if TYPE_CHECKING:
    from ..node import Node

TRACK_PER_SECOND = 1.0
TRACK_BURST = 20.0

_buckets: weakref.WeakKeyDictionary[Session, TokenBucket] = weakref.WeakKeyDictionary()


async def track(node: Node, session: Session, frame: Frame) -> None:
    assert session.site is not None and session.visitor_id is not None
    clock = time.monotonic()
    bucket = _buckets.get(session)
    if bucket is None:
        bucket = _buckets[session] = TokenBucket(TRACK_PER_SECOND, TRACK_BURST, clock)
    if not bucket.take(clock):
        raise FrameError(
            ErrorCode.RATE_LIMITED, f"too many events, retry in {bucket.retry_after():.1f}s"
        )
    await ensure(node, session)
    event = await node.store.add_visitor_event(
        session.visitor_id, frame.get("name").strip(), frame.get("props") or {}
    )
    session.send(wire.ok(frame.rid))
    visitor = await node.store.get_visitor(session.visitor_id)
    if visitor is None:
        return
    views = await node.store.page_views(visitor.id, limit=1)
    out = {
        "t": "visitor",
        "visitor": visitor_record(visitor, views[0] if views else None),
        "event": event.to_wire(),
    }
    await node.broker.publish(site_channel(session.site.id), frame_event(out, "agents"))

"""The frames of the widget's features, by client kind, for the hub's dispatch.

Each feature lives in its module: ``offline`` (the offline form), ``ratings``
(satisfaction), ``attachments`` (files), ``tracking`` (custom events) and
``identity`` (``identify`` with verification).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import attachments, identity, offline, ratings, tracking

if TYPE_CHECKING:
    from .hub import Handler

VISITOR_HANDLERS: dict[str, Handler] = {
    "identify": identity.identify,
    "offline": offline.offline,
    "rate": ratings.rate,
    "attach": attachments.attach_visitor,
    "track": tracking.track,
}

AGENT_HANDLERS: dict[str, Handler] = {
    "attach": attachments.attach_agent,
}

"""The frames of visitors and agents: what each kind of client may ask, and the answers.

``visitors.py`` serves the widget's connection (``hello``, ``send``,
``typing``, ``page``, ``attrs``, ...), ``agents.py`` the console's (``hello``,
``join``, ``send``, ``note``, ``transfer``, ``close``, ...), ``reads.py`` the
read markers both share.  Each handler takes the hub, the session and the
validated frame (``protocol/frames.py``) and raises ``FrameError`` for the
client.  ``install`` hooks them into a hub (the composition root,
``node.py``, calls it; so do tests that build a hub by hand); the widget's
optional features are hooked in by ``features.install``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..types import ClientKind
from . import agents, reads, start, visitors

if TYPE_CHECKING:
    from ..node import Node


def install(node: Node) -> None:
    """Serve visitors' and agents' hellos and frames on ``hub`` (once, before it starts)."""
    node.hub.add_hello(ClientKind.VISITOR, visitors.hello)
    node.hub.add_hello(
        ClientKind.AGENT, lambda h, session, frame, origin, headers: agents.hello(h, session, frame)
    )
    for frame_type, handler in visitors.HANDLERS.items():
        node.hub.add_handler(ClientKind.VISITOR, frame_type, handler)
    for frame_type, handler in agents.HANDLERS.items():
        node.hub.add_handler(ClientKind.AGENT, frame_type, handler)
    node.hub.add_handler(ClientKind.AGENT, "start", start.start)
    for kind in (ClientKind.VISITOR, ClientKind.AGENT):
        node.hub.add_handler(kind, "read", reads.read)
    node.hub.add_resync("agent", lambda agent_id: agents.resync(node, agent_id))
    node.hub.add_resync("visitor", lambda visitor_id: visitors.resync(node, visitor_id))
    node.hub.add_resync("site", lambda site_id: agents.resync_site(node, site_id))
    node.hub.on_disconnect(lambda session: agents.forget(node, session))

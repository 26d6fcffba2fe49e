"""What a chatserver process serves beyond chat itself, installed at build time.

The hub (``hub.py``) holds this process's connections, channels, fan-out,
recovery and frame dispatch, and imports no feature; the visitors' and
agents' own frames are ``handlers/``.  ``install`` hooks every feature into
the hub through its hooks (``add_handler``, ``add_op``, ``add_channel``,
``add_resync``, ``on_disconnect``, ``add_service``) and the conversation
events (``events.py``); the composition root (``node.py``) calls it after
``handlers.install``, and so do tests that build a hub by hand.

* the widget's features by frame: ``offline`` (the offline form), ``rate``
  (``ratings.py``), ``attach`` (``attachments/``: also the signed file URLs
  in entries and the sweep of unposted uploads), ``track``
  (``tracking.py``), ``identify`` (``identity.py``);
* ``control`` (``control.py``): admin changes and sign-outs from every
  process, the periodic re-check of agent sockets;
* proactive triggers (``proactive/``): the engine, as a listener of the
  conversation events;
* co-browsing (``cobrowse.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from .. import control
from ..conversations import CONTROL_CHANNEL
from ..mail.transcript import transcript_frame
from ..proactive import Proactive
from ..session import Session
from ..types import ClientKind
from . import attachments, identity, offline, ratings, tracking
from .cobrowse import Cobrowse

if TYPE_CHECKING:
    from ..hub import Handler
    from ..node import Node

VISITOR_HANDLERS: dict[str, Handler] = {
    "identify": identity.identify,
    "offline": offline.offline,
    "rate": ratings.rate,
    "attach": attachments.attach_visitor,
    "track": tracking.track,
    "transcript": transcript_frame,  # the conversation by e-mail (mail/)
}

AGENT_HANDLERS: dict[str, Handler] = {
    "attach": attachments.attach_agent,
}


def install(node: Node) -> None:
    """Hook every feature into ``hub`` (once, after ``handlers.install``, before it starts)."""
    for frame_type, handler in VISITOR_HANDLERS.items():
        node.hub.add_handler(ClientKind.VISITOR, frame_type, handler)
    for frame_type, handler in AGENT_HANDLERS.items():
        node.hub.add_handler(ClientKind.AGENT, frame_type, handler)

    # Proactive triggers: the engine follows conversations through their
    # events (a visitor's post of any kind answers a greeting).  Reached as
    # ``hub.triggers`` at call time, so a test may put its own engine there.
    node.triggers = Proactive(node)
    node.hub.add_service(lambda: node.triggers.start(), lambda: node.triggers.close())
    node.convs.events.listen(
        "triggers",
        lambda event: node.triggers.on_event(event),
        lambda event: node.triggers.wants(event),
    )

    async def triggers_disconnect(session: Session) -> None:
        node.triggers.disconnect(session)

    node.hub.on_disconnect(triggers_disconnect)

    # The control channel: every process applies admin changes and sign-outs.
    node.hub.add_channel(
        CONTROL_CHANNEL, lambda event: control.apply(node, event), lambda _: control.resync(node)
    )
    if node.session_check > 0:
        node.hub.add_service(lambda: _spawn(node, control.recheck_loop(node)), None)

    # Files: signed URLs in entries, and the sweep of unposted uploads.
    node.convs.wire = lambda entry: attachments.with_url(entry.to_wire(), node.signer)
    if node.blobs is not None and node.quotas.config.upload_ttl > 0:
        node.hub.add_service(lambda: _spawn(node, attachments.sweeper(node)), None)

    # Co-browsing.
    node.cobrowse = Cobrowse()
    node.cobrowse.install(node)


async def _spawn(node: Node, coro: Awaitable[None]) -> None:
    """Start a background loop as the hub's task (the hub cancels it on close)."""
    node.hub.spawn(coro)

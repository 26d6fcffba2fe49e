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
from ..proactive import Proactive
from ..session import Session
from ..types import ClientKind
from . import attachments, identity, offline, ratings, tracking
from .cobrowse import Cobrowse

if TYPE_CHECKING:
    from ..hub import Handler, Hub

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


async def _nothing() -> None:
    """A service's close when the hub's own task cancellation is enough."""


def install(hub: Hub) -> None:
    """Hook every feature into ``hub`` (once, after ``handlers.install``, before it starts)."""
    for frame_type, handler in VISITOR_HANDLERS.items():
        hub.add_handler(ClientKind.VISITOR, frame_type, handler)
    for frame_type, handler in AGENT_HANDLERS.items():
        hub.add_handler(ClientKind.AGENT, frame_type, handler)

    # Proactive triggers: the engine follows conversations through their
    # events (a visitor's post of any kind answers a greeting).  Reached as
    # ``hub.triggers`` at call time, so a test may put its own engine there.
    hub.triggers = Proactive(hub)
    hub.add_service(lambda: hub.triggers.start(), lambda: hub.triggers.close())
    hub.convs.events.listen(
        "triggers",
        lambda event: hub.triggers.on_event(event),
        lambda event: hub.triggers.wants(event),
    )

    async def triggers_disconnect(session: Session) -> None:
        hub.triggers.disconnect(session)

    hub.on_disconnect(triggers_disconnect)

    # The control channel: every process applies admin changes and sign-outs.
    hub.add_channel(
        CONTROL_CHANNEL, lambda event: control.apply(hub, event), lambda _: control.resync(hub)
    )
    if hub.session_check > 0:
        hub.add_service(lambda: _spawn(hub, control.recheck_loop(hub)), _nothing)

    # Files: signed URLs in entries, and the sweep of unposted uploads.
    hub.convs.wire = lambda entry: attachments.with_url(entry.to_wire(), hub.signer)
    if hub.blobs is not None and hub.quotas.config.upload_ttl > 0:
        hub.add_service(lambda: _spawn(hub, attachments.sweeper(hub)), _nothing)

    # Co-browsing.
    hub.cobrowse = Cobrowse()
    hub.cobrowse.install(hub)


async def _spawn(hub: Hub, coro: Awaitable[None]) -> None:
    """Start a background loop as the hub's task (the hub cancels it on close)."""
    hub.spawn(coro)

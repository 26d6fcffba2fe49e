"""The co-browse page: ``/console/cobrowse/<conv>`` (docs/cobrowse.md).

The agent sees the visitor's page live (``@rrweb/replay`` from the widget
build's replay bundle), asks for it and stops it, and points and highlights.
The page's JS module (``static/cobrowse.js``) opens its own agent WebSocket
with a ``ws_token`` like the chat workspace does; the hub checks every frame
again (membership, the co-browse state).

Only agents and admins who are members of the conversation open it.  The
replayed page is the shop's, so the policy lets images, styles, fonts and
media come from the site's allowed origins (any http(s) origin when the site
allows every origin); scripts stay ``'self'`` only, and rrweb's sandbox (no
``allow-scripts``) keeps the shop's out of the replay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver.types import Role, Site

from .assets import widget_asset
from .auth import guard
from .i18n import _
from .web import render

if TYPE_CHECKING:
    from chatserver.node import Node


def replay_csp(site: Site | None) -> str:
    """The page's Content-Security-Policy: the default one, opened for the shop's
    images, styles, fonts and media (never for scripts or connections)."""
    origins = [o.rstrip("/") for o in (site.allowed_origins if site else ()) if o != "*"]
    if not origins or (site is not None and "*" in site.allowed_origins):
        shop = "http: https:"
    else:
        shop = " ".join(o for o in origins if o.startswith(("http://", "https://")))
    return (
        "default-src 'self'; script-src 'self'; "
        f"style-src 'self' 'unsafe-inline' {shop}; img-src 'self' data: blob: {shop}; "
        f"font-src 'self' data: {shop}; media-src 'self' blob: {shop}; "
        "connect-src 'self' ws: wss:; frame-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


@guard(Role.AGENT, Role.ADMIN)
async def cobrowse_page(request: Request) -> Response:
    node: Node = request.app.state.node
    agent = request.state.login.agent
    conv = await node.store.get_conversation(request.path_params["conv"])
    if conv is None or conv.site_id != agent.site_id:
        return render(
            request, "error.html", {"message": _("No such conversation.")}, status_code=404
        )
    if agent.id not in conv.agents:
        return render(
            request,
            "error.html",
            {"message": _("Join the conversation first: only its agents can view the page.")},
            status_code=403,
        )
    site = await node.store.get_site(agent.site_id)
    visitor = await node.store.get_visitor(conv.visitor_id)
    return render(
        request,
        "cobrowse.html",
        {
            "conv": conv,
            "visitor_name": (visitor.name if visitor and visitor.name else _("the visitor")),
            "ws_token": node.hub.agent_token(request.state.login.grant),
            "replay_url": widget_asset("replay"),
        },
        csp=replay_csp(site),
    )


routes: list[BaseRoute] = [
    Route("/cobrowse/{conv}", cobrowse_page, name="console_cobrowse"),
]

"""The chat workspace (``home``) and the small JSON endpoints its JS modules use.

The workspace talks to the hub over the WebSocket protocol (docs/protocol.md)
with an agent token the page carries; these endpoints serve what is not part
of the protocol:

* ``POST /console/api/token``: a fresh agent token for the WebSocket, so a
  workspace open for longer than a token lives reconnects without a reload
  (a state-changing method, so it needs the session's CSRF token);
* ``GET /console/api/canned``: the site's canned responses,
  ``[{shortcut, text}]`` sorted by shortcut;
* ``GET /console/api/agents``: the site's agents who take chats, with their
  status from presence (``offline`` when not connected), for transfers and
  invitations, and ``avatar``, the URL of their picture or ``null``
  (``avatars.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chatserver.handlers.agents import agents_key
from chatserver.types import Role

from . import alert_prefs, avatars
from .assets import widget_asset
from .auth import guard
from .cobrowse import replay_csp
from .web import CHAT_ROLES, render, security_headers

if TYPE_CHECKING:
    from chatserver.node import Node

CANNED_KIND = "canned"


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def _json(data: Any) -> Response:
    return security_headers(JSONResponse(data))


@guard(*CHAT_ROLES)
async def home(request: Request) -> Response:
    node = _node(request)
    agent = request.state.login.agent
    site = await node.store.get_site(agent.site_id)
    return render(
        request,
        "home.html",
        {
            "site": site,
            "ws_token": node.hub.agent_token(request.state.login.grant),
            "alerts": await alert_prefs.prefs(node, agent),
            "replay_url": widget_asset("replay"),  # the rewind's player (chat/rewind.js)
        },
        csp=replay_csp(site),  # the rewind shows the shop's styles and images, never scripts
    )


@guard(*CHAT_ROLES)
async def token(request: Request) -> Response:
    return _json({"token": _node(request).hub.agent_token(request.state.login.grant)})


@guard(*CHAT_ROLES)
async def canned(request: Request) -> Response:
    """Canned responses of the agent's site; malformed documents are skipped."""
    agent = request.state.login.agent
    found = []
    for doc in await _node(request).store.list_docs(agent.site_id, CANNED_KIND):
        shortcut, text = doc.data.get("shortcut"), doc.data.get("text")
        if isinstance(shortcut, str) and isinstance(text, str) and shortcut and text:
            found.append({"shortcut": shortcut, "text": text})
    found.sort(key=lambda c: c["shortcut"].lower())
    return _json(found)


@guard(*CHAT_ROLES)
async def agents(request: Request) -> Response:
    """The site's agents who take chats, with ``status`` from presence."""
    node = _node(request)
    me = request.state.login.agent
    online = await node.presence.members(agents_key(me.site_id))
    pictures = await avatars.urls(node, me.site_id)
    listed = [
        {
            "id": a.id,
            "name": a.name,
            "role": a.role.value,
            "departments": list(a.departments),
            "status": str(online[a.id].get("status", "online")) if a.id in online else "offline",
            "avatar": pictures.get(a.id),
        }
        for a in await node.store.list_agents(me.site_id)
        if not a.disabled and a.role is not Role.ANALYST
    ]
    listed.sort(key=lambda a: a["name"].lower())
    return _json(listed)


routes: list[BaseRoute] = [
    Route("/", home, name="console_home"),
    Route("/api/token", token, methods=["POST"], name="console_api_token"),
    Route("/api/canned", canned, name="console_api_canned"),
    Route("/api/agents", agents, name="console_api_agents"),
]

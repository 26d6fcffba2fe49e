"""How the workspace gets an agent's attention, chosen per agent and kept on the
server (a site document of kind ``alerts``, id the agent's), so the choice follows
them to another browser.

* ``sound``: a short beep for new chats and messages (on by default);
* ``desktop``: desktop notifications (once the browser allows them) for ``new``
  chats only (the default), ``all`` (new chats and visitors' messages) or ``none``.

Set on the profile page (``POST /console/profile/alerts``, a form) or from the
workspace's Sound box (``POST /console/api/alerts``, JSON ``{sound, desktop}``
with the ``X-CSRF-Token`` header; a malformed body gets 400 and changes nothing).
``static/chat/alerts.js`` follows them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chatserver.types import Agent

from .admin.common import done, form_data, me, node_of
from .auth import guard
from .i18n import _
from .web import CHAT_ROLES, security_headers

if TYPE_CHECKING:
    from chatserver.node import Node

KIND = "alerts"
DESKTOP = ("new", "all", "none")
DEFAULTS: dict[str, Any] = {"sound": True, "desktop": "new"}
PROFILE = "/console/profile"


def clean(data: Any) -> dict[str, Any] | None:
    """Valid preferences from ``data`` (missing keys keep their defaults), or ``None``."""
    if not isinstance(data, dict) or set(data) - set(DEFAULTS):
        return None
    sound, desktop = data.get("sound", DEFAULTS["sound"]), data.get("desktop", DEFAULTS["desktop"])
    if not isinstance(sound, bool) or desktop not in DESKTOP:
        return None
    return {"sound": sound, "desktop": desktop}


async def prefs(node: Node, agent: Agent) -> dict[str, Any]:
    doc = await node.store.get_doc(agent.site_id, KIND, agent.id)
    return (clean(doc.data) if doc else None) or dict(DEFAULTS)


async def save(node: Node, agent: Agent, chosen: dict[str, Any]) -> None:
    await node.store.put_doc(agent.site_id, KIND, agent.id, chosen)


@guard(*CHAT_ROLES)
async def api_alerts(request: Request) -> Response:
    """``POST /console/api/alerts``: change some of the preferences; all of them back."""
    node, agent = node_of(request), me(request)
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    current = await prefs(node, agent)
    chosen = clean({**current, **body}) if isinstance(body, dict) else None
    if chosen is None:
        error = {"error": "bad_prefs", "message": "expected {sound: bool, desktop: new|all|none}"}
        return security_headers(JSONResponse(error, status_code=400))
    await save(node, agent, chosen)
    return security_headers(JSONResponse(chosen))


@guard(*CHAT_ROLES)
async def profile_alerts(request: Request) -> Response:
    """The profile page's form: a checkbox and a choice of three."""
    node, agent = node_of(request), me(request)
    form = await form_data(request)
    desktop = form.get("desktop")
    chosen = clean({"sound": form.get("sound") == "on", "desktop": desktop})
    if chosen is None:
        return done(request, PROFILE, _("Choose new chats, everything or nothing."))
    await save(node, agent, chosen)
    return done(request, PROFILE, _("Saved your notifications."))


routes: list[BaseRoute] = [
    Route("/api/alerts", api_alerts, methods=["POST"], name="console_api_alerts"),
    Route("/profile/alerts", profile_alerts, methods=["POST"], name="console_profile_alerts"),
]

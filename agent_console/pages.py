"""The console's pages.  The chat workspace is ``home``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver.hub import Hub

from .auth import guard
from .web import CHAT_ROLES, render


@guard(*CHAT_ROLES)
async def home(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    agent = request.state.login.agent
    site = await hub.store.get_site(agent.site_id)
    return render(request, "home.html", {"site": site, "ws_token": hub.agent_token(agent)})


routes: list[BaseRoute] = [
    Route("/", home, name="console_home"),
]

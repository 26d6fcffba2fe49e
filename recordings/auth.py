"""Who may read recordings: the one place the replay API asks.

Analysts and admins, signed in to the console (its session cookie, see
``agent_console/auth.py``), or an API client sending an agent token from
``POST /api/login`` as ``Authorization: Bearer <token>``.  Everyone else is
refused: 401 without credentials, 403 for a role that may not read them.
Reads are scoped to the agent's own site by the endpoints.  The rewind
(``rewind.py``) is the one exception, with a rule of its own: a conversation's
agents see the last seconds of its visitor's recording.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request

from agent_console.auth import current_login
from chatserver.types import Agent, Role

if TYPE_CHECKING:
    from chatserver.node import Node

READERS = frozenset({Role.ANALYST, Role.ADMIN})


async def signed_in(request: Request) -> Agent:
    """The agent behind ``request`` (session cookie or bearer token), any role;
    else ``HTTPException(401)``."""
    agent: Agent | None = None
    login = await current_login(request)
    if login is not None:
        agent = login.agent
    else:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            node: Node = request.app.state.node
            agent = await node.hub.agent_from_token(token.strip())
            if agent is not None and agent.disabled:
                agent = None
    if agent is None:
        raise HTTPException(401, "sign in first")
    return agent


async def require_analyst(request: Request) -> Agent:
    """The agent behind ``request`` if it may read recordings; else ``HTTPException``."""
    agent = await signed_in(request)
    if agent.role not in READERS:
        raise HTTPException(403, "your role may not read recordings")
    return agent

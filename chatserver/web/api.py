"""The agents' sign-in API: ``POST /api/login`` and ``POST /api/logout``.

A token from ``/api/login`` opens agent WebSockets (``hello`` with
``token``); ``/api/logout`` ends that sign-in everywhere.  Failed sign-ins
are throttled per address and per email (``logins.LoginThrottle``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import control, logins
from ..node import Node


async def login(request: Request) -> Response:
    """Exchange an agent's email and password for a WebSocket token (a new sign-in)."""
    node: Node = request.app.state.node
    throttle: logins.LoginThrottle = request.app.state.node.login_throttle
    try:
        body = await request.json()
        email, password = str(body["email"]), str(body["password"])
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": "send JSON with 'email' and 'password'"}, status_code=400)
    # Counted before the password check: concurrent guesses get no more checks.
    attempt = await throttle.attempt(
        throttle.keys(request.client.host if request.client else "", email)
    )
    if attempt.wait:
        return JSONResponse(
            {"error": "too many attempts"},
            status_code=429,
            headers={"Retry-After": str(int(attempt.wait) + 1)},
        )
    agent = await logins.sign_in(node.store, email, password)
    if agent is None:
        known = await node.store.agent_by_email(email) if email else None
        if known is not None:
            await node.audit.from_request(request, known, "login.failed", detail={"via": "api"})
        return JSONResponse({"error": "wrong email or password"}, status_code=401)
    await throttle.succeeded(attempt)
    await node.audit.from_request(request, agent, "login", detail={"via": "api"})
    return JSONResponse(
        {
            "token": node.hub.agent_token(await logins.grant(node.store, agent)),
            "agent": {"id": agent.id, "name": agent.name, "role": agent.role.value},
        }
    )


async def logout(request: Request) -> Response:
    """End the sign-in of the agent token in ``Authorization: Bearer <token>``.

    The console's sign-out, for API clients: the token's session is revoked
    in the Store (so the token, and any copy of it, is refused from now on,
    on every process) and its open agent sockets close with ``4106``
    everywhere (``control.session_ended``).  Answers 204, also when the
    sign-in had ended already (signing out twice is harmless); 401 for a
    missing, forged or expired token.
    """
    node: Node = request.app.state.node
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    grant = logins.from_token(node.signer, token.strip()) if scheme.lower() == "bearer" else None
    if grant is None:
        return JSONResponse(
            {"error": "send a valid agent token as 'Authorization: Bearer <token>'"},
            status_code=401,
        )
    await control.session_ended(node, grant)
    return Response(status_code=204)

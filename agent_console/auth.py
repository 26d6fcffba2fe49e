"""Console access: login, the session cookie, CSRF and the role guard.

* **Session cookie** ``chat_session``: a sign-in (``chatserver.logins.Grant``)
  signed with the server secret (``security.Signer``),
  ``console.<agent>.<expiry>.<session id>.<generation>``.  It is HttpOnly,
  SameSite=Lax, Path=/ and Secure when the console is served over HTTPS.
  Every request checks it against the Store, so every process of a Redis
  deployment agrees: it stops working when it expires (12 h), when the agent
  is disabled, when it is signed out (its session id is revoked, copies of
  the cookie included) and when all the agent's sessions are ended (sign out
  everywhere, a password change, disabling: the agent's session generation
  goes up, for good).  Agent tokens for the WebSocket handed out by a page
  carry the same sign-in and end with it.
* **CSRF**: every state-changing request (any method but GET, HEAD,
  OPTIONS) must carry the session's token, as the form field ``csrf`` or the
  header ``X-CSRF-Token``; the token is an HMAC of the session id, so it
  cannot be computed without the server secret and dies with the session.
  A request whose ``Origin`` is another site is refused as well.  The login
  form has its own token, bound to a pre-session cookie (login CSRF).
* **Login attempts** are throttled per client address and per email (the
  same ``logins.LoginThrottle`` as ``POST /api/login``, counted in the Store
  before the password check so that every process shares it and concurrent
  guesses get no more checks), and checked by ``logins.sign_in`` (off the
  event loop; outdated hashes upgraded).
* **Roles**: ``guard(...)`` names the roles a page admits; others get 403.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from chatserver import control, logins
from chatserver.logins import Grant
from chatserver.types import Agent, Role

from . import i18n
from .i18n import N_, _
from .web import ALL_ROLES, render, security_headers

if TYPE_CHECKING:
    from chatserver.node import Node

SESSION_COOKIE = "chat_session"
LOGIN_COOKIE = "chat_login"
SESSION_TTL = logins.SESSION_TTL
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Login:
    """The signed-in agent of a request, their sign-in and the session's CSRF token."""

    agent: Agent
    grant: Grant
    csrf: str


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def set_session(
    response: Response, request: Request, agent: Agent, keep: Login | None = None
) -> None:
    """Sign ``agent`` in on ``response``: a new sign-in and its cookie.

    With ``keep`` (the request's own login), the session id and so the CSRF
    token carry over to the current generation: how the admin's browser
    survives their own password reset, which ends every session before it
    (its open pages keep working; their sockets reconnect with a new token).
    """
    node = _node(request)
    grant = await logins.grant(node.store, agent, keep.grant.session if keep else None)
    response.set_cookie(
        SESSION_COOKIE,
        node.signer.sign("console", *grant.fields()),
        max_age=max(0, grant.expiry - int(time.time())),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


async def current_login(request: Request) -> Login | None:
    """The agent whose valid session cookie came with ``request``, if any."""
    node = _node(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    grant = Grant.parse(node.signer.verify("console", token))
    if grant is None:
        return None
    agent = await node.store.get_agent(grant.agent_id)
    if agent is None or agent.disabled or await logins.ended(node.store, grant):
        return None
    return Login(agent, grant, node.signer.sign("csrf", grant.session))


def csrf_ok(request: Request, login: Login, submitted: str | None) -> bool:
    """Whether ``submitted`` is this session's CSRF token."""
    if not submitted:
        return False
    fields = _node(request).signer.verify("csrf", submitted)
    return fields is not None and fields == [login.grant.session]


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    here = urlsplit(str(request.url))
    there = urlsplit(origin)
    return (there.scheme, there.netloc) == (here.scheme, here.netloc)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") or request.url.path.startswith(
        "/console/api/"
    )


def _refuse(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return security_headers(JSONResponse({"error": message}, status_code=status))
    return render(request, "error.html", {"message": _(message)}, status_code=status)


def guard(*roles: Role) -> Callable[[Endpoint], Endpoint]:
    """Admit signed-in agents with one of ``roles`` (all roles when none given).

    A visitor without a session is sent to the login page (JSON requests get
    401); a wrong role gets 403; an unsafe method without this session's
    CSRF token, or from another origin, gets 403.  The endpoint finds the
    ``Login`` in ``request.state.login``.
    """
    admitted = frozenset(roles) or ALL_ROLES

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            login = await current_login(request)
            if login is None:
                if _wants_json(request) or request.method not in SAFE_METHODS:
                    return _refuse(request, 401, N_("sign in first"))
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/console/login?next={quote(target)}", status_code=303)
            request.state.login = login
            if not _wants_json(request):  # JSON answers carry no prose: spare the read
                chosen = await i18n.chosen(_node(request), login.agent)
                i18n.use(i18n.pick(chosen, request.headers.get("accept-language", "")))
                request.state.language = i18n.current()
            if login.agent.role not in admitted:
                return _refuse(request, 403, N_("your role may not open this page"))
            if request.method not in SAFE_METHODS:
                submitted = request.headers.get("x-csrf-token")
                if submitted is None and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")
                ):
                    form = await request.form()
                    value = form.get("csrf")
                    submitted = value if isinstance(value, str) else None
                if not same_origin(request) or not csrf_ok(request, login, submitted):
                    if request.headers.get("content-type", "").startswith("multipart/form-data"):
                        await (await request.form()).close()  # an upload's temporary file
                    return _refuse(request, 403, N_("missing or wrong CSRF token: reload the page"))
            response = await endpoint(request)
            changed = not getattr(request.state, "no_audit", False)  # not a confirmation page
            if request.method not in SAFE_METHODS and response.status_code < 400 and changed:
                await _audit_change(request, login, endpoint.__name__)
            return response

        return guarded

    return wrap


# Form fields left out of an audit entry's list of the fields sent.
_SECRET_FIELDS = frozenset({"csrf", "password", "secret", "smtp_password"})


async def _audit_change(request: Request, login: Login, name: str) -> None:
    """A console write that succeeded: its page, the fields sent (names only)."""
    fields: list[str] = []
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        fields = sorted({k for k in await request.form() if k not in _SECRET_FIELDS})
    action = f"console.{name.strip('_')}"
    await _node(request).audit.from_request(
        request, login.agent, action, request.url.path, {"fields": fields}
    )


def _safe_next(value: str | None) -> str:
    """Only a path on this server (never ``//host`` or a scheme) may follow login."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/console/"
    return value


def _home_for(agent: Agent) -> str:
    return "/console/sessions" if agent.role is Role.ANALYST else "/console/"


async def login_page(request: Request) -> Response:
    """``GET`` shows the form; ``POST`` checks it and sets the session cookie."""
    node = _node(request)
    i18n.use(i18n.from_header(request.headers.get("accept-language", "")))
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_hex(8)
    token = node.signer.sign("login", nonce)
    next_path = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if (
            login := await current_login(request)
        ) is not None and "next" not in request.query_params:
            return RedirectResponse(_home_for(login.agent), status_code=303)
        return _login_form(request, token, nonce, next_path, "", "")

    form = await request.form()
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    next_path = _safe_next(str(form.get("next") or ""))
    submitted = str(form.get("csrf") or "")
    fields = node.signer.verify("login", submitted)
    if fields != [request.cookies.get(LOGIN_COOKIE)] or not same_origin(request):
        return _login_form(
            request, token, nonce, next_path, email, _("The form expired: please try again."), 403
        )
    throttle: logins.LoginThrottle = request.app.state.node.login_throttle
    # Counted before the password check: concurrent guesses get no more checks.
    attempt = await throttle.attempt(
        throttle.keys(request.client.host if request.client else "", email)
    )
    if wait := attempt.wait:
        response = _login_form(
            request,
            token,
            nonce,
            next_path,
            email,
            _("Too many attempts: try again in %(n)s seconds.") % {"n": int(wait) + 1},
            429,
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    agent = await logins.sign_in(node.store, email, password)
    if agent is None:
        await audit_failed_login(node, request, email, "console")
        return _login_form(
            request, token, nonce, next_path, email, _("Wrong email or password."), 401
        )
    await throttle.succeeded(attempt)
    await node.audit.from_request(request, agent, "login", detail={"via": "console"})
    if next_path == "/console/":
        next_path = _home_for(agent)
    response = RedirectResponse(next_path, status_code=303)
    await set_session(response, request, agent)
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return security_headers(response)


async def audit_failed_login(node: Node, request: Request, email: str, via: str) -> None:
    """A wrong password for an agent's address goes in that agent's site's trail
    (an address nobody has names no site: nothing is written)."""
    agent = await node.store.agent_by_email(email) if email else None
    if agent is not None:
        await node.audit.from_request(request, agent, "login.failed", detail={"via": via})


def _login_form(
    request: Request,
    token: str,
    nonce: str,
    next_path: str,
    email: str,
    error: str,
    status_code: int = 200,
) -> Response:
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "next": next_path, "email": email, "error": error},
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path="/console/login",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return response


@guard()
async def logout(request: Request) -> Response:
    """Sign out: this session ends on every process (its cookie, copies of it, its tokens).

    With the form field ``everywhere`` every session of the agent ends,
    on every device, and their chat connections close.
    """
    node, login = _node(request), request.state.login
    form = await request.form()
    if form.get("everywhere"):
        await control.sessions_ended(node, login.agent.id)
    else:
        await control.session_ended(node, login.grant)

    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return security_headers(response)

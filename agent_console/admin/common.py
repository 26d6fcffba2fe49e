"""What every admin page shares: the admin's site, form data, confirmations, errors."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from chatserver.types import Agent, Site

from ..i18n import N_
from ..web import render, security_headers

if TYPE_CHECKING:
    from chatserver.node import Node

BASE = "/console/admin"
GET_POST = ["GET", "POST"]
FLASH_COOKIE = "chat_flash"
# What erasure and the retention sweep count (their keys, "_" as a space), for
# extraction: the pages translate them with ``_(kind)``.
RECORD_KINDS = (
    N_("visitors"),
    N_("conversations"),
    N_("entries"),
    N_("attachments"),
    N_("page views"),
    N_("events"),
    N_("jobs"),
    N_("recordings"),
    N_("activity"),
)


def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def me(request: Request) -> Agent:
    agent: Agent = request.state.login.agent
    return agent


async def own_site(request: Request) -> Site:
    """The admin's site, read from the Store (never the hub's cache)."""
    site = await node_of(request).store.get_site(me(request).site_id)
    assert site is not None, "an agent's site always exists"
    return site


async def form_data(request: Request) -> Any:
    return await request.form()  # parsed (and cached) by guard's CSRF check


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(data: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def done(request: Request, path: str, message: str) -> Response:
    """Redirect after a successful POST, with a confirmation for the next page."""
    response = RedirectResponse(path, status_code=303)
    token = node_of(request).signer.sign("flash", _b64(message[:300]))
    response.set_cookie(
        FLASH_COOKIE,
        token,
        max_age=60,
        path="/console",  # the admin pages, and the profile and mail pages
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return security_headers(response)


def page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """Render an admin page, showing (and clearing) a pending confirmation."""
    flash = None
    token = request.cookies.get(FLASH_COOKIE)
    if token:
        fields = node_of(request).signer.verify("flash", token)
        flash = _unb64(fields[0]) if fields and len(fields) == 1 else None
    response = render(request, template, {"flash": flash, **context}, status_code=status_code)
    if token:
        response.delete_cookie(FLASH_COOKIE, path="/console")
    return response


def missing(request: Request, message: str) -> Response:
    """A 404 page saying ``message`` ("No such agent.", translated by the caller)."""
    return render(request, "error.html", {"message": message}, status_code=404)


def script_tag(request: Request, site: Site) -> str:
    """The tag a shop pastes on its pages, for the host and scheme the admin uses."""
    return (
        f'<script src="{request.url.scheme}://{request.url.netloc}/widget.js" '
        f'data-site="{site.key}" async></script>'
    )

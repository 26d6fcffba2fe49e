"""API keys of the REST API (``chatserver/api/keys.py``): make, list, revoke.

A new key's whole value is shown once, on the answer to the form that made
it (never in a redirect or a cookie, never again); the list shows each key's
name, prefix (``csk_<site>.<id>``, not secret), when it was made and last
used.  Revoking deletes the key's record, so every process refuses it at the
next request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver.api.keys import MAX_KEYS, MAX_NAME, ApiKey
from chatserver.types import Role

from ..auth import guard
from ..confirm import confirmation_page
from ..forms import Fields, Form
from ..i18n import _
from .common import BASE, GET_POST, done, form_data, missing, node_of, own_site, page


def _when(ts: float | None) -> str:
    return "never" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _row(key: ApiKey) -> dict[str, str]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created": _when(key.created_at),
        "used": _when(key.last_used),
    }


def key_form(data: Any) -> Form:
    """A key's name: required, at most ``MAX_NAME`` printable characters."""
    form, name = Form(), Fields(data).text("name").strip()
    form.values["name"] = name
    if not name:
        form.errors["name"] = _("A name is required (what uses the key, such as CRM sync).")
    elif len(name) > MAX_NAME:
        form.errors["name"] = _("At most %(n)s characters.") % {"n": MAX_NAME}
    elif not name.isprintable():
        form.errors["name"] = _("No control characters.")
    else:
        form.clean["name"] = name
    return form


async def _page(
    request: Request, form: Form, new: str | None = None, status_code: int = 200
) -> Response:
    site = await own_site(request)
    keys = await node_of(request).api_keys.of_site(site.id)
    ctx = {
        "section": "api_keys",
        "keys": [_row(k) for k in keys],
        "form": form,
        "new_key": new,
        "limits": {"MAX_NAME": MAX_NAME, "MAX_KEYS": MAX_KEYS},
        "api_base": f"{request.url.scheme}://{request.url.netloc}/api/v1",
    }
    return page(request, "admin/api_keys.html", ctx, status_code)


@guard(Role.ADMIN)
async def api_keys(request: Request) -> Response:
    """``GET`` lists the keys; ``POST`` makes one and shows it, this once."""
    if request.method == "GET":
        return await _page(request, Form())
    node, site = node_of(request), await own_site(request)
    form = key_form(await form_data(request))
    if form.ok and len(await node.api_keys.of_site(site.id)) >= MAX_KEYS:
        form.errors["name"] = _("A site has at most %(n)s API keys: revoke one first.") % {
            "n": MAX_KEYS
        }
    if not form.ok:
        return await _page(request, form, status_code=422)
    _key, secret = await node.api_keys.create(site.id, form.clean["name"])
    return await _page(request, Form(), new=secret, status_code=201)


@guard(Role.ADMIN)
async def api_key_revoke(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    question = _("Revoke this API key? Programs using it are refused from then on.")
    if ask := await confirmation_page(request, question, _("Revoke"), f"{BASE}/api-keys"):
        return ask
    key = await node.api_keys.revoke(site.id, request.path_params["key_id"])
    if key is None:
        return missing(request, _("No such API key."))
    return done(
        request, f"{BASE}/api-keys", _("Revoked the API key %(name)s.") % {"name": key.name}
    )


routes: list[BaseRoute] = [
    Route("/admin/api-keys", api_keys, methods=GET_POST, name="admin_api_keys"),
    Route("/admin/api-keys/{key_id}/revoke", api_key_revoke, methods=["POST"]),
]

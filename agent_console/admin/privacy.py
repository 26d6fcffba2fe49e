"""Privacy: export everything stored about one visitor (an access request).

The admin names the visitor by id, by the shop's customer id or by e-mail
(every record of that person, one per browser) and downloads one zip
(``chatserver/privacy/export.py``; docs/privacy.md).  Nothing else of the
site is in it; a visitor of another site is not found.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver.privacy.export import Request as Asked
from chatserver.privacy.export import Sources, export, find
from chatserver.types import Role

from ..auth import guard
from ..forms import Form
from .common import GET_POST, form_data, node_of, own_site, page

MAX_FIELD = 320
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _privacy_form(data: dict[str, str]) -> tuple[Form, Asked]:
    form = Form(values={k: str(data.get(k, "")).strip() for k in ("visitor", "user_id", "email")})
    form.values["notes"] = data.get("notes") == "on"
    asked = Asked(*(str(form.values[k])[:MAX_FIELD] for k in ("visitor", "user_id", "email")))
    if not asked:
        form.errors["visitor"] = "Give a visitor id, a customer id or an e-mail address."
    return form, asked


@guard(Role.ADMIN)
async def privacy(request: Request) -> Response:
    site = await own_site(request)
    form = Form()
    status = 200
    if request.method == "POST":
        form, asked = _privacy_form(dict(await form_data(request)))
        if form.ok:
            node = node_of(request)
            try:
                found = await find(Sources.of(node), site.id, asked)
                data = await export(
                    Sources.of(node), site.id, asked, notes=bool(form.values["notes"])
                )
            except LookupError:
                form.errors["visitor"] = "No visitor of this site matches."
            else:
                await node.audit.from_request(
                    request,
                    request.state.login.agent,
                    "visitor.export",
                    ",".join(v.id for v in found),
                    {"notes": bool(form.values["notes"])},
                )
                who = _SAFE.sub("-", asked.visitor_id or asked.user_id or asked.email)[:60]
                return Response(
                    data,
                    media_type="application/zip",
                    headers={
                        "Content-Disposition": f'attachment; filename="visitor-{who}.zip"',
                        "Cache-Control": "no-store",
                    },
                )
        status = 422
    return page(request, "admin/privacy.html", {"section": "privacy", "form": form}, status)


routes: list[BaseRoute] = [
    Route("/admin/privacy", privacy, methods=GET_POST, name="admin_privacy"),
]

"""Privacy: export everything stored about one visitor (an access request), and
the site's retention periods.

The admin names the visitor by id, by the shop's customer id or by e-mail
(every record of that person, one per browser) and downloads one zip
(``chatserver/privacy/export.py``; docs/privacy.md).  Nothing else of the
site is in it; a visitor of another site is not found.  Erasure has a page
of its own (``erase.py``).  The retention form sets the four periods of
``chatserver/privacy/retention.py`` and shows the sweep's last run.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver import sites
from chatserver.privacy.export import Request as Asked
from chatserver.privacy.export import Sources, export, find
from chatserver.privacy.retention import RUN_DOC
from chatserver.types import Role, Site

from ..auth import guard
from ..forms import Form
from ..i18n import _
from .common import BASE, GET_POST, done, form_data, node_of, own_site, page

MAX_FIELD = 320
MAX_RETENTION = 3650
PERIODS = (
    "conversation_retention_days",
    "attachment_retention_days",
    "visitor_retention_days",
    "activity_retention_days",
)
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _privacy_form(data: dict[str, str]) -> tuple[Form, Asked]:
    form = Form(values={k: str(data.get(k, "")).strip() for k in ("visitor", "user_id", "email")})
    form.values["notes"] = data.get("notes") == "on"
    asked = Asked(*(str(form.values[k])[:MAX_FIELD] for k in ("visitor", "user_id", "email")))
    if not asked:
        form.errors["visitor"] = _("Give a visitor id, a customer id or an e-mail address.")
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
                form.errors["visitor"] = _("No visitor of this site matches.")
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
    return await _page(request, site, form, status)


async def _page(
    request: Request, site: Site, form: Form, status: int = 200, retention: Form | None = None
) -> Response:
    if retention is None:
        retention = Form(values={k: getattr(site.settings, k) for k in PERIODS})
    run = await node_of(request).store.get_doc(site.id, *RUN_DOC)
    last = None
    if run is not None:
        at = datetime.fromtimestamp(float(run.data.get("at", 0)), UTC)
        deleted = run.data.get("deleted") or {}
        last = {
            "when": at.strftime("%Y-%m-%d %H:%M UTC"),
            "deleted": [(k.replace("_", " "), n) for k, n in deleted.items() if n],
        }
    ctx = {
        "section": "privacy",
        "form": form,
        "retention": retention,
        "last_run": last,
        "recording_days": site.settings.recording_retention_days,
        "audit_days": site.settings.audit_retention_days,
    }
    return page(request, "admin/privacy.html", ctx, status)


@guard(Role.ADMIN)
async def retention(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    data = await form_data(request)
    form = Form(values={k: str(data.get(k, "")).strip() or "0" for k in PERIODS})
    for k in PERIODS:
        raw = str(form.values[k])
        if not raw.isdigit() or int(raw) > MAX_RETENTION:
            form.errors[k] = _("A number of days, 0 to %(n)s.") % {"n": MAX_RETENTION}
    if not form.ok:
        return await _page(request, site, Form(), 422, retention=form)
    days = [int(str(form.values[k])) for k in PERIODS]
    settings = replace(
        site.settings,
        conversation_retention_days=days[0],
        attachment_retention_days=days[1],
        visitor_retention_days=days[2],
        activity_retention_days=days[3],
    )
    await sites.save(node, replace(site, settings=settings))
    return done(request, f"{BASE}/privacy", _("Saved. Older data is deleted within the hour."))


routes: list[BaseRoute] = [
    Route("/admin/privacy", privacy, methods=GET_POST, name="admin_privacy"),
    Route("/admin/privacy/retention", retention, methods=["POST"], name="admin_privacy_retention"),
]

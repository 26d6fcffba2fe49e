"""The audit trail page: who signed in, read a transcript or a replay, exported a
visitor, changed settings (chatserver/audit/; docs/privacy.md, "Audit trail").

``GET /console/admin/audit`` lists the site's entries newest first, 100 a
page, filtered by person, action, target and dates; ``?format=csv`` downloads
what the filters select (at most ``CSV_LIMIT`` entries).  ``POST
/console/admin/audit/retention`` sets how many days entries are kept.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver import sites
from chatserver.audit import AuditEntry, AuditQuery
from chatserver.types import Role

from ..auth import guard
from ..forms import Form
from ..i18n import _
from .common import BASE, done, form_data, node_of, own_site, page

PAGE = 100
CSV_LIMIT = 50_000
MAX_RETENTION = 3650


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _query(request: Request, site_id: str) -> tuple[AuditQuery, dict[str, str], str]:
    q = request.query_params
    values = {
        k: (q.get(k) or "").strip()[:200] for k in ("actor", "action", "target", "since", "until")
    }
    since, until = _day(values["since"]), _day(values["until"])
    error = ""
    if (values["since"] and since is None) or (values["until"] and until is None):
        error = _("Dates are YYYY-MM-DD.")
    query = AuditQuery(
        site_id,
        actor=values["actor"],
        action=values["action"],
        target=values["target"],
        since=datetime(since.year, since.month, since.day, tzinfo=UTC).timestamp()
        if since
        else None,
        until=(
            datetime(until.year, until.month, until.day, tzinfo=UTC) + timedelta(days=1)
        ).timestamp()
        if until
        else None,
    )
    return query, values, error


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cell(value: str) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is quoted with '."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv(entries: list[AuditEntry]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time", "actor", "name", "action", "target", "address", "detail"])
    for e in entries:
        row = [_when(e.at), e.actor, e.actor_name, e.action, e.target, e.address, str(e.detail)]
        writer.writerow([_cell(v) for v in row])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="audit.csv"',
            "Cache-Control": "no-store",
        },
    )


@guard(Role.ADMIN)
async def audit_page(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    query, values, error = _query(request, site.id)
    before = (request.query_params.get("before") or "")[:40]
    if request.query_params.get("format") == "csv" and not error:
        return _csv(await node.audit.log.entries(query, limit=CSV_LIMIT))
    entries = [] if error else await node.audit.log.entries(query, before, PAGE + 1)
    more = len(entries) > PAGE
    entries = entries[:PAGE]
    ctx = {
        "section": "audit",
        "entries": [{**e.to_json(), "when": _when(e.at)} for e in entries],
        "values": values,
        "error": error,
        "next": entries[-1].id if more and entries else "",
        "retention": Form(values={"days": site.settings.audit_retention_days}),
    }
    return page(request, "admin/audit.html", ctx, 422 if error else 200)


@guard(Role.ADMIN)
async def audit_retention(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    raw = str((await form_data(request)).get("days", "")).strip()
    if not raw.isdigit() or int(raw) > MAX_RETENTION:
        form = Form(
            values={"days": raw},
            errors={"days": _("A number of days, 0 to %(n)s.") % {"n": MAX_RETENTION}},
        )
        ctx = {
            "section": "audit",
            "entries": [],
            "values": {},
            "error": "",
            "next": "",
            "retention": form,
        }
        return page(request, "admin/audit.html", ctx, 422)
    settings = replace(site.settings, audit_retention_days=int(raw))
    await sites.save(node, replace(site, settings=settings))
    return done(request, f"{BASE}/audit", "Saved. Older entries are deleted within the hour.")


routes: list[BaseRoute] = [
    Route("/admin/audit", audit_page, name="admin_audit"),
    Route(
        "/admin/audit/retention", audit_retention, methods=["POST"], name="admin_audit_retention"
    ),
]

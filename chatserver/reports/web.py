"""``/console/reports`` and ``/console/api/reports/...``: the reports page and API.

Mounted under ``/console`` next to the console's pages; every route goes
through the console's role guard.  Admins and analysts see the whole site;
an agent sees only the conversations it was in (the ``agent`` filter is
forced to itself).

``GET /console/reports``                      the page (filters in the query)
``GET /console/api/reports``                  every table as one JSON document
``GET /console/api/reports/{table}.json``     one table: ``{"columns", "rows"}``
``GET /console/api/reports/{table}.csv``      the same as a CSV download

Query parameters (all optional): ``since`` and ``until`` (``YYYY-MM-DD``,
days of the site's time zone, both included; default the last 7 days),
``agent`` (an agent id), ``department``, ``tag``.  A bad one is a 400 with
``{"error": ...}`` naming it.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from agent_console.auth import guard
from agent_console.i18n import N_, _
from agent_console.web import render, security_headers
from chatserver.types import Role

from . import svg
from .service import MAX_DAYS, TABLES, Period, Report, report, site_hours

if TYPE_CHECKING:
    from chatserver.node import Node

READERS = (Role.ADMIN, Role.ANALYST, Role.AGENT)
DEFAULT_DAYS = 7
FILTERS = ("since", "until", "agent", "department", "tag")


class BadFilter(ValueError):
    """A filter the report cannot run with: ``str()`` in English (the JSON and CSV
    endpoints), ``translated()`` in the page's language."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message % values)
        self.message, self.values = message, values

    def translated(self) -> str:
        return _(self.message) % self.values


def _day(raw: str, label: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadFilter(N_("%(label)s must be a date (YYYY-MM-DD)"), label=label) from None


async def _query(request: Request, only: str | None = None) -> tuple[Report, dict[str, str]]:
    """Run the report the query asks for; raises ``BadFilter``."""
    node: Node = request.app.state.node
    me = request.state.login.agent
    q = request.query_params
    values = {k: (q.get(k) or "").strip()[:100] for k in FILTERS}
    hours = await site_hours(node.store, me.site_id)
    tz = hours.timezone if hours is not None else "UTC"
    today = datetime.now(ZoneInfo(tz)).date()
    last = _day(values["until"], "until") if values["until"] else today
    first = (
        _day(values["since"], "since")
        if values["since"]
        else last - timedelta(days=DEFAULT_DAYS - 1)
    )
    if first > last:
        raise BadFilter(N_("since must not be after until"))
    if (last - first).days + 1 > MAX_DAYS:
        raise BadFilter(N_("a report covers at most %(n)s days"), n=MAX_DAYS)
    if me.role is Role.AGENT:
        values["agent"] = me.id
    values["since"], values["until"] = first.isoformat(), last.isoformat()
    result = await report(
        node.store,
        me.site_id,
        Period(first, last, tz),
        agent=values["agent"] or None,
        department=values["department"] or None,
        tag=values["tag"] or None,
        only=only,
    )
    return result, values


def _json(data: Any, status: int = 200) -> Response:
    return security_headers(JSONResponse(data, status_code=status))


def _cell(value: object) -> object:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def _document(result: Report, values: dict[str, str]) -> dict[str, Any]:
    return {
        "period": {
            "since": values["since"],
            "until": values["until"],
            "timezone": result.period.tz,
        },
        "filters": {k: values[k] for k in ("agent", "department", "tag") if values[k]},
        "overview": result.overview,
        "previous": result.previous,
        "tables": {name: t.to_json() for name, t in result.tables.items()},
        "seconds": round(result.seconds, 4),
    }


@guard(*READERS)
async def api_all(request: Request) -> Response:
    try:
        result, values = await _query(request)
    except BadFilter as exc:
        return _json({"error": str(exc)}, 400)
    return _json(_document(result, values))


@guard(*READERS)
async def api_table(request: Request) -> Response:
    name, fmt = request.path_params["name"], request.path_params["fmt"]
    if fmt not in ("json", "csv") or (name not in TABLES and name != "overview"):
        return _json({"error": f"no such table; tables: overview, {', '.join(TABLES)}"}, 404)
    try:
        result, values = await _query(request, only=name)
    except BadFilter as exc:
        return _json({"error": str(exc)}, 400)
    if name == "overview":
        columns: tuple[str, ...] = ("metric", "period", "previous")
        rows: list[tuple[object, ...]] = [
            (k, v, result.previous.get(k)) for k, v in result.overview.items()
        ]
    else:
        columns, rows = result.tables[name].columns, result.tables[name].rows
    if fmt == "json":
        return _json({"table": name, "columns": list(columns), "rows": rows})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows([_cell(v) for v in row] for row in rows)
    filename = f"{name}-{values['since']}-{values['until']}.csv"
    response = Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
    return security_headers(response)


def _fmt(value: object, kind: str = "") -> str:
    """A figure for the page: ``kind`` "s" a duration, "%" a share."""
    if value is None:
        return "-"
    if kind == "s" and isinstance(value, int | float):
        secs = round(float(value))
        return f"{secs // 60}m {secs % 60:02d}s" if secs >= 60 else f"{secs}s"
    if kind == "%" and isinstance(value, int | float):
        return f"{100 * float(value):.0f}%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


@guard(*READERS)
async def page(request: Request) -> Response:
    node: Node = request.app.state.node
    me = request.state.login.agent
    site = await node.store.get_site(me.site_id)
    agents = await node.store.list_agents(me.site_id)
    try:
        result, values = await _query(request)
    except BadFilter as exc:
        values = {k: (request.query_params.get(k) or "")[:100] for k in FILTERS}
        return render(
            request,
            "reports.html",
            {
                "errors": [exc.translated()],
                "filters": values,
                "r": None,
                # the filter form needs these too (without them the page was a 500)
                "own_only": me.role is Role.AGENT,
                "agents": [] if me.role is Role.AGENT else agents,
                "departments": site.departments if site else (),
            },
            status_code=400,
        )
    sat = {str(r[0]): int(r[1]) for r in result.tables["satisfaction"].rows}  # type: ignore[call-overload]
    query = urlencode({k: v for k, v in values.items() if v})
    return render(
        request,
        "reports.html",
        {
            "errors": [],
            "filters": values,
            "r": result,
            "fmt": _fmt,
            "query": query,
            "own_only": me.role is Role.AGENT,
            "agents": [] if me.role is Role.AGENT else agents,
            "departments": site.departments if site else (),
            "charts": {
                "daily": svg.daily_bars(result.tables["daily"].rows),
                "heatmap": svg.heatmap(result.tables["heatmap"].rows),
                "satisfaction": svg.rating_bar(sat),
            },
        },
    )


routes: list[BaseRoute] = [
    Route("/reports", page, name="console_reports"),
    Route("/api/reports", api_all, name="reports_api"),
    Route("/api/reports/{name:str}.{fmt:str}", api_table, name="reports_table"),
]

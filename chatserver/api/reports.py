"""Reading reports: every table of a period, or one (``reports/service.py``).

The same figures as the console's reports page and its API
(``/console/api/reports``), for the key's whole site.  ``since`` and
``until`` are days of the site's time zone (``YYYY-MM-DD``, both included;
default the last 7 days), at most ``MAX_DAYS`` apart.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from ..protocol.frames import Field
from ..reports.service import MAX_DAYS, TABLES, Period, Report, report, site_hours
from . import params
from .endpoint import Caller, json
from .errors import invalid, not_found

DEFAULT_DAYS = 7
_FILTERS = (
    Field("since", str, False, max_len=10),
    Field("until", str, False, max_len=10),
    params.id_field("agent", False),
    params.id_field("department", False),
    Field("tag", str, False, max_len=32),
)


def _day(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid(f"parameter {name!r} must be a date (YYYY-MM-DD)") from None


async def _report(request: Request, caller: Caller, only: str | None) -> tuple[Report, Any]:
    q = params.query(request, *_FILTERS)
    hours = await site_hours(caller.node.store, caller.site.id)
    tz = hours.timezone if hours is not None else "UTC"
    last = _day(q["until"], "until") if "until" in q else datetime.now(ZoneInfo(tz)).date()
    first = _day(q["since"], "since") if "since" in q else last - timedelta(DEFAULT_DAYS - 1)
    if first > last:
        raise invalid("'since' must not be after 'until'")
    if (last - first).days + 1 > MAX_DAYS:
        raise invalid(f"a report covers at most {MAX_DAYS} days")
    result = await report(
        caller.node.store,
        caller.site.id,
        Period(first, last, tz),
        agent=q.get("agent"),
        department=q.get("department"),
        tag=q.get("tag"),
        only=only,
    )
    head = {
        "period": {"since": first.isoformat(), "until": last.isoformat(), "timezone": tz},
        "filters": {k: q[k] for k in ("agent", "department", "tag") if k in q},
    }
    return result, head


async def get_report(request: Request, caller: Caller) -> Response:
    """Every table, with the period's overview and the previous period's."""
    result, head = await _report(request, caller, None)
    return json(
        {
            **head,
            "overview": result.overview,
            "previous": result.previous,
            "tables": {name: t.to_json() for name, t in result.tables.items()},
        }
    )


async def get_table(request: Request, caller: Caller) -> Response:
    """One table: ``{"table", "columns", "rows"}`` with the period."""
    name = request.path_params["table"]
    if name not in TABLES:
        raise not_found(f"table; tables: {', '.join(TABLES)}")
    result, head = await _report(request, caller, name)
    return json({**head, **result.tables[name].to_json()})

"""The analysts' pages: the session list and the replay page (docs/recordings.md).

``routes`` is mounted under ``/console`` next to the console's own pages
(``chatserver/web/app.py``); every page goes through the console's role guard:

``GET  /console/sessions``              the site's recordings, newest first,
                                        filtered (a GET form) and paged with
                                        the replay API's cursor
``POST /console/sessions/delete``       delete one visitor's recordings
                                        (admins, CSRF; from the list filtered
                                        by that visitor)
``GET  /console/sessions/{id}``         the replay page; its JS module
                                        (``static/replay.js``) reads the replay
                                        API for marks and events

The list reads the index directly; a recording of another site, or one with
no events yet, is answered 404 like one that does not exist.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from agent_console.assets import widget_asset
from agent_console.auth import guard
from agent_console.cobrowse import replay_csp
from agent_console.confirm import confirmation_page
from agent_console.i18n import N_, _
from agent_console.web import render, security_headers
from chatserver.types import Conversation, Recording, Role

from .api import CHAT_WINDOW, _cursor, _parse_cursor
from .frustration import MAX_SESSIONS, MIN_VISITS, rank

if TYPE_CHECKING:
    from chatserver.node import Node

    from . import Recordings

PAGE_SIZE = 50
TRANSCRIPT_ENTRIES = 500  # entries of each conversation shown beside the player
TRANSCRIPTS = 20  # conversations of the visitor looked at, and shown at most
FILTERS = ("since", "until", "url", "min_duration", "had_chat", "visitor", "signal")
SIGNAL_LABELS = {
    "rage": N_("rage clicks"),
    "dead": N_("dead clicks"),
    "error": N_("JavaScript errors"),
    "request": N_("failed requests"),
    "abandon": N_("abandoned forms"),
}


def _service(request: Request) -> Recordings:
    service: Recordings = request.app.state.node.recordings
    return service


def _date(raw: str, end_of_day: bool) -> float:
    """A date (``YYYY-MM-DD``, the form's date input) or ISO time, UTC if unzoned."""
    when = datetime.fromisoformat(raw)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if end_of_day and len(raw) == 10:
        return when.timestamp() + 86400.0
    return when.timestamp()


class Filters:
    """The list's filters as the form sent them, checked; ``errors`` says what was not."""

    def __init__(self, request: Request) -> None:
        q = request.query_params
        self.values: dict[str, str] = {name: (q.get(name) or "").strip() for name in FILTERS}
        self.errors: list[str] = []
        self.since = self._time("since", _("From"), end_of_day=False)
        self.until = self._time("until", _("To"), end_of_day=True)
        self.url = self.values["url"] or None
        self.visitor = self.values["visitor"] or None
        self.min_duration: float | None = None
        if self.values["min_duration"]:
            try:
                self.min_duration = max(0.0, float(self.values["min_duration"]))
            except ValueError:
                self.errors.append(_("Minimum duration must be a number of seconds."))
        self.signal = self.values["signal"] or None
        if self.signal is not None and self.signal not in SIGNAL_LABELS:
            self.errors.append(
                _("Signal must be one of: %(kinds)s.") % {"kinds": ", ".join(SIGNAL_LABELS)}
            )
            self.signal = None
        chat = self.values["had_chat"]
        self.had_chat = {"yes": True, "no": False}.get(chat)
        if chat and self.had_chat is None:
            self.errors.append(_("Had a chat must be yes or no."))

    def _time(self, name: str, label: str, *, end_of_day: bool) -> float | None:
        raw = self.values[name]
        if not raw:
            return None
        try:
            return _date(raw, end_of_day)
        except ValueError:
            self.errors.append(_("%(label)s must be a date (YYYY-MM-DD).") % {"label": label})
            return None

    def query(self, **extra: str) -> str:
        """The filters (those set) and ``extra`` as a query string."""
        pairs = {k: v for k, v in self.values.items() if v}
        return urlencode({**pairs, **extra})


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _row(rec: Recording) -> dict[str, Any]:
    return {
        "id": rec.id,
        "start": datetime.fromtimestamp(rec.started, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "duration": _duration(rec.duration),
        "pages": rec.pages,
        "clicks": rec.clicks,
        "visitor": rec.visitor_id,
        "chat": rec.conv_id is not None,
    }


@guard(Role.ADMIN, Role.ANALYST)
async def session_list(request: Request) -> Response:
    agent = request.state.login.agent
    filters = Filters(request)
    rows: list[Recording] = []
    more = False
    cursor_raw = request.query_params.get("cursor")
    try:
        cursor = _parse_cursor(cursor_raw)
    except HTTPException:
        filters.errors.append(_("That page link is broken: start from the first page."))
        cursor = None
    if not filters.errors:
        rows = await _service(request).index.list_recordings(
            agent.site_id,
            since=filters.since,
            until=filters.until,
            url=filters.url,
            min_duration=filters.min_duration,
            had_chat=filters.had_chat,
            visitor_id=filters.visitor,
            before=cursor,
            limit=PAGE_SIZE + 1,
            signal=filters.signal,
        )
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
    return render(
        request,
        "sessions.html",
        {
            "filters": filters.values,
            "errors": filters.errors,
            "rows": [_row(r) for r in rows],
            "next_query": filters.query(cursor=_cursor(rows[-1])) if more and rows else None,
            "first_query": filters.query() if cursor_raw else None,
            "can_delete": agent.role is Role.ADMIN and bool(filters.visitor),
            "deleted": request.query_params.get("deleted"),
            "signal_labels": SIGNAL_LABELS,
        },
        status_code=400 if filters.errors else 200,
    )


@guard(Role.ADMIN)
async def delete_visitor(request: Request) -> Response:
    """Delete every recording of one visitor of the admin's site; back to the list."""
    agent = request.state.login.agent
    form = await request.form()
    visitor_id = str(form.get("visitor") or "")
    node: Node = request.app.state.node
    service = _service(request)
    visitor = await node.store.get_visitor(visitor_id) if visitor_id else None
    # A visitor who was recorded but never wrote has no row (visitor rows are
    # made lazily): its recordings say whose site it is.
    recorded = await service.index.visitor_recordings(visitor_id) if visitor_id else []
    site_id = visitor.site_id if visitor else next((r.site_id for r in recorded), None)
    if site_id is None or site_id != agent.site_id:
        return render(request, "error.html", {"message": _("No such visitor.")}, status_code=404)
    question = _("Delete all recordings of this visitor?")
    back = "/console/sessions?" + urlencode({"visitor": visitor_id})
    if ask := await confirmation_page(request, question, _("Delete"), back):
        return ask
    count = await service.delete_visitor(visitor_id)
    target = "/console/sessions?" + urlencode({"visitor": visitor_id, "deleted": str(count)})
    return security_headers(RedirectResponse(target, status_code=303))


@guard(Role.ADMIN, Role.ANALYST)
async def replay_page(request: Request) -> Response:
    agent = request.state.login.agent
    service = _service(request)
    rec = await service.index.get_recording(request.path_params["rec_id"])
    if rec is None or rec.site_id != agent.site_id or rec.events == 0:
        return render(request, "error.html", {"message": _("No such recording.")}, status_code=404)
    node: Node = request.app.state.node
    site = await node.store.get_site(agent.site_id)
    await node.audit.from_request(request, agent, "recording.watch", rec.id)
    return render(
        request,
        "replay.html",
        {
            "rec": _row(rec),
            "replay_url": widget_asset("replay"),
            "convs": await _transcripts(node, rec, request.query_params.get("conv"), agent.site_id),
        },
        csp=replay_csp(site),
    )


async def _transcripts(
    node: Node, rec: Recording, conv_id: str | None, site_id: str
) -> list[dict[str, Any]]:
    """The conversations shown beside the player: ``?conv=`` (the archive's link), the
    one the recording is linked to, and every other conversation of its visitor during
    the session (a minute either side, as the replay API's ``chat``), oldest first;
    each message with its moment on the recording's clock."""
    low, high = rec.started - CHAT_WINDOW, rec.ended + CHAT_WINDOW
    wanted = {c for c in (conv_id, rec.conv_id) if c}
    convs = {}
    for conv in await node.store.visitor_conversations(rec.visitor_id, limit=TRANSCRIPTS):
        during = conv.created_at <= high and (conv.closed_at is None or conv.closed_at >= low)
        if during or conv.id in wanted:
            convs[conv.id] = conv
    for cid in wanted - convs.keys():
        found = await node.store.get_conversation(cid)
        if found is not None:
            convs[cid] = found
    shown = sorted((c for c in convs.values() if c.site_id == site_id), key=lambda c: c.created_at)
    return [await _transcript(node, rec, conv) for conv in shown[:TRANSCRIPTS]]


async def _transcript(node: Node, rec: Recording, conv: Conversation) -> dict[str, Any]:
    entries = await node.store.entries(conv.id, after=0, limit=TRANSCRIPT_ENTRIES)
    lines = []
    for e in entries:
        at = e.ts * 1000.0 - rec.skew_ms
        lines.append(
            {
                "offset": e.offset,
                "author": e.author_name or e.author_kind.value,
                "body": e.body,
                "note": e.kind.value == "note",
                "at": at if rec.first_ts <= at <= rec.last_ts else None,
                "time": datetime.fromtimestamp(e.ts, UTC).strftime("%H:%M:%S"),
            }
        )
    started = datetime.fromtimestamp(conv.created_at, UTC).strftime("%Y-%m-%d %H:%M")
    return {"id": conv.id, "started": started, "lines": lines}


@guard(Role.ADMIN, Role.ANALYST)
async def frustration_page(request: Request) -> Response:
    """Pages ranked by frustration over the last ``days`` (``frustration.py``)."""
    agent = request.state.login.agent
    raw = (request.query_params.get("days") or "7").strip()
    days = int(raw) if raw.isdigit() and 1 <= int(raw) <= 90 else 0
    error = "" if days else _("Days must be a whole number from 1 to 90.")
    until = time.time()
    ranking = None
    if days:
        ranking = await rank(_service(request).index, agent.site_id, until - days * 86400, until)
    rows = []
    for r in ranking.rows if ranking else []:
        rows.append(
            {
                "url": r.url,
                "visits": r.visits,
                "score": f"{r.score:.1f}",
                "cells": [
                    {
                        "kind": k,
                        "rate": f"{r.per_100(k):.1f}" if r.signals[k] else "",
                        "link": "/console/sessions?" + urlencode({"signal": k, "url": r.url})
                        if r.signals[k]
                        else "",
                    }
                    for k in SIGNAL_LABELS
                ],
            }
        )
    return render(
        request,
        "frustration.html",
        {
            "days": raw if error else days,
            "error": error,
            "rows": rows,
            "labels": SIGNAL_LABELS,
            "sessions": ranking.sessions if ranking else 0,
            "capped": ranking.capped if ranking else False,
            "max_sessions": MAX_SESSIONS,
            "min_visits": MIN_VISITS,
        },
        status_code=400 if error else 200,
    )


routes: list[BaseRoute] = [
    Route("/sessions", session_list, name="console_sessions"),
    Route("/sessions/frustration", frustration_page, name="console_frustration"),
    Route("/sessions/delete", delete_visitor, methods=["POST"], name="console_sessions_delete"),
    Route("/sessions/{rec_id:str}", replay_page, name="console_replay"),
]

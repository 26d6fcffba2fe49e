"""The archive's console pages (docs/archive.md), mounted under ``/console``:

``GET /console/conversations``         every conversation of the signed-in
                                       user's site, newest first: a GET form
                                       of filters and words, highlighted
                                       matches, keyset pages (``cursor``)
``GET /console/conversations/{id}``    one conversation: the whole transcript
                                       with notes, tags, rating, the visitor
                                       panel as it was, and a link per message
                                       into the recording of that moment

Admins, analysts and agents see them (agents, as in Chatwoot, every
conversation of their site: they answer follow-ups).  A conversation of
another site is answered 404 like one that does not exist.  Bad input (a
date, a yes/no, a page link) is said above the form with status 400.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent_console.auth import guard
from agent_console.i18n import _
from agent_console.web import render
from chatserver.types import RATINGS, Conversation, ConvState, Entry, EntryKind, Recording, Role

from .query import ArchiveQuery, BadCursor, highlight, words

if TYPE_CHECKING:
    from chatserver.node import Node

PAGE_SIZE = 25
MAX_ENTRIES = 5000  # entries shown of one conversation
FILTERS = (
    "q", "state", "agent", "department", "tag", "rating", "since", "until",
    "offline", "trigger", "attachments",
)  # fmt: skip
_YES_NO = {"yes": True, "no": False}


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _date(raw: str, end_of_day: bool) -> float:
    at = datetime.fromisoformat(raw)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp() + (86400.0 if end_of_day and len(raw) == 10 else 0.0)


def parse_filters(site_id: str, values: dict[str, str]) -> tuple[ArchiveQuery, list[str]]:
    """The query the form's ``values`` ask for, and what was wrong with them."""
    errors: list[str] = []
    kw: dict[str, Any] = {}
    if values["state"]:
        try:
            kw["states"] = (ConvState(values["state"]),)
        except ValueError:
            errors.append(_("State must be queued, active or closed."))
    for name in ("agent", "department", "tag"):
        if values[name]:
            kw[name] = values[name]
    if values["rating"]:
        if values["rating"] in RATINGS:
            kw["rating"] = values["rating"]
        else:
            errors.append(_("Rating must be one of %(items)s.") % {"items": ", ".join(RATINGS)})
    for name, label, end in (("since", _("From"), False), ("until", _("To"), True)):
        if values[name]:
            try:
                kw[name] = _date(values[name], end)
            except ValueError:
                errors.append(_("%(label)s must be a date (YYYY-MM-DD).") % {"label": label})
    for name, label in (
        ("offline", _("Offline")),
        ("trigger", _("Started by a trigger")),
        ("attachments", _("Has attachments")),
    ):
        if values[name]:
            if values[name] in _YES_NO:
                kw[name] = _YES_NO[values[name]]
            else:
                errors.append(_("%(label)s must be yes or no.") % {"label": label})
    return ArchiveQuery(site_id, text=values["q"], **kw), errors


def _row(conv: Conversation, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": conv.id,
        "created": when(conv.created_at),
        "state": conv.state.value,
        "agents": [names.get(a, a) for a in conv.agents],
        "department": conv.department or "",
        "tags": list(conv.tags),
        "rating": conv.rating or "",
        "offline": conv.offline,
        "visitor": conv.visitor_id,
    }


@guard(Role.ADMIN, Role.ANALYST, Role.AGENT)
async def conversation_list(request: Request) -> Response:
    node: Node = request.app.state.node
    agent = request.state.login.agent
    q = request.query_params
    values = {name: (q.get(name) or "").strip() for name in FILTERS}
    query, errors = parse_filters(agent.site_id, values)
    hits = []
    cursor = None
    if not errors:
        try:
            page = await node.archive.index.search(query, q.get("cursor"), PAGE_SIZE)
            hits, cursor = page.hits, page.cursor
        except BadCursor:
            errors.append(_("That page link is broken: start from the first page."))
    agents = await node.store.list_agents(agent.site_id)
    names = {a.id: a.name for a in agents}
    wanted = words(values["q"])
    rows = []
    for hit in hits:
        row = _row(hit.conv, names)
        row["matches"] = [
            {"offset": o, "pieces": highlight(text, wanted), "visitor": o == 0}
            for o, text in hit.matches
        ]
        rows.append(row)
    pairs = {k: v for k, v in values.items() if v}
    return render(
        request,
        "conversations.html",
        {
            "filters": values,
            "errors": errors,
            "rows": rows,
            "agents": [{"id": a.id, "name": a.name} for a in agents],
            "ratings": RATINGS,
            "states": [s.value for s in ConvState],
            "next_query": urlencode({**pairs, "cursor": cursor}) if cursor else None,
            "first_query": urlencode(pairs) if q.get("cursor") else None,
        },
        status_code=400 if errors else 200,
    )


def recording_at(recs: list[Recording], ts: float) -> tuple[str, float] | None:
    """The recording running when the server stored ``ts`` and the moment on its clock."""
    for rec in recs:
        at = ts * 1000.0 - rec.skew_ms
        if rec.events and rec.first_ts - 2000 <= at <= rec.last_ts + 2000:
            return rec.id, min(max(at, rec.first_ts), rec.last_ts)
    return None


def transcript(entries: list[Entry], recs: list[Recording], conv_id: str) -> list[dict[str, Any]]:
    """Entries as the pages show them, with a replay link where a recording ran."""
    shown = []
    for e in entries:
        found = recording_at(recs, e.ts)
        replay = None
        if found is not None:
            replay = f"/console/sessions/{found[0]}?" + urlencode(
                {"at": f"{found[1]:.0f}", "conv": conv_id}
            )
        shown.append(
            {
                "offset": e.offset,
                "kind": e.kind.value,
                "author": e.author_name or e.author_kind.value,
                "author_kind": e.author_kind.value,
                "body": e.body,
                "at": when(e.ts),
                "replay": replay,
                "note": e.kind is EntryKind.NOTE,
            }
        )
    return shown


@guard(Role.ADMIN, Role.ANALYST, Role.AGENT)
async def conversation_page(request: Request) -> Response:
    node: Node = request.app.state.node
    agent = request.state.login.agent
    conv = await node.store.get_conversation(request.path_params["conv_id"])
    if conv is None or conv.site_id != agent.site_id:
        return render(
            request, "error.html", {"message": _("No such conversation.")}, status_code=404
        )
    entries = await node.store.entries(conv.id, after=0, limit=MAX_ENTRIES)
    await node.audit.from_request(request, agent, "conversation.read", conv.id)
    visitor = await node.store.get_visitor(conv.visitor_id)
    end = conv.closed_at or (entries[-1].ts if entries else conv.created_at)
    views = [v for v in await node.store.page_views(conv.visitor_id, 200) if v.ts <= end + 1]
    # Replays are for admins and analysts (recordings/pages.py): agents get no links.
    recs = []
    if agent.role in (Role.ADMIN, Role.ANALYST):
        recs = await node.recordings.index.visitor_recordings(conv.visitor_id)
    names = {a.id: a.name for a in await node.store.list_agents(agent.site_id)}
    return render(
        request,
        "conversation.html",
        {
            "conv": _row(conv, names),
            "rating_comment": conv.rating_comment,
            "closed": when(conv.closed_at),
            "entries": transcript(entries, recs, conv.id),
            "more": len(entries) == MAX_ENTRIES,
            "visitor": {
                "id": conv.visitor_id,
                "name": visitor.name if visitor else "",
                "email": visitor.email if visitor else "",
                "attributes": sorted((visitor.attributes if visitor else {}).items()),
            },
            "pages": [{"url": v.url, "title": v.title, "at": when(v.ts)} for v in views[:50]],
            "recordings": [r.id for r in recs if r.conv_id == conv.id and r.events],
        },
    )


routes: list[BaseRoute] = [
    Route("/conversations", conversation_list, name="console_conversations"),
    Route("/conversations/{conv_id:str}", conversation_page, name="console_conversation"),
]

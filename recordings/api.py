"""The replay API: JSON over HTTP for the analyst pages (and other clients).

Mounted at ``/console/api/recordings`` (``docs/recordings.md`` has the
reference):

``GET /``                    recordings of the analyst's site, newest first,
                             filtered and paged
``GET /{id}``                one recording: its index row, its marks (pages,
                             clicks, gaps, snapshots) and the chat messages
                             of its visitor during it
``GET /{id}/events``         events from the full snapshot at or before
                             ``from`` up to ``to``, or after ``after_seq``

Every endpoint asks ``auth.require_analyst`` first; a recording of another
site is answered 404 like one that does not exist.  Times in marks, chat
messages and events are milliseconds on the recording's clock (rrweb's);
``started`` and ``ended`` are server seconds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chatserver.types import JSON, Agent, EntryKind, Recording

from . import reader
from .auth import require_analyst
from .chunks import is_segment
from .signals import KINDS as SIGNALS

if TYPE_CHECKING:
    from . import Recordings

MAX_PAGE = 200
CHAT_WINDOW = 60.0  # seconds around a recording in which its visitor's messages count

Endpoint = Callable[[Request], Awaitable[Response]]


def json_reply(body: Any, status: int = 200) -> JSONResponse:
    """A JSON answer that no cache keeps."""
    response = JSONResponse(body, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


_json = json_reply
Handler = Callable[[Request, Agent], Awaitable[Response]]


def guarded(auth: Callable[[Request], Awaitable[Agent]]) -> Callable[[Handler], Endpoint]:
    """A decorator: ``auth`` first; every ``HTTPException`` answered as JSON ``{"error"}``."""

    def decorate(fn: Handler) -> Endpoint:
        @functools.wraps(fn)
        async def wrapped(request: Request) -> Response:
            try:
                return await fn(request, await auth(request))
            except HTTPException as exc:
                return json_reply({"error": exc.detail}, exc.status_code)

        return wrapped

    return decorate


endpoint = guarded(require_analyst)


def _service(request: Request) -> Recordings:
    service: Recordings = request.app.state.node.recordings
    return service


def _number(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be a number") from None
    if not math.isfinite(value):
        raise HTTPException(400, f"{name} must be a number")
    return value


def _time(request: Request, name: str) -> float | None:
    """Seconds since the epoch, given as a number or an ISO 8601 date (UTC if unzoned)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be seconds or an ISO 8601 date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _bool(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise HTTPException(400, f"{name} must be true or false")


def _cursor(rec: Recording) -> str:
    return f"{rec.started!r}~{rec.id}"


def _parse_cursor(raw: str | None) -> tuple[float, str] | None:
    if not raw:
        return None
    started, sep, rec_id = raw.partition("~")
    try:
        value = float(started)
    except ValueError:
        value = math.nan
    if not sep or not rec_id or not math.isfinite(value):
        raise HTTPException(400, "bad cursor")
    return value, rec_id


def _signal(request: Request) -> str | None:
    raw = request.query_params.get("signal") or None
    if raw is not None and raw not in SIGNALS:
        raise HTTPException(400, "signal must be one of " + ", ".join(SIGNALS))
    return raw


@endpoint
async def list_sessions(request: Request, agent: Agent) -> Response:
    service = _service(request)
    limit = _number(request, "limit")
    size = MAX_PAGE if limit is None else max(1, min(MAX_PAGE, int(limit)))
    rows = await service.index.list_recordings(
        agent.site_id,
        since=_time(request, "since"),
        until=_time(request, "until"),
        url=request.query_params.get("url") or None,
        min_duration=_number(request, "min_duration"),
        had_chat=_bool(request, "had_chat"),
        visitor_id=request.query_params.get("visitor") or None,
        before=_parse_cursor(request.query_params.get("cursor")),
        limit=size + 1,
        signal=_signal(request),
    )
    more = len(rows) > size
    rows = rows[:size]
    return _json(
        {
            "recordings": [r.to_wire() for r in rows],
            "next": _cursor(rows[-1]) if more and rows else None,
        }
    )


async def _recording(request: Request, agent: Agent) -> Recording:
    rec = await _service(request).index.get_recording(request.path_params["rec_id"])
    if rec is None or rec.site_id != agent.site_id or rec.events == 0:
        raise HTTPException(404, "no such recording")
    return rec


async def _chat(request: Request, rec: Recording) -> list[JSON]:
    """The visitor's chat messages during the recording, on the recording's clock."""
    store = _service(request).store
    low, high = rec.started - CHAT_WINDOW, rec.ended + CHAT_WINDOW
    found: list[JSON] = []
    for conv in await store.visitor_conversations(rec.visitor_id, limit=20):
        if conv.created_at > high or (conv.closed_at is not None and conv.closed_at < low):
            continue
        for entry in await store.entries(conv.id, limit=500, include_notes=False):
            if entry.kind is EntryKind.TEXT and low <= entry.ts <= high:
                found.append(
                    {
                        "ts": entry.ts * 1000.0 - rec.skew_ms,
                        "conv": conv.id,
                        "offset": entry.offset,
                        "from": {"kind": entry.author_kind.value, "name": entry.author_name},
                        "body": entry.body,
                    }
                )
    return sorted(found, key=lambda m: m["ts"])


@endpoint
async def one_session(request: Request, agent: Agent) -> Response:
    rec = await _recording(request, agent)
    marks = await _service(request).index.recording_marks(rec.id)
    return _json(
        {
            "recording": rec.to_wire(),
            "marks": [m.to_wire() for m in marks],
            "chat": await _chat(request, rec),
        }
    )


@endpoint
async def events(request: Request, agent: Agent) -> Response:
    service = _service(request)
    rec = await _recording(request, agent)
    after = _number(request, "after_seq")
    snapshots = await service.index.recording_marks(rec.id, ["snapshot"])
    chunks = None if is_segment(rec.blob) else await service.index.recording_chunks(rec.id)
    found = await reader.read(
        service.blobs,
        rec,
        snapshots,
        chunks=chunks,
        start=_number(request, "from"),
        to=_number(request, "to"),
        after_seq=None if after is None else int(after),
    )
    return _json(
        {
            "events": found.events,
            "start_ts": found.start_ts,
            "end_ts": found.end_ts,
            "last_seq": found.last_seq,
            "more": found.more,
        }
    )


routes: list[BaseRoute] = [
    Route("/", list_sessions, name="recordings_list"),
    Route("/{rec_id:str}", one_session, name="recordings_one"),
    Route("/{rec_id:str}/events", events, name="recordings_events"),
]

"""The rewind: the last moments of a chatting visitor's recording, in the chat.

An agent answering "the pay button does nothing" sees what just happened
without leaving the conversation: the workspace's pane asks

``GET /console/api/rewind/{conv}``         what there is to see: the visitor's
                                           latest recording, the window (its
                                           last ``rewind_seconds``, on the
                                           recording's clock) and the window's
                                           signals, clicks and pages
``GET /console/api/rewind/{conv}/events``  the events to play it

Who may: the conversation's own agents and the site's admins, while the
conversation is open, on a site that records with ``rewind_seconds`` above
0 (Admin → Site settings; 0 turns the rewind off).  The recording must have
been written around the chat (it ended no earlier than ``RECENT`` seconds
before the conversation began).  Everything else is answered like a missing
conversation (``404``) or a refusal (``403``), as JSON ``{"error"}``; where
there is simply nothing to see (off, closed, not recorded) the first
endpoint says ``{"available": false, "error"}`` and the second ``404``.
Each events read goes into the audit trail as ``recording.rewind``.

Only the window is shown, but a page can only be rebuilt from a full
snapshot, which the recorder takes at page load and every five minutes: the
events reply starts there.  Before the window it keeps only what rebuilds
the page as it stood when the window starts (the snapshot, DOM changes,
scroll positions, masked input values, viewport sizes); the visitor's
pointer, clicks and custom events before the window are left out, so the
agent sees the page, not what the visitor did before the window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver.types import JSON, Agent, Conversation, ConvState, Recording, Role

from . import reader
from .api import guarded, json_reply
from .auth import READERS, signed_in
from .chunks import is_segment
from .signals import KINDS as SIGNALS

if TYPE_CHECKING:
    from . import Recordings

RECENT = 30 * 60.0  # s: a recording that ended longer before the chat began is not "around" it
SHOWN = frozenset({*SIGNALS, "click", "page"})  # the marks a rewind lists
# rrweb: the full snapshot (2) and meta (4) events, and the incremental
# sources that shape the page's state (0 mutation, 3 scroll, 4 viewport
# resize, 5 input, 7 media, 8 style sheet rule, 13 style declaration, 15
# adopted style sheet, 16 custom element); not 1 mouse move, 2 clicks,
# 6 touch, 12 drag, 14 selection, nor custom events (5).
_FULL_SNAPSHOT, _INCREMENTAL, _META = 2, 3, 4
_STATE_SOURCES = frozenset({0, 3, 4, 5, 7, 8, 13, 15, 16})


_json = json_reply
endpoint = guarded(signed_in)  # who may see what: ``_target``


def _service(request: Request) -> Recordings:
    service: Recordings = request.app.state.node.recordings
    return service


class Unavailable(HTTPException):
    """Nothing to rewind (off, closed, not recorded): ``404`` for the events; the
    first endpoint answers ``200 {"available": false, "error"}`` instead, since the
    pane asks it whenever the visitor writes."""

    def __init__(self, detail: str) -> None:
        super().__init__(404, detail)


async def _target(request: Request, agent: Agent) -> tuple[Conversation, Recording, float, int]:
    """The conversation, its visitor's recording, the window's start (ms) and length (s)."""
    service = _service(request)
    conv = await service.store.get_conversation(request.path_params["conv_id"])
    if conv is None or conv.site_id != agent.site_id:
        raise HTTPException(404, "no such conversation")
    if agent.role is not Role.ADMIN and agent.id not in conv.agents:
        raise HTTPException(403, "join the conversation first: only its agents see the rewind")
    if conv.state is ConvState.CLOSED:
        raise Unavailable("the conversation is closed")
    site = await service.store.get_site(conv.site_id)
    seconds = site.settings.rewind_seconds if site and site.settings.recording else 0
    if seconds <= 0:
        raise Unavailable("the rewind is off for this site")
    recent = [
        r
        for r in await service.index.visitor_recordings(conv.visitor_id)
        if r.site_id == conv.site_id and r.events > 0 and r.ended >= conv.created_at - RECENT
    ]
    if not recent:
        raise Unavailable("no recording of this visitor")
    rec = max(recent, key=lambda r: (r.ended, r.id))
    start = max(rec.first_ts, rec.last_ts - seconds * 1000.0)
    return conv, rec, start, seconds


@endpoint
async def what(request: Request, agent: Agent) -> Response:
    try:
        _, rec, start, seconds = await _target(request, agent)
    except Unavailable as exc:
        return _json({"available": False, "error": exc.detail})
    marks = await _service(request).index.recording_marks(rec.id, sorted(SHOWN))
    body: JSON = {
        "available": True,
        "recording": rec.id,
        "seconds": seconds,
        "from": start,
        "to": rec.last_ts,
        "ended": rec.ended,
        "marks": [m.to_wire() for m in marks if start <= m.ts <= rec.last_ts],
        # the whole recording, for those who may open it (analysts' page)
        "replay": f"/console/sessions/{rec.id}?at={start:.0f}" if agent.role in READERS else None,
    }
    return _json(body)


def before_window(events: list[Any], start: float) -> list[Any]:
    """``events`` with what happened before ``start`` reduced to the page's state."""
    kept: list[Any] = []
    for e in events:
        if not isinstance(e, dict):
            continue
        ts = e.get("timestamp")
        if isinstance(ts, (int, float)) and ts >= start:
            kept.append(e)
            continue
        kind = e.get("type")
        data = e.get("data")
        source = data.get("source") if isinstance(data, dict) else None
        if kind in (_FULL_SNAPSHOT, _META) or (kind == _INCREMENTAL and source in _STATE_SOURCES):
            kept.append(e)
    return kept


@endpoint
async def events(request: Request, agent: Agent) -> Response:
    service = _service(request)
    _, rec, start, _ = await _target(request, agent)
    snapshots = await service.index.recording_marks(rec.id, ["snapshot"])
    chunks = None if is_segment(rec.blob) else await service.index.recording_chunks(rec.id)
    found = await reader.read(service.blobs, rec, snapshots, chunks=chunks, start=start)
    await request.app.state.node.audit.from_request(request, agent, "recording.rewind", rec.id)
    return _json(
        {
            "recording": rec.id,
            "from": start,
            "to": rec.last_ts,
            "events": before_window(found.events, start),
            "more": found.more,
        }
    )


routes: list[BaseRoute] = [
    Route("/{conv_id:str}", what, name="rewind_what"),
    Route("/{conv_id:str}/events", events, name="rewind_events"),
]

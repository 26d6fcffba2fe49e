"""What the server reads in rrweb events: checks and the index, without a DOM.

rrweb events are maps ``{type, data, timestamp}`` (``type``: 0
DomContentLoaded, 1 Load, 2 FullSnapshot, 3 IncrementalSnapshot, 4 Meta,
5 Custom, 6 Plugin; ``timestamp`` in ms).  The server never rebuilds the
page: it checks each event's envelope, counts inputs (incremental events of
source 5) and takes the marks from a few events the widget's recorder adds
for it (custom events, ``type`` 5, ``data: {tag, payload}``):

``page``    ``{url, title}``      a page load or a single-page-app route change
``click``   ``{selector, text,    a click, with a CSS selector and the visible
            actionable}``         text of what was clicked (masked on the page);
                                  ``actionable``: a button or a link
``gap``     ``{dropped}``         events the recorder dropped while offline
``error``   ``{message, source,   an uncaught error or unhandled rejection of
            frames}``             the page (message masked in the browser)
``request`` ``{method, url,       a request to the page's own origin that failed
            status}``             (``status`` 0: a network error); kept as
                                  ``endpoint`` (the URL without its query)
``submit``  ``{selector}``        a form was submitted (read by ``signals``, not kept)

and full snapshots (``type`` 2, with the ``Meta`` event just before them),
the places a replay can start from.

A batch that comes as JSON text is checked by ``summarize_json`` without
building it as Python objects: ``msgspec`` reads each event's ``type``,
``timestamp`` and the few ``data`` fields the index needs, and checks the
rest (a full snapshot's page, a mutation's nodes) only as JSON, skipping it.
Whatever that fast reading refuses is read again with ``json`` and
``summarize``, which decide (and say why), so the two paths accept exactly
the same batches: valid JSON that ``json.loads`` reads back (what the
replay API does), an array of rrweb event envelopes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from chatserver.types import RecordingMark

FULL_SNAPSHOT = 2
INCREMENTAL = 3
META = 4
CUSTOM = 5
MAX_TYPE = 6
INPUT_SOURCE = 5
MUTATION_SOURCE = 0

MAX_URL_CHARS = 2000
MAX_TITLE_CHARS = 300
MAX_SELECTOR_CHARS = 300
MAX_TEXT_CHARS = 200
MAX_MESSAGE_CHARS = 300
MAX_FRAME_CHARS = 200
MAX_FRAMES = 10


class BadEvents(ValueError):
    """A batch whose events are not rrweb events; the message says which and why."""


@dataclass(slots=True)
class Summary:
    """What one batch adds to the index (snapshot marks get their offset later)."""

    events: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    inputs: int = 0
    clicks: int = 0
    marks: list[RecordingMark] = field(default_factory=list)
    snapshots: list[tuple[int, float]] = field(default_factory=list)  # (index, ts)
    changes: list[float] = field(default_factory=list)  # DOM mutations' times (signals)
    inputs_at: list[float] = field(default_factory=list)  # inputs' times (signals)


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def summarize(events: list[Any]) -> Summary:
    """Check ``events`` and extract the index; ``BadEvents`` if one is not an rrweb event."""
    s = Summary(events=len(events))
    first = math.inf
    last = -math.inf
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise BadEvents(f"event {i} is not a map")
        kind = event.get("type")
        ts = event.get("timestamp")
        if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= MAX_TYPE:
            raise BadEvents(f"event {i}: 'type' must be an integer from 0 to {MAX_TYPE}")
        if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
            raise BadEvents(f"event {i}: 'timestamp' must be a number (ms)")
        if ts < 0:
            raise BadEvents(f"event {i}: 'timestamp' must not be negative")
        first = min(first, ts)
        last = max(last, ts)
        data = event.get("data")
        if kind == INCREMENTAL:
            source = data.get("source") if isinstance(data, dict) else None
            if source == MUTATION_SOURCE:
                s.changes.append(float(ts))
            elif source == INPUT_SOURCE:
                s.inputs += 1
                s.inputs_at.append(float(ts))
        elif kind == FULL_SNAPSHOT:
            start = i - 1 if i > 0 and events[i - 1].get("type") == META else i
            s.snapshots.append((start, float(events[start]["timestamp"])))
        elif kind == CUSTOM and isinstance(data, dict):
            _custom(s, float(ts), data.get("tag"), data.get("payload"))
    if events:
        s.first_ts, s.last_ts = float(first), float(last)
    return s


def _custom(s: Summary, ts: float, tag: Any, payload: Any) -> None:
    if not isinstance(payload, dict):
        return
    if tag == "page":
        url = _text(payload.get("url"), MAX_URL_CHARS)
        if url:
            title = _text(payload.get("title"), MAX_TITLE_CHARS)
            s.marks.append(RecordingMark("page", ts, {"url": url, "title": title}))
    elif tag == "click":
        s.clicks += 1
        selector = _text(payload.get("selector"), MAX_SELECTOR_CHARS)
        text = _text(payload.get("text"), MAX_TEXT_CHARS)
        data: dict[str, Any] = {"selector": selector, "text": text}
        if payload.get("actionable") is True:
            data["actionable"] = True
        s.marks.append(RecordingMark("click", ts, data))
    elif tag == "gap":
        dropped = payload.get("dropped")
        if isinstance(dropped, int) and not isinstance(dropped, bool) and dropped >= 0:
            s.marks.append(RecordingMark("gap", ts, {"dropped": dropped}))
    elif tag == "error":
        frames = payload.get("frames")
        s.marks.append(
            RecordingMark(
                "error",
                ts,
                {
                    "message": _text(payload.get("message"), MAX_MESSAGE_CHARS),
                    "source": _text(payload.get("source"), MAX_URL_CHARS),
                    "frames": [
                        _text(f, MAX_FRAME_CHARS) for f in frames[:MAX_FRAMES] if isinstance(f, str)
                    ]
                    if isinstance(frames, list)
                    else [],
                },
            )
        )
    elif tag == "request":
        status = payload.get("status")
        if isinstance(status, int) and not isinstance(status, bool) and 0 <= status < 1000:
            method = _text(payload.get("method"), 10).upper()
            url = _text(payload.get("url"), MAX_URL_CHARS).split("?", 1)[0]
            data = {"method": method, "endpoint": url, "status": status}
            s.marks.append(RecordingMark("request", ts, data))
    elif tag == "submit":
        s.marks.append(RecordingMark("submit", ts, {}))


# -- batches as JSON text ---------------------------------------------------------


class _Data(msgspec.Struct):
    """The fields of an event's ``data`` the index reads; the others are skipped."""

    source: Any = None
    tag: Any = None
    payload: Any = None


class _Event(msgspec.Struct):
    type: Annotated[int, msgspec.Meta(ge=0, le=MAX_TYPE)]
    timestamp: Annotated[float, msgspec.Meta(ge=0)]
    data: _Data | None = None


_DECODE = msgspec.json.Decoder(list[_Event]).decode


def _no_constant(name: str) -> Any:
    """``NaN`` and ``Infinity`` are not JSON: browsers could not read them back."""
    raise ValueError(f"{name} is not JSON")


def summarize_json(raw: bytes) -> Summary:
    """Check the JSON text of a batch (UTF-8) and extract the index, as ``summarize``.

    ``BadEvents`` if ``raw`` is not a JSON array of rrweb events.  The bytes
    must be valid UTF-8 (the encoding of a ``str``): the fast reading does not
    check the encoding of the strings it skips.
    """
    try:
        events = _DECODE(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        # Not what the fast reading takes (bad JSON, an event that is not an
        # rrweb envelope, an escape it refuses such as a lone surrogate's):
        # the full reading decides, with its reasons.
        return summarize(_loads(raw))
    s = Summary(events=len(events))
    if not events:
        return s
    first = math.inf
    last = -math.inf
    for i, event in enumerate(events):
        kind = event.type
        ts = event.timestamp
        if ts < first:
            first = ts
        if ts > last:
            last = ts
        data = event.data
        if kind == INCREMENTAL and data is not None:
            if data.source == MUTATION_SOURCE:
                s.changes.append(ts)
            elif data.source == INPUT_SOURCE:
                s.inputs += 1
                s.inputs_at.append(ts)
        elif kind == FULL_SNAPSHOT:
            start = i - 1 if i > 0 and events[i - 1].type == META else i
            s.snapshots.append((start, events[start].timestamp))
        elif kind == CUSTOM and data is not None:
            _custom(s, ts, data.tag, data.payload)
    if not math.isfinite(last):
        raise BadEvents("'timestamp' must be a number (ms)")
    s.first_ts, s.last_ts = first, last
    return s


def _loads(raw: bytes) -> list[Any]:
    try:
        events = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise BadEvents("'data' is not JSON (or the parts do not join into JSON)") from None
    if not isinstance(events, list):
        raise BadEvents("'data' must be a JSON array of events")
    return events

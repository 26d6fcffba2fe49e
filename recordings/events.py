"""What the server reads in rrweb events: checks and the index, without a DOM.

rrweb events are maps ``{type, data, timestamp}`` (``type``: 0
DomContentLoaded, 1 Load, 2 FullSnapshot, 3 IncrementalSnapshot, 4 Meta,
5 Custom, 6 Plugin; ``timestamp`` in ms).  The server never rebuilds the
page: it checks each event's envelope, counts inputs (incremental events of
source 5) and takes the marks from a few events the widget's recorder adds
for it (custom events, ``type`` 5, ``data: {tag, payload}``):

``page``   ``{url, title}``      a page load or a single-page-app route change
``click``  ``{selector, text}``  a click, with a CSS selector and the visible
                                 text of what was clicked (masked on the page)
``gap``    ``{dropped}``         events the recorder dropped while offline

and full snapshots (``type`` 2, with the ``Meta`` event just before them),
the places a replay can start from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from chatserver.types import RecordingMark

FULL_SNAPSHOT = 2
INCREMENTAL = 3
META = 4
CUSTOM = 5
MAX_TYPE = 6
INPUT_SOURCE = 5

MAX_URL_CHARS = 2000
MAX_TITLE_CHARS = 300
MAX_SELECTOR_CHARS = 300
MAX_TEXT_CHARS = 200


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
            if isinstance(data, dict) and data.get("source") == INPUT_SOURCE:
                s.inputs += 1
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
        s.marks.append(RecordingMark("click", ts, {"selector": selector, "text": text}))
    elif tag == "gap":
        dropped = payload.get("dropped")
        if isinstance(dropped, int) and not isinstance(dropped, bool) and dropped >= 0:
            s.marks.append(RecordingMark("gap", ts, {"dropped": dropped}))

"""Signals: frustration and failure found in a recording's batches as they arrive.

Pure code over what ``events.summarize`` reads of each batch, with a little
state per recording (``Watch``) carried from one batch to the next in the
process that ingests them.  The signals (docs/recordings.md, "Signals"):

``rage``     ``RAGE_CLICKS`` clicks on one element (one CSS selector) within
             ``RAGE_WINDOW`` ms: the visitor hammers something that does not
             answer.
``dead``     a click on a button or a link (the recorder's ``actionable``)
             followed by no change of the page (no DOM mutation, no
             navigation) within ``DEAD_WINDOW`` ms.
``error``    an uncaught JavaScript error or unhandled promise rejection,
             reported by the recorder (message masked in the browser, stack
             frames kept).
``request``  a request of the page to its own origin that failed (status
             500 or more, or a network error), reported by the recorder
             (URL without its query).
``abandon``  on a checkout-like page (``CHECKOUT``: cart, basket, checkout,
             payment), the visitor typed into a form and then left the page
             without submitting one.

Each becomes a mark on the recording's timeline (``RecordingMark``, with the
page's ``url``), so the session list filters on it and the replay shows it,
and the ingest tells the trigger engine at once.  A visitor's batches that
reach another process after a reconnect start a new ``Watch`` there: a rage
click split across the two is missed (rare; documented).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chatserver.types import RecordingMark

RAGE_CLICKS = 3
RAGE_WINDOW = 1000.0  # ms
DEAD_WINDOW = 1500.0  # ms
MAX_PER_BATCH = 20  # signal marks one batch may add (a page in a loop of errors)
KINDS = ("rage", "dead", "error", "request", "abandon")
CHECKOUT = re.compile(r"cart|basket|checkout|payment|/pay(\b|/)|warenkorb|cistella|carrito", re.I)


@dataclass(slots=True)
class Watch:
    """What one recording's next batches are judged against."""

    url: str = ""
    clicks: list[tuple[float, str]] = field(default_factory=list)  # recent (ts, selector)
    rage_until: dict[str, float] = field(default_factory=dict)  # selector -> quiet again at
    pending: list[tuple[float, str, str]] = field(default_factory=list)  # (ts, selector, text)
    typed: bool = False  # typed into this (checkout-like) page
    submitted: bool = False


def _mark(kind: str, ts: float, url: str, **data: object) -> RecordingMark:
    return RecordingMark(kind, ts, {"url": url, **data})


def detect(
    watch: Watch,
    marks: list[RecordingMark],
    changes: list[float],
    inputs: list[float],
) -> list[RecordingMark]:
    """The signals of one batch: ``marks`` its page/click/error/request/submit
    marks in time order, ``changes`` the times of its DOM mutations, ``inputs``
    the times of its inputs.  ``watch`` is updated for the next batch."""
    out: list[RecordingMark] = []
    changes = sorted(changes)
    inputs = sorted(inputs)
    ci = ii = 0
    for mark in sorted(marks, key=lambda m: m.ts):
        ts = mark.ts
        # what happened before this mark: changes settle pending clicks, inputs type
        while ci < len(changes) and changes[ci] <= ts:
            _changed(watch, out, changes[ci])
            ci += 1
        while ii < len(inputs) and inputs[ii] <= ts:
            watch.typed = watch.typed or bool(CHECKOUT.search(watch.url))
            ii += 1
        _expire(watch, out, ts)
        kind, data = mark.kind, mark.data
        if kind == "page":
            if watch.typed and not watch.submitted and watch.url:
                out.append(_mark("abandon", ts, watch.url))
            watch.pending.clear()  # a navigation answers every click before it
            watch.url = str(data.get("url", ""))
            watch.typed = watch.submitted = False
        elif kind == "click":
            selector = str(data.get("selector", ""))
            _click(watch, out, ts, selector)
            if data.get("actionable"):
                watch.pending.append((ts, selector, str(data.get("text", ""))))
        elif kind == "submit":
            watch.submitted = True
            watch.pending.clear()
        elif kind in ("error", "request"):
            out.append(_mark(kind, ts, watch.url, **{k: v for k, v in data.items() if k != "url"}))
    for at in changes[ci:]:
        _changed(watch, out, at)
    if inputs[ii:]:
        watch.typed = watch.typed or bool(CHECKOUT.search(watch.url))
    last = max([m.ts for m in marks] + changes[-1:] + inputs[-1:], default=0.0)
    _expire(watch, out, last)
    return out[:MAX_PER_BATCH]


def _click(watch: Watch, out: list[RecordingMark], ts: float, selector: str) -> None:
    watch.clicks = [(t, s) for t, s in watch.clicks if ts - t <= RAGE_WINDOW]
    watch.clicks.append((ts, selector))
    same = sum(1 for _, s in watch.clicks if s == selector)
    if same >= RAGE_CLICKS and ts >= watch.rage_until.get(selector, 0.0):
        out.append(_mark("rage", ts, watch.url, selector=selector, clicks=same))
        watch.rage_until[selector] = ts + RAGE_WINDOW  # one signal per burst
    if len(watch.rage_until) > 50:
        watch.rage_until = {s: t for s, t in watch.rage_until.items() if t > ts}


def _changed(watch: Watch, out: list[RecordingMark], at: float) -> None:
    """A DOM change at ``at``: the clicks just before it were answered."""
    _expire(watch, out, at)
    watch.pending = [p for p in watch.pending if p[0] > at]


def _expire(watch: Watch, out: list[RecordingMark], now: float) -> None:
    """Clicks with no change in their window by ``now`` are dead."""
    keep = []
    for ts, selector, text in watch.pending:
        if now - ts > DEAD_WINDOW:
            out.append(_mark("dead", ts, watch.url, selector=selector, text=text))
        else:
            keep.append((ts, selector, text))
    watch.pending = keep

"""Process metrics and their Prometheus text exposition (``GET /metrics``).

``Metrics`` is a bag of plain ints and pre-filled dicts that the hot paths
bump in place (``metrics.messages_stored += 1``, ``frames[t] += 1``): no
locks (the event loop is the only writer), no objects made per frame.
Gauges that the hub or other parts already know (connections, channels,
upload bytes held) are read when the page is rendered, not kept twice.

Latencies are ``histogram.Histogram``s (a bisect into fixed buckets per
observation): frame to ack, store commit, broker publish, event-loop lag
(``loop_lag.py``) and outbox deliveries (webhooks, e-mail).

``render`` (in ``web/ops.py``) writes the text format version 0.0.4 with
``Exposition``: ``# HELP`` and ``# TYPE`` once per family, then
``name{label="value"} number`` samples, label values escaped (backslash,
double quote, newline).  docs/operations.md lists every family.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping

from .errors import CloseCode, ErrorCode
from .histogram import DELIVERY_BUCKETS, LATENCY_BUCKETS, Histogram
from .protocol.frames import FRAMES
from .types import ClientKind

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Counters of one process, bumped in place by the code that sees the event.

    ``frames[kind][type]`` and ``errors[code]`` are filled with every frame
    type and error code at start, so an increment never allocates a key;
    ``closes`` (by WebSocket close code, which clients choose too) grows a key
    the first time a code is seen, once per connection at most; a code that
    is neither ours nor a standard one counts in its range's bucket
    (``close_bucket``), so clients cannot make the series unbounded.
    """

    __slots__ = (
        "agents",
        "broker_publish",
        "closes",
        "deliveries",
        "errors",
        "frame_to_ack",
        "frames",
        "loop_lag",
        "messages_duplicate",
        "messages_stored",
        "recoveries",
        "resubscribed",
        "store_commit",
        "visitors",
    )

    def __init__(self) -> None:
        self.visitors = 0  # open visitor sockets past hello
        self.agents = 0  # open agent sockets past hello
        self.frames: dict[ClientKind, dict[str, int]] = {
            kind: dict.fromkeys(types, 0) for kind, types in FRAMES.items()
        }
        self.errors: dict[int, int] = dict.fromkeys((int(c) for c in ErrorCode), 0)
        self.closes: dict[str, int] = {}
        self.messages_stored = 0  # client messages acknowledged as stored
        self.messages_duplicate = 0  # resent messages acknowledged as already stored
        # history recoveries (``since``): "resumed" when the missed entries
        # fitted the recovery window, "reset" when the client had to reload.
        self.recoveries = {"resumed": 0, "reset": 0}
        # channels the broker lost and subscribed again (caught up from the store)
        self.resubscribed = 0
        # seconds from a message frame read to its ack queued to the socket
        self.frame_to_ack = Histogram(LATENCY_BUCKETS)
        # seconds a message's durable append took (the store's commit)
        self.store_commit = Histogram(LATENCY_BUCKETS)
        # seconds a message's publish to the broker took (a Redis round trip)
        self.broker_publish = Histogram(LATENCY_BUCKETS)
        # seconds the event loop ran a due timer late (loop_lag.py)
        self.loop_lag = Histogram(LATENCY_BUCKETS)
        # seconds per outbox delivery attempt, by (job kind, outcome)
        self.deliveries: dict[tuple[str, str], Histogram] = {}

    def closed(self, code: int) -> None:
        """Count one connection that ended with WebSocket close ``code``."""
        key = close_bucket(code)
        self.closes[key] = self.closes.get(key, 0) + 1

    def delivered(self, kind: str, outcome: str, seconds: float) -> None:
        """One outbox delivery attempt of a ``kind`` job (``webhook``, ``email``, ...)
        took ``seconds``; ``outcome`` is ``ok``, ``retry`` or ``failed``."""
        hist = self.deliveries.get((kind, outcome))
        if hist is None:
            hist = self.deliveries[(kind, outcome)] = Histogram(DELIVERY_BUCKETS)
        hist.observe(seconds)


# -- exposition ----------------------------------------------------------------


def escape_label(value: str) -> str:
    """A label value as the text format wants it: ``\\``, ``"`` and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


Labels = Mapping[str, str]


class Exposition:
    """Builds one scrape's text: families in the order they are added."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[Labels, float]],
    ) -> None:
        """Add a metric family (``kind`` is ``counter`` or ``gauge``)."""
        self._lines.append(f"# HELP {name} {_escape_help(help_text)}")
        self._lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
                self._lines.append(f"{name}{{{inner}}} {_number(value)}")
            else:
                self._lines.append(f"{name} {_number(value)}")

    def one(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.family(name, kind, help_text, [({}, value)])

    def histogram(
        self, name: str, help_text: str, series: Iterable[tuple[Labels, Histogram]]
    ) -> None:
        """Add a histogram family: per series cumulative ``_bucket{le=...}``
        samples (``+Inf`` last), then ``_sum`` and ``_count``."""
        self._lines.append(f"# HELP {name} {_escape_help(help_text)}")
        self._lines.append(f"# TYPE {name} histogram")
        for labels, hist in series:
            inner = "".join(f'{k}="{escape_label(v)}",' for k, v in labels.items())
            total = 0
            for bound, total in hist.cumulative():
                le = "+Inf" if bound == float("inf") else repr(bound)
                self._lines.append(f'{name}_bucket{{{inner}le="{le}"}} {total}')
            tail = f"{{{inner[:-1]}}}" if inner else ""
            self._lines.append(f"{name}_sum{tail} {_number(hist.sum)}")
            self._lines.append(f"{name}_count{tail} {total}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def close_bucket(code: int) -> str:
    """The ``code`` label of a close code: the code itself when it is ours
    (``CloseCode``) or a standard one this server names, else its range
    (``1000-2999``, ``3000-3999``, ``4000-4999``, or ``other``).  Clients
    choose their close codes; the buckets keep them from growing the series."""
    if code in _OURS or code in _WS_CODES:
        return str(code)
    for low, high in ((1000, 2999), (3000, 3999), (4000, 4999)):
        if low <= code <= high:
            return f"{low}-{high}"
    return "other"


def close_name(code: int | str) -> str:
    """A close code's (or bucket's) name for the ``reason`` label (``"other"`` if not ours)."""
    try:
        number = int(code)
    except ValueError:
        return "other"
    try:
        return CloseCode(number).name.lower()
    except ValueError:
        return _WS_CODES.get(number, "other")


_WS_CODES = {
    1000: "normal",
    1001: "going_away",
    1002: "protocol_error",
    1005: "no_status",
    1006: "abnormal",
    1007: "invalid_data",
    1009: "too_big",
    1011: "server_error",
    1012: "service_restart",
}
_OURS = frozenset(int(c) for c in CloseCode)


# -- access ----------------------------------------------------------------------


def allowed(client_host: str | None, authorization: str, token: str | None) -> bool:
    """Whether a scrape may read ``/metrics``.

    With a ``token`` configured: only a request carrying
    ``Authorization: Bearer <token>`` (compared in constant time), from
    anywhere.  Without one: only clients on a loopback address.
    """
    if token:
        scheme, _, given = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )
    if not client_host:
        return False
    try:
        return ipaddress.ip_address(client_host).is_loopback
    except ValueError:
        return False

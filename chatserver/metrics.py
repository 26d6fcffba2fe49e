"""Process metrics and their Prometheus text exposition (``GET /metrics``).

``Metrics`` is a bag of plain ints and pre-filled dicts that the hot paths
bump in place (``metrics.messages_stored += 1``, ``frames[t] += 1``): no
locks (the event loop is the only writer), no objects made per frame.
Gauges that the hub or other parts already know (connections, channels,
upload bytes held) are read when the page is rendered, not kept twice.

``render`` writes the text format version 0.0.4: ``# HELP`` and ``# TYPE``
once per family, then ``name{label="value"} number`` samples, label values
escaped (backslash, double quote, newline).  docs/operations.md lists every
family.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping

from .errors import CloseCode, ErrorCode
from .protocol.frames import FRAMES
from .types import ClientKind

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Counters of one process, bumped in place by the code that sees the event.

    ``frames[kind][type]`` and ``errors[code]`` are filled with every frame
    type and error code at start, so an increment never allocates a key;
    ``closes`` (by WebSocket close code, which clients choose too) grows a key
    the first time a code is seen, once per connection at most.
    """

    __slots__ = (
        "agents",
        "closes",
        "errors",
        "frames",
        "messages_duplicate",
        "messages_stored",
        "recoveries",
        "resubscribed",
        "visitors",
    )

    def __init__(self) -> None:
        self.visitors = 0  # open visitor sockets past hello
        self.agents = 0  # open agent sockets past hello
        self.frames: dict[ClientKind, dict[str, int]] = {
            kind: dict.fromkeys(types, 0) for kind, types in FRAMES.items()
        }
        self.errors: dict[int, int] = dict.fromkeys((int(c) for c in ErrorCode), 0)
        self.closes: dict[int, int] = {}
        self.messages_stored = 0  # client messages acknowledged as stored
        self.messages_duplicate = 0  # resent messages acknowledged as already stored
        # history recoveries (``since``): "resumed" when the missed entries
        # fitted the recovery window, "reset" when the client had to reload.
        self.recoveries = {"resumed": 0, "reset": 0}
        # channels the broker lost and subscribed again (caught up from the store)
        self.resubscribed = 0

    def closed(self, code: int) -> None:
        """Count one connection that ended with WebSocket close ``code``."""
        self.closes[code] = self.closes.get(code, 0) + 1


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

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def close_name(code: int) -> str:
    """A close code's name for the ``reason`` label (``"other"`` if not ours)."""
    try:
        return CloseCode(code).name.lower()
    except ValueError:
        return _WS_CODES.get(code, "other")


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

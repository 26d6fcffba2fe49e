"""Logging set-up for ``chatserver serve``: plain text, or one JSON object a line.

``--log-format text`` (the default) keeps the format chatserver always had
(``time level logger message``) and uvicorn's own for its loggers.
``--log-format json`` routes every logger, uvicorn's included, through
``JsonFormatter`` to stderr, so a log shipper reads each line as one
object::

    {"time": "2026-11-23T03:14:15.926Z", "level": "ERROR", "logger": "chatserver.hub",
     "message": "store failed on msg", "exception": "Traceback (most recent call last): ..."}

``exception`` (the formatted traceback) is there only when the record has one.

Client errors (``ClientErrors``): what a client can cause at will (invalid
UTF-8 in a text frame, a request that is not HTTP, a refused WebSocket
handshake, a request cut off by its client) is logged without traceback and
at most ``limit`` lines a minute per kind, per process; the next line of a
kind says how many were left out since its last line.  ``CLIENT_ERRORS`` is
the process's limiter: chatserver's own lines go through its ``log``, and as
a filter on uvicorn's logger it limits uvicorn's and websockets' lines of
the same sort.
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
from collections.abc import Callable
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601, milliseconds),
    ``level``, ``logger``, ``message`` and, when present, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out: dict[str, Any] = {
            "time": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(level: str, fmt: str) -> dict[str, Any] | None:
    """Set up the root logger; return the ``log_config`` to give uvicorn.

    ``None`` means uvicorn's own default configuration (text).  For JSON
    the returned configuration puts the root and uvicorn's loggers on one
    stderr handler with ``JsonFormatter``.
    """
    if fmt == "text":
        logging.basicConfig(level=level.upper(), format=TEXT_FORMAT)
        return None
    if fmt != "json":
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}: {fmt!r}")
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # uvicorn's loggers stop at their own level and pass up to the root's handler.
            "uvicorn": {"handlers": [], "level": level.upper(), "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
        },
    }
    logging.config.dictConfig(config)
    return config


# uvicorn's and websockets' lines about a client's mistake, by kind.
_THEIR_CLIENT_ERRORS = {
    "Invalid HTTP request received.": "invalid_http",
    "Unsupported upgrade request.": "invalid_http",
    "Invalid UTF-8 sequence received from client.": "invalid_utf8",
    "connection rejected (%d %s)": "bad_handshake",
}


class ClientErrors(logging.Filter):
    """At most ``limit`` log lines per ``window`` seconds for each kind of client error.

    Per process and per kind (``invalid_utf8``, ``invalid_http``,
    ``bad_handshake``, ``client_disconnect``): within a window the first
    ``limit`` lines are written, the rest counted; the next line written
    ends with ``[<kind>: N more not logged]``.  Lines never carry a
    traceback: the cause is the client, not the server.
    """

    def __init__(
        self,
        limit: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.limit = limit
        self.window = window
        self.clock = clock
        # kind -> [window start, lines written in it, lines left out since the last one]
        self._kinds: dict[str, list[float]] = {}

    def admit(self, kind: str) -> str | None:
        """``None`` if a line of ``kind`` is to be left out, else the suffix to add to it."""
        now = self.clock()
        state = self._kinds.get(kind)
        if state is None:
            state = self._kinds[kind] = [now, 0, 0]
        elif now - state[0] >= self.window:
            state[0], state[1] = now, 0
        if state[1] >= self.limit:
            state[2] += 1
            return None
        state[1] += 1
        left_out, state[2] = int(state[2]), 0
        return f" [{kind}: {left_out} more not logged]" if left_out else ""

    def log(
        self,
        logger: logging.Logger,
        kind: str,
        message: str,
        *args: Any,
        level: int = logging.WARNING,
    ) -> None:
        """Log one client error of ``kind`` (``message % args``), if the limit allows."""
        if not logger.isEnabledFor(level):
            return
        suffix = self.admit(kind)
        if suffix is not None:
            logger.log(level, "client error: " + message + "%s", *args, suffix)

    def filter(self, record: logging.LogRecord) -> bool:
        """As a logger filter: limit the client-error lines of uvicorn and websockets."""
        kind = _THEIR_CLIENT_ERRORS.get(record.msg) if isinstance(record.msg, str) else None
        if kind is None:
            return True
        suffix = self.admit(kind)
        if suffix is None:
            return False
        record.exc_info = None
        record.exc_text = None
        if suffix:
            record.msg = f"{record.msg}{suffix.replace('%', '%%')}"
        return True


CLIENT_ERRORS = ClientErrors()


def limit_client_errors() -> None:
    """Put ``CLIENT_ERRORS`` on uvicorn's error logger (after uvicorn configured it)."""
    logger = logging.getLogger("uvicorn.error")
    if CLIENT_ERRORS not in logger.filters:
        logger.addFilter(CLIENT_ERRORS)

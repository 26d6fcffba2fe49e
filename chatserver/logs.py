"""Logging set-up for ``chatserver serve``: plain text, or one JSON object a line.

``--log-format text`` (the default) keeps the format chatserver always had
(``time level logger message``) and uvicorn's own for its loggers.
``--log-format json`` routes every logger, uvicorn's included, through
``JsonFormatter`` to stderr, so a log shipper reads each line as one
object::

    {"time": "2026-11-23T03:14:15.926Z", "level": "ERROR", "logger": "chatserver.hub",
     "message": "store failed on msg", "exception": "Traceback (most recent call last): ..."}

``exception`` (the formatted traceback) is there only when the record has one.
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
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

"""Endpoints for operators: ``/metrics`` (Prometheus) and ``/readyz`` (readiness).

``/healthz`` (liveness, in ``app.py``) answers 200 while the process serves
HTTP at all.  ``/readyz`` answers 200 only while this process should get new
traffic: the store (and, on Redis, the broker) answered a ping within
``READY_TIMEOUT`` seconds and shutdown has not begun; otherwise 503 with a
JSON ``reason``.  ``/metrics`` renders ``metrics.Metrics`` and the gauges
the hub, the upload budget and the recordings ingest keep; who may read it
is ``metrics.allowed``.  See docs/operations.md.
"""

from __future__ import annotations

import asyncio
import platform
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import __version__, process_stats
from ..metrics import CONTENT_TYPE, Exposition, Metrics, allowed, close_name
from ..node import Node
from ..protocol.frames import FRAMES
from ..redact import scrub

READY_TIMEOUT = 1.0  # seconds a readiness ping may take


class Lifecycle:
    """Whether the process is shutting down (set on SIGTERM or lifespan shutdown)."""

    __slots__ = ("shutting_down",)

    def __init__(self) -> None:
        self.shutting_down = False


async def readyz(request: Request) -> Response:
    lifecycle: Lifecycle = request.app.state.lifecycle
    node: Node = request.app.state.node
    if lifecycle.shutting_down:
        return _not_ready("shutting down")
    for name, ping in (("store", node.store.ping), ("broker", node.broker.ping)):
        try:
            await asyncio.wait_for(ping(), READY_TIMEOUT)
        except TimeoutError:
            return _not_ready(f"{name} did not answer within {READY_TIMEOUT:g}s")
        except Exception as exc:  # any failure of the ping means "not ready"
            return _not_ready(f"{name} unreachable: {scrub(str(exc))}")
    return JSONResponse({"status": "ready"})


def _not_ready(reason: str) -> Response:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)


async def metrics(request: Request) -> Response:
    token: str | None = request.app.state.node.config.metrics_token
    client = request.client.host if request.client else None
    if not allowed(client, request.headers.get("authorization", ""), token):
        if token:
            return PlainTextResponse(
                "send 'Authorization: Bearer <metrics token>'\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return PlainTextResponse(
            "metrics are served to loopback clients only (or set --metrics-token)\n",
            status_code=403,
        )
    return Response(render(request.app.state), media_type=CONTENT_TYPE)


def _loop() -> str:
    """The running event loop's package: ``uvloop`` or ``asyncio``."""
    try:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]
    except RuntimeError:
        return "none"


def render(state: Any) -> str:
    """The exposition text of this process (``state`` is the app's state)."""
    node: Node = state.node
    m = node.metrics
    stats = node.hub.stats()
    out = Exposition()
    out.family(
        "chatserver_info",
        "gauge",
        "Always 1; the labels tell the version and the backend.",
        [({"version": __version__, "backend": state.node.config.backend}, 1)],
    )
    out.family(
        "chatserver_build_info",
        "gauge",
        "Always 1; the labels tell the build: chatserver's version, Python's, and the"
        " event loop's (uvloop or asyncio).",
        [({"version": __version__, "python": platform.python_version(), "loop": _loop()}, 1)],
    )
    _process(out)
    out.family(
        "chatserver_connections",
        "gauge",
        "Open WebSocket connections past hello, by client kind.",
        [({"kind": "visitor"}, m.visitors), ({"kind": "agent"}, m.agents)],
    )
    out.one(
        "chatserver_agents_connected",
        "gauge",
        "Agents with at least one open connection to this process.",
        stats["agents_connected"],
    )
    out.one(
        "chatserver_channels",
        "gauge",
        "Broker channels with at least one local subscriber.",
        stats["channels"],
    )
    out.family(
        "chatserver_frames_received_total",
        "counter",
        "Valid client frames received, by client kind and frame type.",
        [
            ({"kind": kind.value, "type": t}, count)
            for kind in FRAMES
            for t, count in m.frames[kind].items()
        ],
    )
    out.one(
        "chatserver_messages_stored_total",
        "counter",
        "Client messages stored and acknowledged (not counting resent duplicates).",
        m.messages_stored,
    )
    out.one(
        "chatserver_messages_duplicate_total",
        "counter",
        "Resent client messages acknowledged as already stored.",
        m.messages_duplicate,
    )
    out.family(
        "chatserver_errors_total",
        "counter",
        "Error frames sent to clients, by error code.",
        [({"code": str(code)}, count) for code, count in m.errors.items()],
    )
    out.family(
        "chatserver_connections_closed_total",
        "counter",
        "WebSocket connections ended, by close code (sent by the server or the client).",
        [
            ({"code": code, "reason": close_name(code)}, count)
            for code, count in sorted(m.closes.items())
        ],
    )
    _latencies(out, m)
    out.family(
        "chatserver_recoveries_total",
        "counter",
        "History recoveries after a reconnect: resumed from the offset, or reset.",
        [({"outcome": k}, v) for k, v in m.recoveries.items()],
    )
    out.one(
        "chatserver_resubscriptions_total",
        "counter",
        "Broker channels lost and subscribed again, each caught up from the store.",
        m.resubscribed,
    )
    uploads = state.node.upload_budget.stats()
    out.one(
        "chatserver_upload_bytes_held",
        "gauge",
        "Bytes of attachment uploads held in memory now.",
        uploads["held"],
    )
    out.one(
        "chatserver_upload_budget_bytes",
        "gauge",
        "The upload memory budget (--upload-memory).",
        uploads["budget"],
    )
    out.one(
        "chatserver_uploads_refused_total",
        "counter",
        "Uploads answered 503 because the upload budget was full.",
        uploads["refused"],
    )
    rec = state.node.recordings.stats()
    out.family(
        "chatserver_recording_batches_total",
        "counter",
        "Session-recording batches received, by outcome.",
        [
            ({"outcome": "stored"}, rec.get("batches", 0)),
            ({"outcome": "duplicate"}, rec.get("duplicates", 0)),
            ({"outcome": "refused_busy"}, rec.get("refused_busy", 0)),
            ({"outcome": "refused_unknown"}, rec.get("refused_unknown", 0)),
        ],
    )
    out.one(
        "chatserver_recording_events_total",
        "counter",
        "Session-recording events stored.",
        rec.get("events", 0),
    )
    out.family(
        "chatserver_recording_bytes_total",
        "counter",
        "Session-recording bytes stored: as received (raw) and as written (stored).",
        [
            ({"form": "raw"}, rec.get("raw_bytes", 0)),
            ({"form": "stored"}, rec.get("stored_bytes", 0)),
        ],
    )
    out.one(
        "chatserver_recording_partial_bytes",
        "gauge",
        "Bytes of recording batches held in parts, waiting for their last part.",
        rec.get("partial_bytes", 0),
    )
    out.one(
        "chatserver_archive_batches_waiting",
        "gauge",
        "Full batches of the archive's listener waiting for the index to write them.",
        node.archive.waiting(),
    )
    out.one(
        "chatserver_archive_skipped_total",
        "counter",
        "Conversation events the archive's listener skipped while its index was behind"
        " (indexed afterwards from the record).",
        node.archive.skipped,
    )
    return out.text()


def _latencies(out: Exposition, m: Metrics) -> None:
    out.histogram(
        "chatserver_frame_to_ack_seconds",
        "Seconds from a message frame read to its ack sent (the message stored durably).",
        [({}, m.frame_to_ack)],
    )
    out.histogram(
        "chatserver_store_commit_seconds",
        "Seconds a client message's durable append to the store took.",
        [({}, m.store_commit)],
    )
    out.histogram(
        "chatserver_broker_publish_seconds",
        "Seconds a stored entry's publish to the broker took (a Redis round trip).",
        [({}, m.broker_publish)],
    )
    out.histogram(
        "chatserver_event_loop_lag_seconds",
        "Seconds the event loop ran a due timer late (sampled four times a second).",
        [({}, m.loop_lag)],
    )
    out.histogram(
        "chatserver_delivery_seconds",
        "Seconds per outbox delivery attempt (webhook, email), by job kind and outcome.",
        [({"kind": k, "outcome": o}, h) for (k, o), h in sorted(m.deliveries.items())],
    )


def _process(out: Exposition) -> None:
    """The standard process metrics (``process_stats.py``)."""
    p = process_stats.read()
    out.one(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        p.cpu_seconds,
    )
    out.one(
        "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", p.resident_bytes
    )
    if p.virtual_bytes is not None:
        out.one(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes,
        )
    out.one(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        p.start_time,
    )
    if p.open_fds is not None:
        out.one("process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds)
    if p.max_fds is not None:
        out.one("process_max_fds", "gauge", "Maximum number of open file descriptors.", p.max_fds)


routes = [
    Route("/readyz", readyz),
    Route("/metrics", metrics),
]

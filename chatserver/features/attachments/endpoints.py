"""The HTTP endpoints: ``POST /api/attachments`` (upload) and ``GET /attachments/<id>``.

An upload is checked in this order: a bearer token (visitor or agent), the
origin (visitors), the per-uploader throttle and the per-address and
per-site quotas (``429``), the size (``413``), the site's byte quotas
(``507``), the process's ``UploadBudget`` (``503`` with ``Retry-After``, before
the body is read when it declares a length), then the type found from the
first bytes (``415``).  A download needs a valid signed URL
(``records.url_valid``).
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ...errors import FrameError, NotFound, StoreError
from ...security import Throttle
from ...types import Attachment, Site
from .budget import Lease, UploadBudget
from .records import MAX_ATTACHMENT_BYTES, safe_name, signed_url, sniff, url_valid

if TYPE_CHECKING:
    from ...node import Node

log = logging.getLogger("chatserver.attachments")

UPLOADS_PER_WINDOW = 30  # per uploader
UPLOAD_WINDOW = 600.0  # seconds
BUSY_RETRY_AFTER = 5  # seconds, in the ``Retry-After`` of a ``503`` for a full budget


def _cors(origin: str | None) -> dict[str, str]:
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _fail(status: int, message: str, origin: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_cors(origin))


async def _uploader(node: Node, token: str) -> tuple[Site, str] | None:
    """The site and ``visitor:<id>`` / ``agent:<id>`` a bearer token stands for."""
    fields = node.signer.verify("visitor", token)
    if fields and len(fields) == 2:
        # The token is signed: a visitor without a row yet may upload too.
        site_id, visitor_id = fields
        visitor = await node.store.get_visitor(visitor_id)
        if visitor is not None and visitor.site_id != site_id:
            return None
        try:
            site = await node.hub.site(site_id)
        except FrameError:  # the site is gone: the token is void
            return None
        return site, f"visitor:{visitor_id}"
    agent = await node.hub.agent_from_token(token)
    if agent is None or agent.disabled:
        return None
    return await node.hub.site(agent.site_id), f"agent:{agent.id}"


def _address(request: Request) -> str:
    """The client address uvicorn gives (a trusted proxy's ``X-Forwarded-For``)."""
    return request.client.host if request.client else ""


async def _over_quota(node: Node, site: Site, size: int, origin: str | None) -> Response | None:
    """``507`` when a file of ``size`` bytes would pass one of the site's byte quotas."""
    try:
        unposted, total = await node.store.attachment_bytes(site.id)
    except StoreError:
        return _fail(503, "storage unavailable", origin)
    reason = node.quotas.bytes_refusal(unposted, total, size)
    if reason is None:
        return None
    node.quotas.bytes_refused += 1
    return _fail(507, reason, origin)


def _throttle(request: Request) -> Throttle:
    """Uploads per uploader in a sliding window (one counter per app)."""
    state = request.app.state
    if not hasattr(state, "upload_throttle"):
        state.upload_throttle = Throttle(UPLOADS_PER_WINDOW, UPLOAD_WINDOW)
    throttle: Throttle = state.upload_throttle
    return throttle


class _Busy(Exception):
    """The upload budget is full."""


class _TooLarge(Exception):
    """The body is over the largest upload."""


async def _body(request: Request, lease: Lease, limit: int) -> bytes:
    """The request body, each chunk taken from ``lease`` before it is kept.

    Raises ``_TooLarge`` as soon as it is over ``limit`` bytes, ``_Busy`` as
    soon as the budget has no room for it (``ClientDisconnect`` if the client
    goes away)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        if not lease.grow(size):
            raise _Busy
        chunks.append(chunk)
    return b"".join(chunks)


def _busy(origin: str | None) -> JSONResponse:
    response = _fail(503, "the server is busy with other uploads: try again shortly", origin)
    response.headers["Retry-After"] = str(BUSY_RETRY_AFTER)
    return response


async def upload(request: Request) -> Response:
    """``POST /api/attachments``: store a file; answer its id and a signed URL."""
    origin = request.headers.get("origin")
    if request.method == "OPTIONS":  # CORS preflight of the widget's fetch
        headers = {
            **_cors(origin),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "authorization, content-type",
            "Access-Control-Max-Age": "600",
        }
        return Response(status_code=204, headers=headers)
    node: Node = request.app.state.node
    if node.blobs is None:
        return _fail(503, "attachments are off on this server", origin)
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    try:
        who = await _uploader(node, token) if token else None
    except (StoreError, FrameError):
        return _fail(503, "storage unavailable", origin)
    if who is None:
        return _fail(401, "send 'Authorization: Bearer <visitor or agent token>'", origin)
    site, uploader = who
    if uploader.startswith("visitor:") and not site.origin_allowed(origin):
        return _fail(403, "origin not allowed for the site", origin)
    throttle = _throttle(request)
    wait = throttle.blocked((uploader,)) or node.quotas.upload(_address(request), site.id)
    if wait:
        response = _fail(429, "too many uploads", origin)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    budget: UploadBudget = request.app.state.node.upload_budget  # create_app, from the config
    # A budget smaller than one file lowers the largest file: waiting would not help.
    limit = min(MAX_ATTACHMENT_BYTES, budget.limit)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _fail(413, f"the limit is {limit} bytes", origin)
    refused = await _over_quota(node, site, int(declared) if declared.isdigit() else 1, origin)
    if refused is not None:
        return refused
    with budget.lease() as lease:
        # The declared length is taken whole before any of the body is read.
        if declared.isdigit() and not lease.grow(int(declared)):
            return _busy(origin)
        try:
            body = await _body(request, lease, limit)
        except _TooLarge:
            return _fail(413, f"the limit is {limit} bytes", origin)
        except _Busy:
            return _busy(origin)
        except ClientDisconnect:
            log.debug("an upload was cut off by its client")
            return _fail(400, "the upload was cut off", origin)  # nobody reads it
        # The body stays in the budget until it is stored.
        return await _store(node, request, site, uploader, throttle, body, origin)


async def _store(
    node: Node,
    request: Request,
    site: Site,
    uploader: str,
    throttle: Throttle,
    body: bytes,
    origin: str | None,
) -> Response:
    """Check a received body's type, then store it and answer its id and URL."""
    assert node.blobs is not None
    if not body:
        return _fail(400, "the body is empty: send the file's bytes", origin)
    content_type = sniff(body[:16])
    if content_type is None:
        return _fail(415, "only PNG, JPEG, GIF, WebP images and PDF files", origin)
    throttle.failed((uploader,))  # counts uploads, not failures
    name = safe_name(request.query_params.get("name", ""), content_type)
    refused = await _over_quota(node, site, len(body), origin)
    if refused is not None:
        return refused
    try:
        att = await node.store.create_attachment(site.id, uploader, name, content_type, len(body))
        await node.blobs.put(att.blob_key, body)
    except (StoreError, OSError):
        log.exception("storing an attachment failed")
        return _fail(503, "storage unavailable", origin)
    return JSONResponse(
        {**att.to_wire(), "url": signed_url(node.signer, att.id)}, headers=_cors(origin)
    )


def _disposition(att: Attachment) -> str:
    kind = "inline" if att.content_type.startswith("image/") else "attachment"
    ascii_name = att.name.encode("ascii", "replace").decode().replace("?", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(att.name, safe='')}"


async def download(request: Request) -> Response:
    """``GET /attachments/<id>?exp=..&sig=..``: the file, for holders of a valid URL."""
    node: Node = request.app.state.node
    att_id = request.path_params["attachment"]
    exp = request.query_params.get("exp", "")
    sig = request.query_params.get("sig", "")
    now = time.time()
    if not url_valid(node.signer, att_id, exp, sig, now):
        return PlainTextResponse("link invalid or expired\n", status_code=403)
    att = await node.store.get_attachment(att_id)
    if att is None or node.blobs is None:
        return PlainTextResponse("no such file\n", status_code=404)
    try:
        data = await node.blobs.read(att.blob_key)
    except (NotFound, ValueError):
        return PlainTextResponse("no such file\n", status_code=404)
    except OSError:  # the disk or the object store (chatserver/blobs_s3.BlobError)
        log.exception("reading an attachment failed")
        return PlainTextResponse("storage unavailable\n", status_code=503)
    headers = {
        "Content-Disposition": _disposition(att),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": f"private, max-age={max(0, int(exp) - int(now))}",
    }
    return Response(data, media_type=att.content_type, headers=headers)


routes = [
    Route("/api/attachments", upload, methods=["POST", "OPTIONS"]),
    Route("/attachments/{attachment}", download, methods=["GET", "HEAD"]),
]

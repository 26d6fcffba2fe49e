"""File attachments: upload over HTTP, post into a conversation, serve back signed.

The flow (docs/widget.md, docs/protocol.md §4.4):

1. ``POST /api/attachments?name=<file name>`` with the file as the raw body
   and ``Authorization: Bearer <visitor or agent token>``.  The type is
   found from the first bytes (PNG, JPEG, GIF, WebP, PDF), never from the
   client's ``Content-Type``; anything else (SVG, HTML, ...) is ``415``.  At
   most ``MAX_ATTACHMENT_BYTES``.  The bytes go to the BlobStore, the
   metadata to the Store; the answer is ``{id, name, type, size, url}``.
2. An ``attach`` frame posts it into a conversation as a ``text`` entry whose
   ``body`` is the file name and whose ``data.attachment`` is
   ``{id, name, type, size}``.  Only its uploader may post it, and only into
   one conversation (the first it was posted into).
3. Entries reach clients with ``data.attachment.url`` added: a relative
   ``attachments/<id>?exp=<unix time>&sig=<hmac>`` signed with the server
   secret, valid ``URL_TTL`` (rounded up to the hour, so it stays the same
   for a while and browsers can cache), issued afresh on every delivery
   (live and ``history``).  Entries reach only the conversation's
   participants, so only they get working URLs; an ``<img>`` on the shop's
   page can use one without sending any header.
4. ``GET /attachments/<id>?exp&sig`` checks the signature and the expiry and
   answers with the stored type, ``nosniff``, a ``default-src 'none';
   sandbox`` CSP and, for PDFs, ``Content-Disposition: attachment``.

Bodies are held in memory while they arrive and while they are stored, so the
process has one ``UploadBudget`` (``--upload-memory``, default 64 MiB) for the
bytes of all uploads in flight: an upload that would pass it is ``503`` with
``Retry-After``, before its body is read when it declares a length.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .agents import _member
from .errors import ErrorCode, FrameError, NotFound, StoreError
from .frames import Frame
from .posting import Post, post_from_visitor
from .security import Signer, Throttle
from .session import Session
from .types import JSON, Attachment, AuthorKind, ConvState, Entry, EntryKind, Site

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger("chatserver.attachments")

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # 10 MiB
URL_TTL = 24 * 3600  # seconds a signed URL is valid at least (then rounded up to the hour)
MAX_NAME_CHARS = 200  # the stored file name
UPLOADS_PER_WINDOW = 30  # per uploader
UPLOAD_WINDOW = 600.0  # seconds
UPLOAD_MEMORY = 64 * 1024 * 1024  # bytes of upload bodies in flight, whole process
BUSY_RETRY_AFTER = 5  # seconds, in the ``Retry-After`` of a ``503`` for a full budget

# content type -> file name extension; the first bytes decide (``sniff``)
TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
}
_EXTENSIONS = {"image/jpeg": (".jpg", ".jpeg")}


def sniff(head: bytes) -> str | None:
    """The content type that the first bytes of a file prove, or ``None``."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/<>:|?*]+')


def safe_name(name: str, content_type: str) -> str:
    """A file name fit to store and show: no folders, no control or quoting
    characters, at most ``MAX_NAME_CHARS``, ending in the type's extension
    (so a PDF never downloads as ``.html``)."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .") or "file"
    ext = TYPES[content_type]
    if not name.lower().endswith(_EXTENSIONS.get(content_type, (ext,))):
        name += ext
    if len(name) > MAX_NAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        name = stem[: MAX_NAME_CHARS - len(suffix) - 1] + dot + suffix
    return name


# -- signed URLs -----------------------------------------------------------


def signed_url(signer: Signer, attachment_id: str, now: float | None = None) -> str:
    """``attachments/<id>?exp=..&sig=..``, relative to the server's base URL."""
    at = time.time() if now is None else now
    exp = math.ceil((at + URL_TTL) / 3600) * 3600
    sig = signer.sign("att", attachment_id, str(exp)).rpartition(".")[2]
    return f"attachments/{attachment_id}?exp={exp}&sig={sig}"


def url_valid(signer: Signer, attachment_id: str, exp: str, sig: str, now: float) -> bool:
    """The signature is ours and the URL has not expired."""
    if not exp.isdigit() or "." in attachment_id or "." in sig:
        return False
    fields = signer.verify("att", f"att.{attachment_id}.{exp}.{sig}")
    return fields == [attachment_id, exp] and int(exp) > now


def with_url(frame: JSON, signer: Signer) -> JSON:
    """An entry's wire form with ``data.attachment.url`` signed now (else as is)."""
    data = frame.get("data")
    if not data or not isinstance(data.get("attachment"), dict):
        return frame
    att = data["attachment"]
    signed = {**att, "url": signed_url(signer, str(att.get("id", "")))}
    return {**frame, "data": {**data, "attachment": signed}}


# -- HTTP ------------------------------------------------------------------


def _cors(origin: str | None) -> dict[str, str]:
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _fail(status: int, message: str, origin: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_cors(origin))


async def _uploader(hub: Hub, token: str) -> tuple[Site, str] | None:
    """The site and ``visitor:<id>`` / ``agent:<id>`` a bearer token stands for."""
    fields = hub.signer.verify("visitor", token)
    if fields and len(fields) == 2:
        # The token is signed: a visitor without a row yet may upload too.
        site_id, visitor_id = fields
        visitor = await hub.store.get_visitor(visitor_id)
        if visitor is not None and visitor.site_id != site_id:
            return None
        try:
            site = await hub.site(site_id)
        except FrameError:  # the site is gone: the token is void
            return None
        return site, f"visitor:{visitor_id}"
    agent = await hub.agent_from_token(token)
    if agent is None or agent.disabled:
        return None
    return await hub.site(agent.site_id), f"agent:{agent.id}"


def _address(request: Request) -> str:
    """The client address uvicorn gives (a trusted proxy's ``X-Forwarded-For``)."""
    return request.client.host if request.client else ""


async def _over_quota(hub: Hub, site: Site, size: int, origin: str | None) -> Response | None:
    """``507`` when a file of ``size`` bytes would pass one of the site's byte quotas."""
    try:
        unposted, total = await hub.store.attachment_bytes(site.id)
    except StoreError:
        return _fail(503, "storage unavailable", origin)
    reason = hub.quotas.bytes_refusal(unposted, total, size)
    if reason is None:
        return None
    hub.quotas.bytes_refused += 1
    return _fail(507, reason, origin)


def _throttle(request: Request) -> Throttle:
    """Uploads per uploader in a sliding window (one counter per app)."""
    state = request.app.state
    if not hasattr(state, "upload_throttle"):
        state.upload_throttle = Throttle(UPLOADS_PER_WINDOW, UPLOAD_WINDOW)
    throttle: Throttle = state.upload_throttle
    return throttle


class UploadBudget:
    """The bytes of upload bodies that the whole process holds at once.

    An upload takes a ``Lease`` and grows it before it holds more bytes;
    ``grow`` refuses (and takes nothing) when the total would pass ``limit``.
    The event loop is the only lock: ``grow`` and ``release`` never await.
    """

    def __init__(self, limit: int = UPLOAD_MEMORY) -> None:
        if limit < 1:
            raise ValueError("the upload budget needs at least one byte")
        self.limit = limit
        self.held = 0
        self.refused = 0  # uploads answered 503 because the budget was full

    def lease(self) -> Lease:
        return Lease(self)

    def stats(self) -> JSON:
        return {"held": self.held, "budget": self.limit, "refused": self.refused}


class Lease:
    """One upload's share of an ``UploadBudget``; a context manager that
    gives the share back on exit, however the upload ends."""

    def __init__(self, budget: UploadBudget) -> None:
        self.budget = budget
        self.size = 0

    def grow(self, size: int) -> bool:
        """Hold ``size`` bytes in all (never fewer than now); ``False`` if the
        budget has no room, the lease then unchanged."""
        extra = size - self.size
        if extra <= 0:
            return True
        if self.budget.held + extra > self.budget.limit:
            self.budget.refused += 1
            return False
        self.budget.held += extra
        self.size = size
        return True

    def release(self) -> None:
        self.budget.held -= self.size
        self.size = 0

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


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
    hub: Hub = request.app.state.hub
    if hub.blobs is None:
        return _fail(503, "attachments are off on this server", origin)
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    try:
        who = await _uploader(hub, token) if token else None
    except (StoreError, FrameError):
        return _fail(503, "storage unavailable", origin)
    if who is None:
        return _fail(401, "send 'Authorization: Bearer <visitor or agent token>'", origin)
    site, uploader = who
    if uploader.startswith("visitor:") and not site.origin_allowed(origin):
        return _fail(403, "origin not allowed for the site", origin)
    throttle = _throttle(request)
    wait = throttle.blocked((uploader,)) or hub.quotas.upload(_address(request), site.id)
    if wait:
        response = _fail(429, "too many uploads", origin)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    budget: UploadBudget = request.app.state.upload_budget  # create_app, from the config
    # A budget smaller than one file lowers the largest file: waiting would not help.
    limit = min(MAX_ATTACHMENT_BYTES, budget.limit)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _fail(413, f"the limit is {limit} bytes", origin)
    refused = await _over_quota(hub, site, int(declared) if declared.isdigit() else 1, origin)
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
        return await _store(hub, request, site, uploader, throttle, body, origin)


async def _store(
    hub: Hub,
    request: Request,
    site: Site,
    uploader: str,
    throttle: Throttle,
    body: bytes,
    origin: str | None,
) -> Response:
    """Check a received body's type, then store it and answer its id and URL."""
    assert hub.blobs is not None
    if not body:
        return _fail(400, "the body is empty: send the file's bytes", origin)
    content_type = sniff(body[:16])
    if content_type is None:
        return _fail(415, "only PNG, JPEG, GIF, WebP images and PDF files", origin)
    throttle.failed((uploader,))  # counts uploads, not failures
    name = safe_name(request.query_params.get("name", ""), content_type)
    refused = await _over_quota(hub, site, len(body), origin)
    if refused is not None:
        return refused
    try:
        att = await hub.store.create_attachment(site.id, uploader, name, content_type, len(body))
        await hub.blobs.put(att.blob_key, body)
    except (StoreError, OSError):
        log.exception("storing an attachment failed")
        return _fail(503, "storage unavailable", origin)
    return JSONResponse(
        {**att.to_wire(), "url": signed_url(hub.signer, att.id)}, headers=_cors(origin)
    )


def _disposition(att: Attachment) -> str:
    kind = "inline" if att.content_type.startswith("image/") else "attachment"
    ascii_name = att.name.encode("ascii", "replace").decode().replace("?", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(att.name, safe='')}"


async def download(request: Request) -> Response:
    """``GET /attachments/<id>?exp=..&sig=..``: the file, for holders of a valid URL."""
    hub: Hub = request.app.state.hub
    att_id = request.path_params["attachment"]
    exp = request.query_params.get("exp", "")
    sig = request.query_params.get("sig", "")
    now = time.time()
    if not url_valid(hub.signer, att_id, exp, sig, now):
        return PlainTextResponse("link invalid or expired\n", status_code=403)
    att = await hub.store.get_attachment(att_id)
    if att is None or hub.blobs is None:
        return PlainTextResponse("no such file\n", status_code=404)
    try:
        data = await hub.blobs.read(att.blob_key)
    except (NotFound, ValueError):
        return PlainTextResponse("no such file\n", status_code=404)
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


# -- the sweep of unposted uploads -----------------------------------------

SWEEP_BATCH = 100  # attachments listed per Store call
SWEEP_BATCHES = 50  # batches per round at most (the next round goes on)


async def sweep_unposted(hub: Hub, ttl: float, now: float | None = None) -> int:
    """Delete uploads never posted within ``ttl`` seconds: record, then blob.

    Safe with many processes sweeping at once: the Store deletes a record
    only while it is unbound and only once (``delete_unposted_attachment``),
    and only the process that deleted it deletes the blob (a missing blob is
    no error).  Returns how many this call deleted.
    """
    assert hub.blobs is not None
    before = (time.time() if now is None else now) - ttl
    deleted = 0
    for _ in range(SWEEP_BATCHES):
        batch = await hub.store.unposted_attachments(before, SWEEP_BATCH)
        for att in batch:
            gone = await hub.store.delete_unposted_attachment(att.id)
            if gone is not None:
                await hub.blobs.delete(gone.blob_key)
                deleted += 1
        if len(batch) < SWEEP_BATCH:
            break
    hub.quotas.swept += deleted
    return deleted


def sweep_interval(ttl: float) -> float:
    """Seconds between sweeps: a quarter of the time to live, 0.2 s to 5 minutes."""
    return max(0.2, min(ttl / 4, 300.0))


async def sweeper(hub: Hub) -> None:
    """Sweep unposted uploads for ever (``--upload-ttl``), jittered."""
    ttl = hub.quotas.config.upload_ttl
    while True:
        await asyncio.sleep(sweep_interval(ttl) * random.uniform(0.75, 1.25))
        try:
            count = await sweep_unposted(hub, ttl)
            if count:
                log.info("deleted %d unposted uploads older than %gs", count, ttl)
        except (StoreError, OSError) as exc:  # the next round tries again
            log.warning("sweeping unposted uploads failed: %s", exc)
        except Exception:
            log.exception("sweeping unposted uploads failed")


# -- the attach frame ----------------------------------------------------


async def _own(hub: Hub, session: Session, attachment_id: str, uploader: str) -> Attachment:
    """The attachment if this client uploaded it, else ``NOT_FOUND``."""
    assert session.site is not None
    att = await hub.store.get_attachment(attachment_id)
    if att is None or att.uploader != uploader or att.site_id != session.site.id:
        raise FrameError(ErrorCode.NOT_FOUND, "no such attachment")
    return att


def _data(att: Attachment) -> JSON:
    return {"attachment": att.to_wire()}


async def _bind(hub: Hub, att: Attachment, entry: Entry) -> None:
    bound = await hub.store.bind_attachment(att.id, entry.conversation_id)
    if bound.conv_id != entry.conversation_id:  # two posts racing; the uploader's own file
        log.warning(
            "attachment %s posted into %s and %s", att.id, bound.conv_id, entry.conversation_id
        )


async def attach_visitor(hub: Hub, session: Session, frame: Frame) -> None:
    """Post the visitor's uploaded file: the one posting flow (``posting.py``).

    A file posted before goes only where it was (a resend with the same
    ``cid`` is a duplicate); a new one is bound to its entry before the ack.
    """
    assert session.visitor_id is not None
    att = await _own(hub, session, frame.get("attachment"), f"visitor:{session.visitor_id}")

    async def bound(entry: Entry) -> None:
        await _bind(hub, att, entry)

    post = Post(att.name, frame.get("cid"), _data(att), conv=frame.get("conv"), only=att.conv_id)
    await post_from_visitor(hub, session, frame, post, bound)


async def attach_agent(hub: Hub, session: Session, frame: Frame) -> None:
    """Post the agent's uploaded file into a conversation it is a member of."""
    agent = session.agent
    assert agent is not None
    conv = await hub.conversation(session, frame.get("conv"))
    _member(agent, conv, admin_ok=False)
    if conv.state is ConvState.CLOSED:
        raise FrameError(ErrorCode.CONFLICT, "conversation is closed")
    att = await _own(hub, session, frame.get("attachment"), f"agent:{agent.id}")
    if att.conv_id is not None and att.conv_id != conv.id:
        raise FrameError(ErrorCode.CONFLICT, "attachment posted in another conversation")
    entry, duplicate = await hub.store.append(
        conv.id,
        EntryKind.TEXT,
        AuthorKind.AGENT,
        agent.id,
        agent.name,
        att.name,
        frame.get("cid"),
        data=_data(att),
    )
    await _bind(hub, att, entry)
    hub.ack(session, frame, entry, duplicate)
    if not duplicate:
        await hub.convs.publish_entry(conv.site_id, entry)

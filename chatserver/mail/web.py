"""The mail's HTTP endpoints: inbound answers and unsubscribing.

* ``POST /mail/inbound`` (also ``/mail/inbound/mime``, for Mailgun): a
  visitor's answer by e-mail (``inbound.py``), as ``message/rfc822``,
  Mailgun's form (``body-mime``, ``recipient``) or Postmark's JSON
  (``RawEmail``).  Answers ``200 {"conv", "offset", "duplicate"}``, or an
  error ``{"error": code, "message"}``: ``400 not_a_mail``, ``403
  forged_reference`` / ``wrong_sender``, ``404 no_conversation``, ``413
  too_large`` (refused on ``Content-Length`` or while reading, never read
  whole), ``415 unsupported_type``, ``422 no_reference`` / ``empty`` /
  ``auto_reply``; past ``inbound.REFUSALS`` refused mails a minute from one
  address, ``429 rate_limited`` with ``Retry-After``.  A refusal of a
  provider's post has the provider's "do not retry" status instead (Mailgun
  ``406``, Postmark ``403``), with the same body.
* ``GET /mail/unsubscribe?t=TOKEN``: a page asking to confirm;
  ``POST`` (the page's button, or a mail program's one-click
  ``List-Unsubscribe-Post``) stops the site's mail to the address.  A bad
  token is ``400``.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..types import JSON
from .inbound import MAX_BYTES, Refused, accept
from .strings import strings
from .visitor import read_unsubscribe

if TYPE_CHECKING:
    from ..node import Node

log = logging.getLogger("chatserver.mail")
_FORM_OVERHEAD = 64 * 1024  # a provider's form carries more than the raw mail


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, "too_large", f"a mail of at most {MAX_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, "too_large", f"a mail of at most {MAX_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _raw_mail(request: Request) -> tuple[bytes, str]:
    """The raw message and the envelope recipient a provider names, if any."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("message/rfc822", "text/plain", "application/octet-stream"):
        return await _body(request, MAX_BYTES), ""
    body = await _body(request, MAX_BYTES + _FORM_OVERHEAD)
    if kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            raise Refused(400, "not_a_mail", "the body is not JSON") from None
        raw = data.get("RawEmail") if isinstance(data, dict) else None
        if not isinstance(raw, str):
            raise Refused(400, "not_a_mail", "no RawEmail in the JSON")
        return raw.encode(), str(data.get("OriginalRecipient", ""))
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        request._body = body  # the form is parsed from what was read (and capped)
        form = await request.form()
        raw_field = form.get("body-mime")
        if not isinstance(raw_field, str):
            raise Refused(400, "not_a_mail", "no body-mime field in the form")
        recipient = form.get("recipient")
        return raw_field.encode(), recipient if isinstance(recipient, str) else ""
    raise Refused(415, "unsupported_type", "send message/rfc822, a Mailgun form or Postmark JSON")


# What a provider takes as "refused, do not send again" (others are retried for
# hours): Mailgun's 406, Postmark's 403; the body still names the reason.
_DO_NOT_RETRY = {
    "multipart/form-data": 406,
    "application/x-www-form-urlencoded": 406,
    "application/json": 403,
}


async def inbound(request: Request) -> Response:
    address = request.client.host if request.client else ""
    refusals = _node(request).mail.refusals
    wait = refusals.wait(address)
    if wait:
        response = _error(429, "rate_limited", "too many refused mails from this address")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    try:
        raw, recipient = await _raw_mail(request)
        entry, duplicate = await accept(_node(request), raw, recipient)
    except Refused as refused:
        log.info("inbound mail refused: %s", refused.code)
        refusals.refused(address)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        status = _DO_NOT_RETRY.get(kind, refused.status)
        return _error(status, refused.code, refused.message)
    body: JSON = {"conv": entry.conversation_id, "offset": entry.offset, "duplicate": duplicate}
    return JSONResponse(body)


_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto;">{body}</body></html>"""


async def unsubscribe(request: Request) -> Response:
    from html import escape

    node = _node(request)
    token = request.query_params.get("t", "")
    found = read_unsubscribe(node.signer, token) if len(token) < 1024 else None
    site = await node.store.get_site(found[0]) if found else None
    if found is None or site is None:
        return HTMLResponse("<!doctype html><p>This link is not valid.</p>", status_code=400)
    email = found[1]
    lang = site.settings.language
    t = strings(lang)
    if request.method == "POST":
        await node.mail.unsubscribe(site.id, email)
        text = t["unsubscribed"].format(shop=site.name, email=email)
        body = f"<p>{escape(text)}</p>"
    else:
        ask = t["unsubscribe_confirm"].format(shop=site.name, email=email)
        body = (
            f'<p>{escape(ask)}</p><form method="post">'
            f'<button type="submit">{escape(t["unsubscribe_button"])}</button></form>'
        )
    page = _PAGE.format(lang=lang, title=escape(site.name), body=body)
    response = HTMLResponse(page)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token stays in this page
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    return response


routes: list[BaseRoute] = [
    Route("/mail/inbound", inbound, methods=["POST"]),
    # Mailgun posts the raw MIME only to a URL that ends in "mime".
    Route("/mail/inbound/mime", inbound, methods=["POST"]),
    Route("/mail/unsubscribe", unsubscribe, methods=["GET", "POST"]),
]

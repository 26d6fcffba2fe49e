"""What every API endpoint goes through: the key, the rate, the method, the errors.

``endpoint(GET=handler, POST=handler)`` makes one Starlette endpoint of a
path's handlers.  For each request it checks ``Authorization: Bearer
<key>`` (``keys.ApiKeys.authenticate``; ``401`` with ``4102 unauthorized``
when missing, malformed, unknown or revoked), counts the request against
the key's rate (``keys.ApiKeys.take``; ``429`` with ``102 rate_limited`` and
``Retry-After``), and
hands the handler a ``Caller``: the node, the key and its site.  Failures
become the JSON errors of ``errors.py``: ``ApiError`` as it is, a protocol
``FrameError`` by its code, a Store failure ``503 101 unavailable``, anything
else ``500 100 internal`` (logged, without the request's secrets).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import ErrorCode, FrameError, StoreError
from ..types import Site
from .errors import ApiError, unauthorized
from .keys import ApiKey

if TYPE_CHECKING:
    from ..node import Node

log = logging.getLogger("chatserver.api")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls: the key (a named integration of one site) and that site."""

    node: Node
    key: ApiKey
    site: Site


Handler = Callable[[Request, Caller], Awaitable[Response]]


def json(data: object, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


async def _caller(request: Request) -> Caller:
    node: Node = request.app.state.node
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("send an API key as 'Authorization: Bearer csk_...'")
    key = await node.api_keys.authenticate(token.strip())
    if key is None:
        raise unauthorized("unknown or revoked API key")
    wait = await node.api_keys.take(key)
    if wait:
        raise ApiError(
            ErrorCode.RATE_LIMITED,
            f"over {node.api_keys.rate} requests a minute for this key: retry in {wait:.1f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    try:
        site = await node.hub.site(key.site_id)  # cached; admins' changes drop it (control)
    except FrameError:  # a key of a deleted site
        raise unauthorized("unknown or revoked API key") from None
    return Caller(node, key, site)


def endpoint(**handlers: Handler) -> Callable[[Request], Awaitable[Response]]:
    """One endpoint for a path: ``GET=...``, ``POST=...``; other methods get 405."""
    allowed = ", ".join(sorted(handlers))

    async def serve(request: Request) -> Response:
        try:
            handler = handlers.get(request.method)
            if handler is None:
                raise ApiError(
                    ErrorCode.NOT_ALLOWED,
                    f"{request.method} is not allowed here; use {allowed}",
                    headers={"Allow": allowed},
                )
            return await handler(request, await _caller(request))
        except ApiError as exc:
            return exc.response()
        except FrameError as exc:
            return ApiError.of(exc).response()
        except StoreError:
            log.exception("API %s %s: the store failed", request.method, request.url.path)
            return ApiError(ErrorCode.UNAVAILABLE, "storage failed; retry later").response()
        except Exception:
            log.exception("API %s %s failed", request.method, request.url.path)
            return ApiError(ErrorCode.INTERNAL, "unexpected server failure").response()

    return serve


async def no_such_endpoint(request: Request) -> Response:
    """Any other path under ``/api/v1/``."""
    return ApiError(ErrorCode.NOT_FOUND, "no such endpoint; see /api/v1/openapi.json").response()

"""Validation of the API's request bodies and query parameters.

Bodies are JSON objects of at most ``MAX_BODY`` bytes, read with the
protocol's decoder (``codec.decode``: no NaN, no numbers beyond a float64)
and checked field by field with the frames' rules (``frames.Field``):
types, lengths, ranges, allowed values.  A field the endpoint does not know
is refused, so a typo never passes silently.  Query parameters are checked
the same way after their text is read as the ``Field``'s type (an integer's
digits); a parameter given twice or unknown is refused.  Every failure is a
``400`` with ``203 invalid_field`` (``200 bad_frame`` for a body that is no
JSON object, ``201 frame_too_large`` past the size, ``208 too_long`` for a
message body over the protocol's limit).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from ..errors import ErrorCode, FrameError
from ..protocol.codec import decode
from ..protocol.frames import MAX_ID_CHARS, Field, check_field
from .errors import ApiError, invalid

MAX_BODY = 64 * 1024  # bytes of a request body


def id_field(name: str, required: bool = True) -> Field:
    return Field(name, str, required, max_len=MAX_ID_CHARS)


def _checked(specs: tuple[Field, ...], raw: dict[str, Any]) -> dict[str, Any]:
    known = {s.name for s in specs}
    unknown = sorted(k for k in raw if k not in known)
    if unknown:
        raise invalid(f"unknown field {unknown[0][:64]!r}")
    out: dict[str, Any] = {}
    for spec in specs:
        value = raw.get(spec.name)
        if value is None:
            if spec.required:
                raise invalid(f"field {spec.name!r} is required")
            continue
        try:
            out[spec.name] = check_field(spec, value)
        except FrameError as exc:
            raise ApiError.of(exc) from None
    return out


async def body(request: Request, *specs: Field) -> dict[str, Any]:
    """The request's JSON object, checked against ``specs``."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise ApiError(ErrorCode.FRAME_TOO_LARGE, f"a body holds at most {MAX_BODY} bytes")
    if not data.strip():
        raw: Any = {}
    else:
        try:
            raw = decode(data.decode("utf-8"))
        except (FrameError, UnicodeDecodeError):
            raise ApiError(ErrorCode.BAD_FRAME, "the body is not valid JSON") from None
    if not isinstance(raw, dict):
        raise ApiError(ErrorCode.BAD_FRAME, "the body must be a JSON object")
    return _checked(specs, raw)


def query(request: Request, *specs: Field) -> dict[str, Any]:
    """The query parameters, checked against ``specs`` (integers read from digits)."""
    raw: dict[str, Any] = {}
    kinds = {s.name: s.kind for s in specs}
    for name, value in request.query_params.multi_items():
        if name in raw:
            raise invalid(f"parameter {name[:64]!r} is given twice")
        if kinds.get(name) is int:
            text = value.strip()
            if not (text.isascii() and text.isdigit()) or len(text) > 16:
                raise invalid(f"parameter {name!r} must be a whole number")
            raw[name] = int(text)
        elif value != "":
            raw[name] = value
    try:
        return _checked(specs, raw)
    except ApiError as exc:
        exc.message = exc.message.replace("field ", "parameter ", 1)
        raise


def timestamp(name: str, text: str, end_of_day: bool = False) -> float:
    """A date (``YYYY-MM-DD``, UTC; its end with ``end_of_day``) or an ISO 8601 time."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(f"parameter {name!r} must be a date or an ISO 8601 time") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp() + (86400.0 if end_of_day and len(text) == 10 else 0.0)

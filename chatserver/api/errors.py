"""The API's errors: the protocol's codes in a JSON body, with a fitting HTTP status.

Every error answer is ``{"error": {"code": int, "name": str, "message": str}}``.
``code`` and ``name`` are those of the protocol (``chatserver/errors.py``,
docs/protocol.md): an ``ErrorCode`` (100-199 retry later, 200-299 fix the
request), or ``4102 unauthorized`` (the close code a WebSocket gets for the
same reason) when the key is missing, malformed, unknown or revoked.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from ..errors import CloseCode, ErrorCode, FrameError

STATUS: dict[ErrorCode, int] = {
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.QUOTA_EXCEEDED: 429,
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.FRAME_TOO_LARGE: 413,
    ErrorCode.UNKNOWN_TYPE: 404,
    ErrorCode.INVALID_FIELD: 400,
    ErrorCode.NOT_ALLOWED: 405,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TOO_LONG: 400,
}


class ApiError(Exception):
    """An answer other than success: HTTP ``status`` and the protocol's ``code``."""

    def __init__(
        self,
        code: ErrorCode | CloseCode,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or (STATUS[code] if isinstance(code, ErrorCode) else 401)
        self.headers = headers or {}

    @classmethod
    def of(cls, exc: FrameError) -> ApiError:
        """The API's answer to what the protocol would answer with an ``error`` frame."""
        return cls(exc.code, exc.message)

    def response(self) -> JSONResponse:
        body = {"code": int(self.code), "name": self.code.name.lower(), "message": self.message}
        return JSONResponse({"error": body}, status_code=self.status, headers=self.headers)


def unauthorized(message: str) -> ApiError:
    return ApiError(
        CloseCode.UNAUTHORIZED,
        message,
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="chatserver"'},
    )


def not_found(what: str) -> ApiError:
    return ApiError(ErrorCode.NOT_FOUND, f"no such {what}")


def invalid(message: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_FIELD, message)

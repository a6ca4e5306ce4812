"""The hub's error family and its one table: domain error -> HTTP status and stable code.

Services raise these with a message written for the caller (what was wrong, what to do);
one exception handler turns them into `{"error": {"code", "message"}}`. Anything else
becomes an opaque 500 whose details go only to the hub's own log.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from protocol.errors import InvalidSpec, MalformedMessage, ProtocolError

log = logging.getLogger("crosstally.hub")


class HubError(Exception):
    """Base of every error the hub reports to a caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAuthenticated(HubError):
    """No credential, or one the hub does not know (unknown, revoked)."""


class Forbidden(HubError):
    """A known caller asked for something its role or identity does not allow."""


class NotFound(HubError):
    """The named thing does not exist (or the caller may not know it exists)."""


class Conflict(HubError):
    """The request clashes with current state: already exists, already relayed, lease lost."""


class InvalidRequest(HubError):
    """The request is well-formed JSON but its content cannot be accepted."""


class AgreementViolation(HubError):
    """The query falls outside its data-sharing agreement (or the agreement is not in force)."""


class PayloadTooLarge(HubError):
    """The body exceeds the configured limit."""


class Gone(HubError):
    """The thing existed but was destroyed (a purged result, an ended query's relay blob)."""


class TooManyRequests(HubError):
    """The caller must wait `retry_after` seconds (too many failed authentications)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(HubError):
    """The hub cannot serve this right now; the caller should retry later."""


# The one table: (status, code). Order matters only for subclasses listed before their bases.
ERROR_TABLE: dict[type[Exception], tuple[int, str]] = {
    NotAuthenticated: (401, "not_authenticated"),
    Forbidden: (403, "forbidden"),
    AgreementViolation: (403, "agreement_violation"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    Gone: (410, "gone"),
    PayloadTooLarge: (413, "payload_too_large"),
    InvalidRequest: (422, "invalid_request"),
    InvalidSpec: (422, "invalid_spec"),
    TooManyRequests: (429, "too_many_requests"),
    MalformedMessage: (400, "malformed_message"),
    ProtocolError: (409, "protocol_state"),
    Unavailable: (503, "unavailable"),
}


def lookup(exc: Exception) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return 500, "internal"


def error_response(
    status: int, code: str, message: str, *, retry_after: int | None = None
) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def install_handlers(app: FastAPI) -> None:
    """Register the one handler for domain errors plus uniform bodies for framework errors."""

    async def domain(_: Request, exc: Exception) -> JSONResponse:
        status, code = lookup(exc)
        retry_after = exc.retry_after if isinstance(exc, TooManyRequests) else None
        return error_response(status, code, str(exc), retry_after=retry_after)

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    async def http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # The traceback stays in the hub's log; request bodies never go there.
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal", "internal error; the hub operator has the details")

    for cls in ERROR_TABLE:
        app.add_exception_handler(cls, domain)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(Exception, internal)

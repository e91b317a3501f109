"""The one table mapping domain errors to HTTP, and the JSON error shape:
``{"error": {"code": "...", "message": "...", "detail": {...}}}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from docsvc import errors

STATUS_BY_ERROR: dict[type[errors.DocsvcError], int] = {
    errors.NotFoundError: 404,
    errors.ValidationFailedError: 422,
    errors.ConflictError: 409,
    errors.AuthenticationError: 401,
    errors.AccountLockedError: 423,
    errors.PermissionDeniedError: 403,
    errors.PayloadTooLargeError: 413,
    errors.UnsupportedMediaError: 415,
    errors.IntegrityFailedError: 500,
    errors.StorageUnavailableError: 503,
    errors.RateLimitedError: 429,
    errors.UpstreamUnavailableError: 502,
    errors.SigningUnavailableError: 503,
}

HTTP_CODES = {400: "bad_request", 401: "authentication_failed", 403: "permission_denied",
              404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
              415: "unsupported_media_type", 429: "rate_limited"}


def status_for(exc: errors.DocsvcError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_body(code: str, message: str, detail: object = None) -> dict:
    return {"error": {"code": code, "message": message, "detail": detail or {}}}


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.DocsvcError)
    async def _domain(_: Request, exc: errors.DocsvcError) -> JSONResponse:
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(exc.code, exc.message, exc.detail), status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse(error_body("validation_failed", "request is invalid", {"errors": detail}), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)


# --- Retry-After on 429 ---------------------------------------------------------------------
# Appended as a wrapper so the table and the generic handler above stay untouched: Starlette
# picks the handler of the most specific class in the exception's MRO, so rate-limit errors get
# this one, which adds the Retry-After header clients (and RFC 6585) expect.
_install_generic = install


def install(app: FastAPI) -> None:  # noqa: F811 - extends the installer above
    """The generic handlers, plus ``Retry-After`` (from ``detail.retry_after_seconds``) on 429."""
    _install_generic(app)

    @app.exception_handler(errors.RateLimitedError)
    async def _rate_limited(_: Request, exc: errors.RateLimitedError) -> JSONResponse:
        retry_after = exc.detail.get("retry_after_seconds")
        headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else None
        return JSONResponse(error_body(exc.code, exc.message, exc.detail), status_for(exc), headers=headers)

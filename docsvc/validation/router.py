"""Validation API: anyone may validate an uploaded PDF (size- and rate-limited); signed-in users
and system clients may validate a stored version of a document they can read.

``?format=json|html|pdf`` picks the report; without it the ``Accept`` header does (JSON unless
HTML or PDF is preferred). Validation is CPU-bound and runs in worker threads, at most a few at
a time, so public uploads cannot starve the event loop or the other routes' thread pool."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from docsvc.deps import ActorDep, RuntimeDep, SessionDep, SettingsDep
from docsvc.settings import Settings
from docsvc.uploads import openapi_body
from docsvc.validation import service
from docsvc.validation.intake import received_pdf
from docsvc.validation.ratelimit import SlidingWindowRateLimiter
from docsvc.validation.schemas import MEDIA_TYPES, ReportFormat, ValidationReportRead
from signing.validation import ValidationReport

router = APIRouter(tags=["validation"])

_ACCEPTED = {"application/json": ReportFormat.JSON, "text/html": ReportFormat.HTML,
             "application/pdf": ReportFormat.PDF}
#: The HTML report shows values from untrusted files: even if escaping failed, nothing may run.
_HTML_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                 "X-Content-Type-Options": "nosniff"}
_REPORT_RESPONSES = {200: {"model": ValidationReportRead, "description": "The report in the requested format.",
                           "content": {"text/html": {}, "application/pdf": {}}}}
FormatQuery = Annotated[ReportFormat | None, Query(alias="format", description="json, html or pdf; "
                                                   "overrides the Accept header")]


@dataclass
class ValidationLimits:
    """Per-application state: the public rate limiter and the cap on concurrent validations."""

    rate: SlidingWindowRateLimiter
    cpu: anyio.CapacityLimiter


def _limits(app: FastAPI, settings: Settings) -> ValidationLimits:
    # Created on first use, inside the event loop (a CapacityLimiter binds to it); one per app.
    limits = getattr(app.state, "validation_limits", None)
    if limits is None:
        limits = app.state.validation_limits = ValidationLimits(
            SlidingWindowRateLimiter(settings.signing.validation_rate_per_minute, 60.0),
            anyio.CapacityLimiter(max(1, os.cpu_count() or 1)))
    return limits


def negotiate(explicit: ReportFormat | None, accept: str | None) -> ReportFormat:
    """The explicit ``?format=``, else the Accept entry with the highest q among ours, else JSON."""
    if explicit is not None:
        return explicit
    best, best_q = ReportFormat.JSON, 0.0
    for entry in (accept or "").split(","):
        media, *params = (p.strip() for p in entry.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        fmt = _ACCEPTED.get(media.lower())
        if fmt is not None and q > best_q:
            best, best_q = fmt, q
    return best


def _client_address(request: Request) -> str:
    # The socket peer: behind a reverse proxy, run uvicorn with --proxy-headers and
    # --forwarded-allow-ips so this is the real client; X-Forwarded-For itself is spoofable.
    return request.client.host if request.client else "unknown"


def _response(report: ValidationReport, fmt: ReportFormat, body: bytes | None, name: str) -> Response:
    headers = {"Vary": "Accept", "Cache-Control": "no-store"}
    if fmt is ReportFormat.JSON:
        return JSONResponse(report.to_dict(), headers=headers)
    if fmt is ReportFormat.HTML:
        return Response(body, media_type=MEDIA_TYPES[fmt], headers={**headers, **_HTML_HEADERS})
    stem = name.rsplit(".", 1)[0] or "document"
    headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(stem + '-validation.pdf')}"
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)


def _validate_and_render(settings: Settings, stream, fmt: ReportFormat, name: str):
    report = service.validate_stream(settings, stream)
    return report, (None if fmt is ReportFormat.JSON else service.render_report(report, fmt, name))


@router.post("/validation", openapi_extra=openapi_body("application/pdf"), responses=_REPORT_RESPONSES)
async def validate_upload(request: Request, settings: SettingsDep, fmt: FormatQuery = None) -> Response:
    """Validate every signature in an uploaded PDF (raw ``application/pdf`` body or multipart
    ``file``). No login; limited in size (``signing.max_validation_upload_bytes``, 413) and rate
    (``signing.validation_rate_per_minute`` per client address and process, 429). The file is
    not kept."""
    limits = _limits(request.app, settings)
    limits.rate.check(_client_address(request))
    fmt = negotiate(fmt, request.headers.get("accept"))
    async with received_pdf(request, settings.signing.max_validation_upload_bytes) as (stream, name):
        report, body = await anyio.to_thread.run_sync(_validate_and_render, settings, stream, fmt, name,
                                                      limiter=limits.cpu)
    return _response(report, fmt, body, name)


def _stored(runtime, session, actor, document_id: int, seq: int, fmt: ReportFormat):
    row, report = service.validate_stored_version(session, runtime.store, runtime.settings, actor, document_id, seq)
    return row, report, (None if fmt is ReportFormat.JSON else service.render_report(report, fmt, row.filename))


@router.get("/documents/{document_id}/versions/{seq}/validation", responses=_REPORT_RESPONSES)
async def validate_stored_version(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep,
                                  document_id: int, seq: int, fmt: FormatQuery = None) -> Response:
    """Validate the signatures of a stored version (its SHA-256 is checked first; another
    organisation's document answers 404). The validation is recorded in the audit log."""
    fmt = negotiate(fmt, request.headers.get("accept"))
    limits = _limits(request.app, runtime.settings)
    row, report, body = await anyio.to_thread.run_sync(_stored, runtime, session, actor, document_id, seq, fmt,
                                                       limiter=limits.cpu)
    response = _response(report, fmt, body, row.filename)
    response.headers["X-Content-SHA256"] = row.sha256
    return response

"""The hub's HTTP API (see ``inter_axis.client`` for the wire format). Handlers parse,
authenticate, call ``HubService`` and map ``TransportError`` codes to statuses.

The routes every package takes (``POST /v1/messages``, ``POST /v1/messages/batch``,
``POST /v1/messages/contents``, ``GET /v1/messages/{id}/content``) are answered by
``PackageRoutes``, a plain ASGI handler in front of the FastAPI app: they read their few headers
themselves and skip FastAPI's middleware stack and dependency solving, a fixed cost of every
request (~0.2 ms of the hub's CPU, a tenth of a one-page send). Every other route is FastAPI's."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Body, Depends, FastAPI, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from docsvc.axis_hub.batch import (
    BATCH_MEDIA_TYPE,
    MAX_MANIFEST_BYTES,
    BatchReceiver,
    open_contents,
    outcome_json,
)
from docsvc.axis_hub.service import IDEMPOTENCY_KEY, MAX_GET_MANY, HubService
from docsvc.axis_hub.storage import PartialUpload
from inter_axis.transport import (
    DUPLICATE_DOCUMENT,
    IDEMPOTENCY_CONFLICT,
    INVALID_PACKAGE,
    NOT_FOUND,
    SENDER_MISMATCH,
    TOO_LARGE,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNKNOWN_RECIPIENT,
    SendReceipt,
    TransportError,
)

log = logging.getLogger("docsvc.axis_hub")

#: Bytes of an upload gathered in memory before they are written out (see ``send``).
WRITE_BYTES = 1024 * 1024
#: Packages up to this size are answered from memory by ``GET .../content``; larger ones streamed.
SMALL_CONTENT_BYTES = 1024 * 1024
#: Longest ``get_many`` request body (a hundred ids of 64 characters take ~7 KB).
MAX_IDS_BODY = 64 * 1024
MESSAGE_ID = re.compile(r"[^/]{1,64}")
CONTENT_PATH = re.compile(r"/v1/messages/([^/]{1,64})/content")
STATUS_BY_CODE = {
    UNAUTHORIZED: 401, SENDER_MISMATCH: 403, NOT_FOUND: 404, DUPLICATE_DOCUMENT: 409, IDEMPOTENCY_CONFLICT: 409,
    TOO_LARGE: 413, INVALID_PACKAGE: 422, UNKNOWN_RECIPIENT: 422, UNAVAILABLE: 503,
}


def _error(code: str, message: str, detail: dict | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if code == UNAUTHORIZED else None
    return JSONResponse({"error": {"code": code, "message": message, "detail": detail or {}}},
                        STATUS_BY_CODE.get(code, 400), headers=headers)


async def _authenticate(service: HubService, authorization: str | None, x_agency_id: str | None) -> str:
    """The authenticated agency's OrganId (``Authorization: Bearer <secret>``)."""
    scheme, _, token = (authorization or "").partition(" ")
    secret = token.strip() if scheme.lower() == "bearer" else None
    # Nearly always answered from the agency cache, on the loop: a hop to the thread pool for each
    # request cost more than the check itself.
    known = service.authenticate_cached(secret, x_agency_id)
    if known is not None:
        return known
    return await run_in_threadpool(service.authenticate, secret, x_agency_id)


async def _agency(request: Request, authorization: Annotated[str | None, Header()] = None,
                  x_agency_id: Annotated[str | None, Header()] = None) -> str:
    return await _authenticate(request.app.state.hub, authorization, x_agency_id)


Agency = Annotated[str, Depends(_agency)]

Handler = Callable[[Request, str], Awaitable[Response]]


class PackageRoutes:
    """ASGI: the package routes answered here, anything else passed to ``app`` (FastAPI)."""

    def __init__(self, service: HubService, app: FastAPI) -> None:
        self.service = service
        self.app = app
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/messages"): self.send,
            ("POST", "/v1/messages/batch"): self.send_batch,
            ("POST", "/v1/messages/contents"): self.contents_many,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.routes.get((scope["method"], scope["path"]))
            if handler is None and scope["method"] == "GET" and (match := CONTENT_PATH.fullmatch(scope["path"])):
                message_id = match.group(1)

                async def handler(request: Request, agency: str) -> Response:
                    return await run_in_threadpool(self.content, agency, message_id)

            if handler is not None:
                await self._answer(handler, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            headers = request.headers
            agency = await _authenticate(self.service, headers.get("authorization"), headers.get("x-agency-id"))
            response = await handler(request, agency)
        except TransportError as exc:
            response = _error(exc.code, exc.message, exc.detail)
        except ClientDisconnect:
            return
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            response = JSONResponse({"error": {"code": UNAVAILABLE, "message": "the hub failed", "detail": {}}}, 500)
        await response(scope, receive, send)

    # -- sending -------------------------------------------------------------------------------
    def _write(self, upload: PartialUpload | None, data: bytes) -> PartialUpload:
        """Append ``data`` (to a new upload when there is none yet). An upload begun here whose first
        write fails is discarded here: the caller never got hold of it (a full disk must not leak a
        file handle and a ``.part`` file per request)."""
        begun = upload is None
        upload = upload or self.service.storage.begin()
        try:
            self.service.storage.write(upload, data)
        except BaseException:
            if begun:
                self.service.storage.discard(upload)
            raise
        return upload

    def _write_and_accept(self, upload: PartialUpload | None, data: bytes, sender: str, idempotency_key: str,
                          kind: str | None) -> SendReceipt:
        """The last bytes, then acceptance; the upload is disposed of whatever happens."""
        try:
            upload = self._write(upload, data)
        except BaseException:
            if upload is not None:
                self.service.storage.discard(upload)
            raise
        try:
            self.service.storage.finish(upload)
        except BaseException:
            self.service.storage.discard(upload)
            raise
        return self.service.accept(sender, upload, idempotency_key, kind)  # disposes of the upload

    async def send(self, request: Request, sender: str) -> Response:
        """``send`` / ``update_status`` (``?kind=status``): the body is the package."""
        service = self.service
        headers: Headers = request.headers
        idempotency_key = headers.get("idempotency-key")
        if not idempotency_key or not IDEMPOTENCY_KEY.match(idempotency_key):
            return _error(INVALID_PACKAGE, "Idempotency-Key must be 8-128 URL-safe characters",
                          {"reason": "idempotency_key"})
        kind = request.query_params.get("kind")
        if kind not in (None, "document", "status"):
            return _error(INVALID_PACKAGE, "kind must be document or status", {"reason": "kind"})
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > service.max_package_bytes:
            return _error(TOO_LARGE, f"package of {declared} bytes exceeds {service.max_package_bytes}",
                          {"size": int(declared), "limit": service.max_package_bytes})
        # The body arrives in socket-sized pieces and every blocking step is a hop to the thread
        # pool, so pieces are gathered up to WRITE_BYTES before each write, and the last write, the
        # fsync and the acceptance share one hop: a one-page package takes a single one.
        upload = None
        try:
            pending, pending_size, received = [], 0, 0
            async for chunk in request.stream():
                pending.append(chunk)
                pending_size += len(chunk)
                received += len(chunk)
                if received > service.max_package_bytes:
                    return _error(TOO_LARGE, f"package exceeds {service.max_package_bytes} bytes",
                                  {"limit": service.max_package_bytes})
                if pending_size >= WRITE_BYTES:
                    upload = await run_in_threadpool(self._write, upload, b"".join(pending))
                    pending, pending_size = [], 0
            last, upload = upload, None  # from here on, _write_and_accept disposes of it
            receipt = await run_in_threadpool(self._write_and_accept, last, b"".join(pending), sender,
                                              idempotency_key, kind)
        finally:
            # A refusal before acceptance, or a dropped client.
            if upload is not None:
                await run_in_threadpool(service.storage.discard, upload)
        return JSONResponse(outcome_json(receipt), 200 if receipt.replayed else 201)

    async def send_batch(self, request: Request, sender: str) -> Response:
        """``send_many``: one outcome per package (see ``inter_axis.client`` for the format)."""
        service = self.service
        declared = request.headers.get("content-length")
        length = int(declared) if declared and declared.isdigit() else None
        if length is not None and length > service.max_batch_bytes + MAX_MANIFEST_BYTES + 1:
            return _error(TOO_LARGE, f"a batch carries at most {service.max_batch_bytes} bytes of packages",
                          {"reason": "batch_bytes", "size": length, "limit": service.max_batch_bytes})
        batch = BatchReceiver(service, length)
        try:
            async for chunk in request.stream():
                if batch.feed(chunk):
                    await run_in_threadpool(batch.write_pending)
            outcomes = await run_in_threadpool(batch.accept, sender)
        finally:
            # accept() hands the uploads over; this covers a refusal of the batch or a dropped client.
            if batch.holds_files:
                await run_in_threadpool(batch.discard)
        return JSONResponse({"results": [outcome_json(o) for o in outcomes]})

    # -- receiving -----------------------------------------------------------------------------
    async def contents_many(self, request: Request, recipient: str) -> Response:
        """``get_many``: ``{"message_ids": [...]}`` → a manifest line, then the bytes of every
        package found, in order."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_IDS_BODY:
            return _error(INVALID_PACKAGE, f"at most {MAX_GET_MANY} message ids", {"reason": "message_ids"})
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_IDS_BODY:
                return _error(INVALID_PACKAGE, f"at most {MAX_GET_MANY} message ids", {"reason": "message_ids"})
        try:
            message_ids = json.loads(body)["message_ids"]
        except (ValueError, KeyError, TypeError):
            message_ids = None
        if (not isinstance(message_ids, list) or len(message_ids) > MAX_GET_MANY
                or not all(isinstance(m, str) and MESSAGE_ID.fullmatch(m) for m in message_ids)):
            return _error(INVALID_PACKAGE, f'expected {{"message_ids": [at most {MAX_GET_MANY} ids]}}',
                          {"reason": "message_ids"})
        contents = await run_in_threadpool(open_contents, self.service, recipient, message_ids)
        return StreamingResponse(contents.body(), media_type=BATCH_MEDIA_TYPE,
                                 headers={"Content-Length": str(contents.length)})

    def content(self, recipient: str, message_id: str) -> Response:
        """``get``: the package's bytes (blocking: runs in the thread pool)."""
        package = self.service.package_for(recipient, message_id)
        headers = {"X-Content-SHA256": package.sha256}
        # A small package is read here, in the one thread-pool hop this handler takes; FileResponse
        # would take a hop for each of open, every 64 KiB read and close.
        with open(package.path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            if stat.st_size <= SMALL_CONTENT_BYTES:
                headers["Content-Disposition"] = f'attachment; filename="{message_id}.edxml"'
                return Response(fh.read(), media_type="application/xml", headers=headers)
        return FileResponse(package.path, media_type="application/xml", filename=f"{message_id}.edxml",
                            headers=headers, stat_result=stat)


def create_hub_app(service: HubService) -> PackageRoutes:
    """The hub as an ASGI app around a prepared ``HubService``."""
    app = FastAPI(title="docsvc axis hub", version="1")
    app.state.hub = service

    @app.exception_handler(TransportError)
    async def _refused(_: Request, exc: TransportError) -> JSONResponse:
        return _error(exc.code, exc.message, exc.detail)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/messages")
    def received(recipient: Agency, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONResponse:
        # Strings, integers and None only: straight to JSON, without FastAPI's per-value encoder walk.
        return JSONResponse({"messages": service.pending_for(recipient, limit)})

    @app.post("/v1/messages/{message_id}/ack")
    def ack(recipient: Agency, message_id: str) -> dict:
        service.ack(recipient, message_id)
        return {"message_id": message_id, "state": "delivered"}

    @app.post("/v1/acks")
    def ack_many(recipient: Agency,
                 message_ids: Annotated[list[Annotated[str, Query(max_length=64)]],
                                        Body(embed=True, max_length=1000)]) -> JSONResponse:
        unknown = service.ack_many(recipient, message_ids)
        if unknown:
            return _error(NOT_FOUND, f"no message {', '.join(unknown[:5])} for {recipient}", {"unknown": unknown})
        return JSONResponse({"acked": len(message_ids)})

    @app.get("/v1/sent/{message_id}")
    def sent(sender: Agency, message_id: str) -> dict:
        return service.sent_status(sender, message_id)

    @app.get("/v1/agencies")
    def agencies(_: Agency) -> dict:
        return {"agencies": service.agencies()}

    return PackageRoutes(service, app)

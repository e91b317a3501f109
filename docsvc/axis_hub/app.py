"""The hub's HTTP API (see ``inter_axis.client`` for the wire format). Handlers parse,
authenticate, call ``HubService`` and map ``TransportError`` codes to statuses."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import Body, Depends, FastAPI, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

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

#: Bytes of an upload gathered in memory before they are written out (see ``send``).
WRITE_BYTES = 1024 * 1024
#: Packages up to this size are answered from memory by ``GET .../content``; larger ones streamed.
SMALL_CONTENT_BYTES = 1024 * 1024
STATUS_BY_CODE = {
    UNAUTHORIZED: 401, SENDER_MISMATCH: 403, NOT_FOUND: 404, DUPLICATE_DOCUMENT: 409, IDEMPOTENCY_CONFLICT: 409,
    TOO_LARGE: 413, INVALID_PACKAGE: 422, UNKNOWN_RECIPIENT: 422, UNAVAILABLE: 503,
}


def _error(code: str, message: str, detail: dict | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if code == UNAUTHORIZED else None
    return JSONResponse({"error": {"code": code, "message": message, "detail": detail or {}}},
                        STATUS_BY_CODE.get(code, 400), headers=headers)


async def _agency(request: Request, authorization: Annotated[str | None, Header()] = None,
                  x_agency_id: Annotated[str | None, Header()] = None) -> str:
    """The authenticated agency's OrganId (``Authorization: Bearer <secret>``)."""
    scheme, _, token = (authorization or "").partition(" ")
    secret = token.strip() if scheme.lower() == "bearer" else None
    # Nearly always answered from the agency cache, on the loop: a hop to the thread pool for each
    # request cost more than the check itself.
    known = request.app.state.hub.authenticate_cached(secret, x_agency_id)
    if known is not None:
        return known
    return await run_in_threadpool(request.app.state.hub.authenticate, secret, x_agency_id)


Agency = Annotated[str, Depends(_agency)]


def create_hub_app(service: HubService) -> FastAPI:
    """The hub as an ASGI app around a prepared ``HubService``."""
    app = FastAPI(title="docsvc axis hub", version="1")
    app.state.hub = service

    @app.exception_handler(TransportError)
    async def _refused(_: Request, exc: TransportError) -> JSONResponse:
        return _error(exc.code, exc.message, exc.detail)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    def _write(upload: PartialUpload | None, data: bytes) -> PartialUpload:
        upload = upload or service.storage.begin()
        service.storage.write(upload, data)
        return upload

    def _write_and_accept(upload: PartialUpload | None, data: bytes, sender: str, idempotency_key: str,
                          kind: str | None) -> tuple[SendReceipt, PartialUpload]:
        upload = _write(upload, data)
        try:
            service.storage.finish(upload)
            return service.accept(sender, upload, idempotency_key, kind), upload
        except BaseException:
            service.storage.discard(upload)
            raise

    @app.post("/v1/messages", status_code=201)
    async def send(request: Request, sender: Agency,
                   idempotency_key: Annotated[str | None, Header()] = None,
                   kind: Annotated[str | None, Query(pattern="^(document|status)$")] = None) -> JSONResponse:
        if not idempotency_key or not IDEMPOTENCY_KEY.match(idempotency_key):
            return _error(INVALID_PACKAGE, "Idempotency-Key must be 8-128 URL-safe characters",
                          {"reason": "idempotency_key"})
        declared = request.headers.get("content-length")
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
                    upload = await run_in_threadpool(_write, upload, b"".join(pending))
                    pending, pending_size = [], 0
            receipt, upload = await run_in_threadpool(_write_and_accept, upload, b"".join(pending), sender,
                                                      idempotency_key, kind)
        finally:
            # accept() disposes of the upload itself; this covers a refusal or a dropped client.
            if upload is not None:
                await run_in_threadpool(service.storage.discard, upload)
        body = {"message_id": receipt.message_id, "document_id": receipt.document_id,
                "recipients": list(receipt.recipients), "kind": receipt.kind, "replayed": receipt.replayed}
        return JSONResponse(body, 200 if receipt.replayed else 201)

    @app.post("/v1/messages/batch")
    async def send_batch(request: Request, sender: Agency) -> JSONResponse:
        """``send_many``: one outcome per package (see ``inter_axis.client`` for the format)."""
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

    @app.post("/v1/messages/contents")
    async def contents_many(recipient: Agency,
                            message_ids: Annotated[list[Annotated[str, Query(max_length=64)]],
                                                   Body(embed=True, max_length=MAX_GET_MANY)]) -> StreamingResponse:
        """``get_many``: a manifest line, then the bytes of every package found, in order."""
        contents = await run_in_threadpool(open_contents, service, recipient, message_ids)
        return StreamingResponse(contents.body(), media_type=BATCH_MEDIA_TYPE,
                                 headers={"Content-Length": str(contents.length)})

    @app.get("/v1/messages")
    def received(recipient: Agency, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONResponse:
        # Strings, integers and None only: straight to JSON, without FastAPI's per-value encoder walk.
        return JSONResponse({"messages": service.pending_for(recipient, limit)})

    @app.get("/v1/messages/{message_id}/content")
    def content(recipient: Agency, message_id: str) -> Response:
        package = service.package_for(recipient, message_id)
        headers = {"X-Content-SHA256": package.sha256}
        # A small package is read here, in the one thread-pool hop this handler already takes;
        # FileResponse would take a hop for each of open, every 64 KiB read and close.
        with open(package.path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            if stat.st_size <= SMALL_CONTENT_BYTES:
                headers["Content-Disposition"] = f'attachment; filename="{message_id}.edxml"'
                return Response(fh.read(), media_type="application/xml", headers=headers)
        return FileResponse(package.path, media_type="application/xml", filename=f"{message_id}.edxml",
                            headers=headers, stat_result=stat)

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

    return app

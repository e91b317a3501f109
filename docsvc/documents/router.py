from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from docsvc import downloads, uploads
from docsvc.deps import ActorDep, RuntimeDep, SessionDep, UserDep
from docsvc.documents import files_service, service
from docsvc.documents.files_service import FileKind
from docsvc.documents.schemas import (
    DocumentCreate,
    DocumentRead,
    DocumentUpdate,
    FileRead,
    RegisterRequest,
    ShareCreate,
)
from docsvc.documents.types import Direction, Status

router = APIRouter(prefix="/documents", tags=["documents"])
UPLOAD_BODY = uploads.openapi_body("application/pdf")


@router.post("", response_model=DocumentRead, status_code=201)
def create_document(session: SessionDep, actor: UserDep, body: DocumentCreate):
    return service.create(session, actor, body)


@router.get("", response_model=list[DocumentRead])
def list_documents(session: SessionDep, actor: ActorDep, direction: Direction | None = None,
                   status: Status | None = None,
                   year: int | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                   offset: Annotated[int, Query(ge=0)] = 0):
    return service.list_readable(session, actor, direction=direction, status=status, year=year,
                                 limit=limit, offset=offset)


@router.get("/{document_id}", response_model=DocumentRead)
def get_document(session: SessionDep, actor: ActorDep, document_id: int):
    return service.read(session, actor, document_id)


@router.patch("/{document_id}", response_model=DocumentRead)
def update_document(session: SessionDep, actor: UserDep, document_id: int, body: DocumentUpdate):
    return service.update_draft(session, actor, document_id, body)


@router.post("/{document_id}/register", response_model=DocumentRead)
def register_document(session: SessionDep, actor: UserDep, document_id: int,
                      body: RegisterRequest | None = None):
    """Vào sổ: assigns the next number of the year (outgoing) or arrival number (incoming)."""
    return service.register(session, actor, document_id, body or RegisterRequest())


@router.post("/{document_id}/shares", status_code=204)
def share_document(session: SessionDep, actor: UserDep, document_id: int, body: ShareCreate) -> None:
    service.share(session, actor, document_id, body.organisation_id)


async def _upload(request: Request, runtime, session, actor, document_id: int, kind: FileKind, note: str | None):
    await run_in_threadpool(files_service.authorize_upload, session, actor, document_id)
    upload = await uploads.receive(request, runtime.store, max_bytes=runtime.settings.max_upload_bytes,
                                   require_pdf=kind == FileKind.VERSION, default_name=f"{kind}.pdf")
    return await run_in_threadpool(files_service.record, session, actor, document_id, kind, upload, note)


@router.post("/{document_id}/versions", response_model=FileRead, status_code=201, openapi_extra=UPLOAD_BODY)
async def upload_version(request: Request, runtime: RuntimeDep, session: SessionDep, actor: UserDep,
                         document_id: int, note: str | None = None):
    """Add a new immutable version of the main PDF (raw ``application/pdf`` body or multipart)."""
    return await _upload(request, runtime, session, actor, document_id, FileKind.VERSION, note)


@router.post("/{document_id}/attachments", response_model=FileRead, status_code=201, openapi_extra=UPLOAD_BODY)
async def upload_attachment(request: Request, runtime: RuntimeDep, session: SessionDep, actor: UserDep,
                            document_id: int, appendix: bool = False, note: str | None = None):
    """Add an attachment, or an appendix (phụ lục) with ``?appendix=true``."""
    kind = FileKind.APPENDIX if appendix else FileKind.ATTACHMENT
    return await _upload(request, runtime, session, actor, document_id, kind, note)


@router.get("/{document_id}/files", response_model=list[FileRead])
def list_files(session: SessionDep, actor: ActorDep, document_id: int):
    return files_service.list_files(session, actor, document_id)


@router.get("/{document_id}/versions/{seq}/content", response_class=StreamingResponse)
def download_version(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, document_id: int, seq: int):
    return _stream(runtime, session, actor, document_id, FileKind.VERSION, seq)


@router.get("/{document_id}/{kind}s/{seq}/content", response_class=StreamingResponse)
def download_attachment(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, document_id: int,
                        kind: FileKind, seq: int):
    return _stream(runtime, session, actor, document_id, kind, seq)


def _stream(runtime, session, actor, document_id: int, kind: FileKind, seq: int) -> StreamingResponse:
    row, chunks = files_service.open_for_read(session, runtime.store, actor, document_id, kind, seq)
    return downloads.file_response(chunks, filename=row.filename, content_type=row.content_type, size=row.size,
                                   sha256=row.sha256)

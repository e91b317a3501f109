"""HTTP routes for dossiers (``/dossiers``, signed-in officials) and for reusing results by
applicant id (``/reuse``, system clients and officials)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from docsvc import downloads, uploads
from docsvc.deps import ActorDep, RuntimeDep, SessionDep, UserDep
from docsvc.dossiers import service
from docsvc.dossiers.schemas import (
    ComponentCreate,
    ComponentRead,
    DossierCreate,
    DossierDetail,
    DossierKind,
    DossierRead,
    DossierStatus,
    FiledDocumentRead,
    FilingCreate,
    ReuseLookupRead,
    StatusChange,
)

dossiers = APIRouter(prefix="/dossiers", tags=["dossiers"])
reuse = APIRouter(prefix="/reuse", tags=["reuse"])
UPLOAD_BODY = uploads.openapi_body("application/octet-stream")


@dossiers.post("", response_model=DossierRead, status_code=201)
def create_dossier(session: SessionDep, actor: UserDep, body: DossierCreate):
    """Open a work file or receive a procedure dossier; ``code`` is generated when omitted."""
    return service.create(session, actor, body)


@dossiers.get("", response_model=list[DossierRead])
def list_dossiers(session: SessionDep, actor: UserDep, kind: DossierKind | None = None,
                  status: DossierStatus | None = None, applicant_id: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0)] = 0):
    """The caller's organisation's dossiers, newest first; a search by applicant id is audited."""
    return service.list_owned(session, actor, kind=kind, status=status, applicant_id=applicant_id,
                              limit=limit, offset=offset)


@dossiers.get("/{dossier_id}", response_model=DossierDetail)
def get_dossier(session: SessionDep, actor: UserDep, dossier_id: int):
    """With its components and filed documents; each read is an audit event."""
    return service.read(session, actor, dossier_id)


@dossiers.post("/{dossier_id}/status", response_model=DossierRead)
def change_status(session: SessionDep, actor: UserDep, dossier_id: int, body: StatusChange):
    """work: open → closed; procedure: received → processing → finished | rejected (or
    received → rejected). Finishing needs a filed result document."""
    return service.change_status(session, actor, dossier_id, body)


@dossiers.post("/{dossier_id}/documents", response_model=FiledDocumentRead, status_code=201)
def file_document(session: SessionDep, actor: UserDep, dossier_id: int, body: FilingCreate):
    """File a document the caller's organisation may read; a ``result`` must be registered."""
    return service.file_document(session, actor, dossier_id, body)


@dossiers.delete("/{dossier_id}/documents/{document_id}", status_code=204)
def remove_document(session: SessionDep, actor: UserDep, dossier_id: int, document_id: int) -> None:
    """Take a misfiled document out while the dossier is still open."""
    service.remove_document(session, actor, dossier_id, document_id)


@dossiers.post("/{dossier_id}/components", response_model=ComponentRead, status_code=201)
def add_component(session: SessionDep, actor: UserDep, dossier_id: int, body: ComponentCreate):
    """Record a paper the applicant supplied (thành phần hồ sơ); upload its scan separately."""
    return service.add_component(session, actor, dossier_id, body)


@dossiers.put("/{dossier_id}/components/{component_id}/content", response_model=ComponentRead,
              openapi_extra=UPLOAD_BODY)
async def upload_component_file(request: Request, runtime: RuntimeDep, session: SessionDep, actor: UserDep,
                                dossier_id: int, component_id: int):
    """Upload the component's scan, any file type (raw body with ``?filename=``, or multipart).
    A component takes one file; a re-scan is a new component."""
    await run_in_threadpool(service.authorize_component_upload, session, actor, dossier_id, component_id)
    upload = await uploads.receive(request, runtime.store, max_bytes=runtime.settings.max_upload_bytes,
                                   require_pdf=False,
                                   default_name=f"component-{component_id}")
    return await run_in_threadpool(service.record_component_file, session, actor, dossier_id, component_id, upload)


@dossiers.get("/{dossier_id}/components/{component_id}/content", response_class=StreamingResponse)
def download_component_file(runtime: RuntimeDep, session: SessionDep, actor: UserDep, dossier_id: int,
                            component_id: int):
    """The scan, checked against its SHA-256 before and while it is sent."""
    component, content_type, chunks = service.open_component_for_read(session, runtime.store, actor, dossier_id,
                                                                      component_id)
    return downloads.file_response(chunks, filename=component.filename, content_type=content_type,
                                   size=component.size, sha256=component.sha256)


@reuse.get("/results", response_model=ReuseLookupRead)
def lookup_results(session: SessionDep, actor: ActorDep,
                   applicant_id: Annotated[str, Query(description="12-digit personal id or tax code")]):
    """Finished procedure results of an applicant in the caller's organisation subtree."""
    return service.lookup_results(session, actor, applicant_id)


@reuse.get("/documents/{document_id}/content", response_class=StreamingResponse)
def download_result(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, document_id: int):
    """The latest version of a result document found through ``/reuse/results``."""
    version, chunks = service.open_result_for_read(session, runtime.store, actor, document_id)
    return downloads.file_response(chunks, filename=version.filename, content_type=version.content_type,
                                   size=version.size, sha256=version.sha256)


#: What the app includes: both prefixes behind one name.
router = APIRouter()
router.include_router(dossiers)
router.include_router(reuse)

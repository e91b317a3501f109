"""Signing API: enrol a key, sign a version (PIN + TOTP), issue a document with the seal."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from docsvc.deps import RuntimeDep, SessionDep, UserDep
from docsvc.documents.schemas import DocumentRead
from docsvc.signatures import keys_service, service
from docsvc.signatures.schemas import IssueRequest, KeyEnrol, KeyRead, SignatureRead, SignRequest

router = APIRouter(tags=["signing"])


class IssueRead(BaseModel):
    document: DocumentRead
    signature: SignatureRead


def _read(record, seq: int) -> SignatureRead:
    return SignatureRead.model_validate(record).model_copy(update={"version": seq})


@router.post("/signing/keys", response_model=KeyRead, status_code=201)
def enrol_key(session: SessionDep, runtime: RuntimeDep, actor: UserDep, body: KeyEnrol):
    """Issue a personal signing certificate (development PKI) and keep its key under the PIN.
    A new enrolment replaces the previous key."""
    return keys_service.enrol_personal(session, runtime.settings, actor, body.pin, body.personal_id)


@router.get("/signing/keys", response_model=list[KeyRead])
def list_keys(session: SessionDep, actor: UserDep):
    return keys_service.list_keys(session, actor)


@router.post("/documents/{document_id}/versions/{seq}/sign", response_model=SignatureRead, status_code=201)
def sign_version(document_id: int, seq: int, session: SessionDep, runtime: RuntimeDep, actor: UserDep,
                 body: SignRequest):
    """Sign version ``seq`` with your own key; the signed PDF becomes the next version."""
    record = service.sign_version(session, runtime.settings, runtime.store, actor, document_id, seq, body)
    return _read(record, session.get(service.DocumentFile, record.file_id).seq)


@router.post("/documents/{document_id}/issue", response_model=IssueRead, status_code=201)
def issue_document(document_id: int, session: SessionDep, runtime: RuntimeDep, actor: UserDep, body: IssueRequest):
    """Ban hành (clerks): number and date registered and stamped, then the organisation's seal."""
    result = service.issue(session, runtime.settings, runtime.store, actor, document_id, body)
    seq = session.get(service.DocumentFile, result.signature.file_id).seq
    return IssueRead(document=DocumentRead.model_validate(result.document), signature=_read(result.signature, seq))


@router.get("/documents/{document_id}/signatures", response_model=list[SignatureRead])
def list_signatures(document_id: int, session: SessionDep, actor: UserDep):
    return [_read(record, seq) for record, seq in service.list_signatures(session, actor, document_id)]

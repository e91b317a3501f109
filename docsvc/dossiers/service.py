"""Dossiers (hồ sơ): work files and administrative-procedure dossiers, their components and
filed documents, and the reuse of finished procedures' results by applicant id.

Every dossier belongs to one organisation. Only that organisation's clerks, specialists,
archivists and leaders see or change it; anyone else gets 404, so ids do not leak."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from archive import ObjectStore
from docsvc import downloads, errors
from docsvc.audit import service as audit
from docsvc.db.session import flush_or_raise
from docsvc.documents import service as documents
from docsvc.documents.models import Document, DocumentFile
from docsvc.documents.types import Status as DocumentStatus
from docsvc.documents.types import format_number
from docsvc.dossiers.models import Dossier, DossierComponent, DossierDocument
from docsvc.dossiers.schemas import (
    ApplicantIdType,
    ComponentCreate,
    ComponentRead,
    DocumentRole,
    DossierCreate,
    DossierDetail,
    DossierKind,
    DossierRead,
    DossierStatus,
    FiledDocumentRead,
    FilingCreate,
    ResultDocumentRead,
    ResultFileRead,
    ReusableDossierRead,
    ReuseLookupRead,
    StatusChange,
)
from docsvc.organisations.identifiers import PERSONAL_ID, validate_personal_id, validate_tax_code
from docsvc.organisations.models import Organisation
from docsvc.organisations.service import subtree_ids
from docsvc.principal import Actor, Role
from docsvc.uploads import Upload

DOSSIER_ROLES = (Role.CLERK, Role.SPECIALIST, Role.ARCHIVIST, Role.LEADER)
INITIAL_STATUS = {DossierKind.WORK: DossierStatus.OPEN, DossierKind.PROCEDURE: DossierStatus.RECEIVED}
TRANSITIONS: dict[str, dict[str, frozenset[DossierStatus]]] = {
    DossierKind.WORK: {DossierStatus.OPEN: frozenset({DossierStatus.CLOSED})},
    DossierKind.PROCEDURE: {
        # Refusing at reception (từ chối tiếp nhận) is as legitimate as refusing after review.
        DossierStatus.RECEIVED: frozenset({DossierStatus.PROCESSING, DossierStatus.REJECTED}),
        DossierStatus.PROCESSING: frozenset({DossierStatus.FINISHED, DossierStatus.REJECTED}),
    },
}
TERMINAL = frozenset({DossierStatus.CLOSED, DossierStatus.FINISHED, DossierStatus.REJECTED})
PROCEDURE_FIELDS = ("procedure_code", "applicant_id_type", "applicant_id", "applicant_name")
#: Counters in the documents' ``registers`` table that number generated dossier codes.
CODE_REGISTERS = {DossierKind.WORK: "hs_cv", DossierKind.PROCEDURE: "hs_tthc"}
MAX_REUSE_DOSSIERS = 200


# --- access -------------------------------------------------------------------------------

def _require_role(actor: Actor) -> None:
    if actor.kind != "user" or not actor.has_any(*DOSSIER_ROLES):
        raise errors.PermissionDeniedError("your role does not allow working with dossiers",
                                           needs=[r.value for r in DOSSIER_ROLES])


def get_owned(session: Session, actor: Actor, dossier_id: int) -> Dossier:
    """The dossier if ``actor`` holds a dossier role in the owning organisation; another
    organisation's dossier is 404, indistinguishable from an unknown id."""
    _require_role(actor)
    dossier = session.scalar(select(Dossier).where(Dossier.id == dossier_id,
                                                   Dossier.organisation_id == actor.organisation_id))
    if dossier is None:
        raise errors.NotFoundError("dossier not found")
    return dossier


def _require_not_terminal(dossier: Dossier) -> None:
    if dossier.status in TERMINAL:
        raise errors.InvalidStateError(f"the dossier is {dossier.status} and can no longer change",
                                       status=dossier.status)


# --- creating ------------------------------------------------------------------------------

def _to_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # a clerk's wall clock is Vietnam time
        value = value.replace(tzinfo=documents.VIETNAM)
    return value.astimezone(UTC)


def validate_applicant_id(id_type: ApplicantIdType, value: str) -> str:
    """Check ``value`` against its type; ``InvalidIdentifierError`` (422) if malformed."""
    if id_type == ApplicantIdType.PERSONAL_ID:
        return validate_personal_id(value)
    return validate_tax_code(value)


def applicant_id_type_of(value: str) -> ApplicantIdType:
    """Tell a 12-digit personal id from a tax code; ``InvalidIdentifierError`` if neither."""
    if PERSONAL_ID.match(value):
        return ApplicantIdType.PERSONAL_ID
    validate_tax_code(value)
    return ApplicantIdType.TAX_CODE


def _kind_fields(data: DossierCreate) -> dict:
    given = {name: getattr(data, name) for name in PROCEDURE_FIELDS if getattr(data, name) is not None}
    if data.kind == DossierKind.WORK:
        if given:
            raise errors.ValidationFailedError("procedure fields are for procedure dossiers only",
                                               fields=sorted(given))
        return {}
    missing = [name for name in PROCEDURE_FIELDS[:3] if name not in given]
    if missing:
        raise errors.ValidationFailedError("a procedure dossier needs " + ", ".join(missing), fields=missing)
    validate_applicant_id(data.applicant_id_type, data.applicant_id)
    return given


def _format_code(organ_id: str, kind: str, year: int, seq: int) -> str:
    # Work files: ND30 FileCode = OrganId.FileCatalog.FileNotation. Procedure dossiers get a
    # local receipt number; the national mã hồ sơ TTHC layout is not known yet.
    if kind == DossierKind.WORK:
        return f"{organ_id}.{year}.{seq:03d}"
    return f"{organ_id}.{year}.TTHC.{seq:06d}"


def _generate_code(session: Session, organisation_id: int, kind: str, year: int) -> str:
    organ_id = session.get(Organisation, organisation_id).organ_id
    for _attempt in range(100):  # skip numbers a caller already used as an explicit code
        seq = documents.next_number(session, organisation_id, CODE_REGISTERS[kind], year)
        code = _format_code(organ_id, kind, year, seq)
        if not session.scalar(select(exists().where(Dossier.organisation_id == organisation_id,
                                                    Dossier.code == code))):
            return code
    raise errors.ConflictError("could not generate a free dossier code; give one explicitly")


def create(session: Session, actor: Actor, data: DossierCreate) -> Dossier:
    """Open a work file or receive a procedure dossier in the actor's organisation."""
    _require_role(actor)
    fields = _kind_fields(data)
    received = _to_utc(data.received_at) or datetime.now(UTC)
    due = _to_utc(data.due_at)
    if due is not None and due <= received:
        raise errors.ValidationFailedError("due_at must be after received_at", field="due_at")
    year = received.astimezone(documents.VIETNAM).year  # FileCatalog: the year the file was formed
    code = data.code or _generate_code(session, actor.organisation_id, data.kind, year)
    dossier = Dossier(organisation_id=actor.organisation_id, kind=data.kind, code=code, title=data.title,
                      retention=data.retention, status=INITIAL_STATUS[data.kind], received_at=received,
                      due_at=due, created_by_id=actor.id, **fields)
    session.add(dossier)
    flush_or_raise(session, errors.ConflictError("a dossier with this code already exists", code=data.code))
    audit.record(session, actor, "dossier.created", object_type="dossier", object_id=dossier.id,
                 kind=dossier.kind, code=dossier.code, procedure_code=dossier.procedure_code)
    session.commit()
    return dossier


# --- reading -------------------------------------------------------------------------------

def list_owned(session: Session, actor: Actor, *, kind: DossierKind | None = None,
               status: DossierStatus | None = None, applicant_id: str | None = None,
               limit: int = 50, offset: int = 0) -> list[Dossier]:
    """The organisation's dossiers, newest first. A search by applicant id is personal data
    and is audited; plain listing is not (like documents)."""
    _require_role(actor)
    query = select(Dossier).where(Dossier.organisation_id == actor.organisation_id)
    if kind:
        query = query.where(Dossier.kind == kind)
    if status:
        query = query.where(Dossier.status == status)
    if applicant_id is not None:
        applicant_id_type_of(applicant_id)
        query = query.where(Dossier.applicant_id == applicant_id)
    found = list(session.scalars(query.order_by(Dossier.id.desc()).limit(limit).offset(offset)))
    if applicant_id is not None:
        audit.record(session, actor, "dossier.searched", object_type="applicant", object_id=applicant_id,
                     applicant_id=applicant_id, count=len(found))
        session.commit()
    return found


def _filed_view(filing: DossierDocument, doc: Document) -> FiledDocumentRead:
    return FiledDocumentRead(document_id=doc.id, role=filing.role, filed_at=filing.created_at,
                             doc_type=doc.doc_type, status=doc.status, number=doc.number, symbol=doc.symbol,
                             issued_date=doc.issued_date, subject=doc.subject)


def _detail(session: Session, dossier: Dossier) -> DossierDetail:
    components = session.scalars(select(DossierComponent).where(DossierComponent.dossier_id == dossier.id)
                                 .order_by(DossierComponent.id))
    filings = session.execute(select(DossierDocument, Document)
                              .join(Document, Document.id == DossierDocument.document_id)
                              .where(DossierDocument.dossier_id == dossier.id)
                              .order_by(DossierDocument.created_at, Document.id))
    return DossierDetail(**DossierRead.model_validate(dossier).model_dump(),
                         components=[ComponentRead.model_validate(c) for c in components],
                         documents=[_filed_view(f, d) for f, d in filings])


def read(session: Session, actor: Actor, dossier_id: int) -> DossierDetail:
    """The dossier with its components and documents; every read is an audit event."""
    dossier = get_owned(session, actor, dossier_id)
    detail = _detail(session, dossier)
    audit.record(session, actor, "dossier.read", object_type="dossier", object_id=dossier.id)
    session.commit()
    return detail


# --- status ----------------------------------------------------------------------------------

def _has_result(session: Session, dossier_id: int) -> bool:
    return bool(session.scalar(select(exists().where(DossierDocument.dossier_id == dossier_id,
                                                     DossierDocument.role == DocumentRole.RESULT))))


def change_status(session: Session, actor: Actor, dossier_id: int, change: StatusChange) -> Dossier:
    """Move along the dossier's lifecycle; any other move is ``InvalidStateError`` (409)."""
    dossier = get_owned(session, actor, dossier_id)
    allowed = TRANSITIONS[dossier.kind].get(dossier.status, frozenset())
    if change.status not in allowed:
        raise errors.InvalidStateError(f"a {dossier.kind} dossier cannot go from {dossier.status} to {change.status}",
                                       status=dossier.status, allowed=sorted(allowed))
    if change.status == DossierStatus.REJECTED and not change.reason:
        raise errors.ValidationFailedError("a rejection needs a reason for the applicant", field="reason")
    if change.status == DossierStatus.FINISHED and not _has_result(session, dossier.id):
        raise errors.InvalidStateError("file a result document before finishing the dossier",
                                       status=dossier.status)
    previous, dossier.status = dossier.status, change.status
    if change.status in TERMINAL:
        dossier.finished_at = datetime.now(UTC)
    audit.record(session, actor, "dossier.status_changed", object_type="dossier", object_id=dossier.id,
                 from_status=previous, to_status=change.status, reason=change.reason)
    session.commit()
    return dossier


# --- filed documents --------------------------------------------------------------------------

def _check_result_document(dossier: Dossier, doc: Document) -> None:
    if dossier.kind != DossierKind.PROCEDURE:
        raise errors.ValidationFailedError("only procedure dossiers have result documents", field="role")
    # A result is handed to the applicant and reused later: it must be an issued document.
    if doc.registered_at is None or doc.status == DocumentStatus.REVOKED:
        raise errors.InvalidStateError("a result must be a registered, unrevoked document",
                                       document_id=doc.id, document_status=doc.status)


def file_document(session: Session, actor: Actor, dossier_id: int, data: FilingCreate) -> FiledDocumentRead:
    """File a document the actor's organisation may read into one of its dossiers."""
    dossier = get_owned(session, actor, dossier_id)
    _require_not_terminal(dossier)
    doc = documents.get_readable(session, actor, data.document_id)
    if data.role == DocumentRole.RESULT:
        _check_result_document(dossier, doc)
    existing = session.get(DossierDocument, (dossier.id, doc.id))
    if existing is not None:
        raise errors.ConflictError("the document is already filed in this dossier", role=existing.role)
    filing = DossierDocument(dossier_id=dossier.id, document_id=doc.id, role=data.role)
    session.add(filing)
    session.flush()
    audit.record(session, actor, "dossier.document_filed", object_type="dossier", object_id=dossier.id,
                 document_id=doc.id, role=data.role)
    session.commit()
    return _filed_view(filing, doc)


def remove_document(session: Session, actor: Actor, dossier_id: int, document_id: int) -> None:
    """Take a misfiled document out of a dossier that is still open."""
    dossier = get_owned(session, actor, dossier_id)
    _require_not_terminal(dossier)
    removed = session.execute(delete(DossierDocument).where(DossierDocument.dossier_id == dossier.id,
                                                            DossierDocument.document_id == document_id))
    if removed.rowcount == 0:
        raise errors.NotFoundError("document is not filed in this dossier")
    audit.record(session, actor, "dossier.document_removed", object_type="dossier", object_id=dossier.id,
                 document_id=document_id)
    session.commit()


# --- components -------------------------------------------------------------------------------

def add_component(session: Session, actor: Actor, dossier_id: int, data: ComponentCreate) -> DossierComponent:
    """Record one paper the applicant supplied; its scan may be uploaded afterwards."""
    dossier = get_owned(session, actor, dossier_id)
    _require_not_terminal(dossier)
    component = DossierComponent(dossier_id=dossier.id, name=data.name, copies=data.copies)
    session.add(component)
    session.flush()
    audit.record(session, actor, "dossier.component_added", object_type="dossier", object_id=dossier.id,
                 component_id=component.id, name=data.name, copies=data.copies)
    session.commit()
    return component


def _get_component(session: Session, dossier: Dossier, component_id: int) -> DossierComponent:
    component = session.scalar(select(DossierComponent).where(DossierComponent.id == component_id,
                                                              DossierComponent.dossier_id == dossier.id))
    if component is None:
        raise errors.NotFoundError("component not found")
    return component


def _component_for_upload(session: Session, actor: Actor, dossier_id: int, component_id: int) -> DossierComponent:
    dossier = get_owned(session, actor, dossier_id)
    _require_not_terminal(dossier)
    component = _get_component(session, dossier, component_id)
    if component.sha256 is not None:  # received papers are evidence: add a component, never overwrite
        raise errors.InvalidStateError("this component already has its file", component_id=component.id)
    return component


def authorize_component_upload(session: Session, actor: Actor, dossier_id: int, component_id: int) -> None:
    """Refuse before any byte is received."""
    _component_for_upload(session, actor, dossier_id, component_id)
    session.rollback()  # release SQLite's write lock while the body streams in


def record_component_file(session: Session, actor: Actor, dossier_id: int, component_id: int,
                          upload: Upload) -> DossierComponent:
    """Point the component at the bytes already in the store (written first, see files_service)."""
    component = _component_for_upload(session, actor, dossier_id, component_id)
    # Conditional update: of two racing uploads only the first one sets the file.
    done = session.execute(update(DossierComponent)
                           .where(DossierComponent.id == component.id, DossierComponent.sha256.is_(None))
                           .values(filename=upload.filename, size=upload.stored.size,
                                   sha256=upload.stored.sha256, object_key=upload.stored.key))
    if done.rowcount != 1:
        raise errors.InvalidStateError("this component already has its file", component_id=component.id)
    session.refresh(component)
    audit.record(session, actor, "dossier.component_file_added", object_type="dossier", object_id=dossier_id,
                 component_id=component.id, sha256=component.sha256, size=component.size)
    session.commit()
    return component


def open_component_for_read(session: Session, store: ObjectStore, actor: Actor, dossier_id: int,
                            component_id: int) -> tuple[DossierComponent, str, Iterator[bytes]]:
    """Check access and integrity, audit the read; return the component, its content type
    and a stream that verifies the bytes again as they go out."""
    dossier = get_owned(session, actor, dossier_id)
    component = _get_component(session, dossier, component_id)
    if component.sha256 is None:
        raise errors.NotFoundError("this component has no file yet", component_id=component.id)
    downloads.require_intact(session, store, actor, component.object_key, component.sha256,
                    object_type="dossier", object_id=dossier.id, component_id=component.id)
    content_type = store.stat(component.object_key).content_type
    audit.record(session, actor, "dossier.component_read", object_type="dossier", object_id=dossier.id,
                 component_id=component.id, sha256=component.sha256)
    session.commit()
    return component, content_type, store.get(component.object_key, verify=True)


# --- reuse of results by applicant id ---------------------------------------------------------

def visible_organisations(session: Session, actor: Actor) -> set[int]:
    """Organisations whose results ``actor`` may reuse: its own and every one below it.

    A province-level portal client sees the province; a district's client only the district
    and its communes. People need a dossier role; administrators are refused."""
    if actor.kind == "user":
        _require_role(actor)
    elif actor.kind != "system":
        raise errors.PermissionDeniedError("reuse is for system clients and officials")
    if actor.organisation_id is None:
        raise errors.PermissionDeniedError("the client belongs to no organisation")
    return subtree_ids(session, actor.organisation_id)


def _result_filter(visible: set[int]):
    return (DossierDocument.role == DocumentRole.RESULT, Dossier.kind == DossierKind.PROCEDURE,
            Dossier.status == DossierStatus.FINISHED, Dossier.organisation_id.in_(visible),
            Document.status != DocumentStatus.REVOKED)


def _latest_versions(session: Session, document_ids: list[int]) -> dict[int, DocumentFile]:
    latest: dict[int, DocumentFile] = {}
    for row in session.scalars(select(DocumentFile).where(DocumentFile.document_id.in_(document_ids),
                                                          DocumentFile.kind == "version")
                               .order_by(DocumentFile.seq)):
        latest[row.document_id] = row
    return latest


def _result_view(doc: Document, version: DocumentFile | None) -> ResultDocumentRead:
    file = None if version is None else ResultFileRead(
        seq=version.seq, filename=version.filename, content_type=version.content_type, size=version.size,
        sha256=version.sha256, download_path=f"/reuse/documents/{doc.id}/content")
    number_symbol = format_number(doc.number, doc.symbol) if doc.number and doc.symbol else None
    return ResultDocumentRead(id=doc.id, number_symbol=number_symbol, doc_type=doc.doc_type,
                              subject=doc.subject, issued_date=doc.issued_date, file=file)


def _results_by_dossier(session: Session, visible: set[int], dossier_ids: list[int]) -> dict[int, list]:
    rows = session.execute(select(DossierDocument.dossier_id, Document)
                           .join(Document, Document.id == DossierDocument.document_id)
                           .join(Dossier, Dossier.id == DossierDocument.dossier_id)
                           .where(DossierDocument.dossier_id.in_(dossier_ids), *_result_filter(visible))
                           .order_by(Document.id)).all()
    latest = _latest_versions(session, [doc.id for _, doc in rows])
    found: dict[int, list[ResultDocumentRead]] = {}
    for dossier_id, doc in rows:
        found.setdefault(dossier_id, []).append(_result_view(doc, latest.get(doc.id)))
    return found


def lookup_results(session: Session, actor: Actor, applicant_id: str) -> ReuseLookupRead:
    """Finished procedure dossiers of one applicant in the actor's subtree, with their
    results, so that nobody is asked for the same paper twice. Every lookup is audited."""
    visible = visible_organisations(session, actor)
    id_type = applicant_id_type_of(applicant_id)
    rows = session.execute(select(Dossier, Organisation.organ_id)
                           .join(Organisation, Organisation.id == Dossier.organisation_id)
                           .where(Dossier.kind == DossierKind.PROCEDURE, Dossier.status == DossierStatus.FINISHED,
                                  Dossier.applicant_id_type == id_type, Dossier.applicant_id == applicant_id,
                                  Dossier.organisation_id.in_(visible))
                           .order_by(Dossier.finished_at.desc(), Dossier.id.desc())
                           .limit(MAX_REUSE_DOSSIERS)).all()
    results = _results_by_dossier(session, visible, [d.id for d, _ in rows])
    dossiers = [ReusableDossierRead(id=d.id, code=d.code, organisation_id=d.organisation_id, organ_id=organ_id,
                                    procedure_code=d.procedure_code, title=d.title, finished_at=d.finished_at,
                                    results=results.get(d.id, [])) for d, organ_id in rows]
    audit.record(session, actor, "reuse.lookup", object_type="applicant", object_id=applicant_id,
                 applicant_id=applicant_id, count=len(dossiers), dossier_ids=[d.id for d in dossiers])
    session.commit()
    return ReuseLookupRead(applicant_id=applicant_id, applicant_id_type=id_type, count=len(dossiers),
                           dossiers=dossiers)


def open_result_for_read(session: Session, store: ObjectStore, actor: Actor,
                         document_id: int) -> tuple[DocumentFile, Iterator[bytes]]:
    """The latest version of a result document of a finished dossier the actor may reuse.

    This is the only path by which a system client reads another organisation's document;
    anything that is not such a result is 404."""
    visible = visible_organisations(session, actor)
    dossier_id = session.scalar(select(DossierDocument.dossier_id)
                                .join(Dossier, Dossier.id == DossierDocument.dossier_id)
                                .join(Document, Document.id == DossierDocument.document_id)
                                .where(DossierDocument.document_id == document_id, *_result_filter(visible))
                                .order_by(DossierDocument.dossier_id).limit(1))
    version = None if dossier_id is None else _latest_versions(session, [document_id]).get(document_id)
    if version is None:
        raise errors.NotFoundError("result document not found")
    downloads.require_intact(session, store, actor, version.object_key, version.sha256,
                    object_type="document", object_id=document_id, file_id=version.id)
    audit.record(session, actor, "reuse.result_read", object_type="document", object_id=document_id,
                 dossier_id=dossier_id, file_id=version.id, seq=version.seq, sha256=version.sha256)
    session.commit()
    return version, store.get(version.object_key, verify=True)

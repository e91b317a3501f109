"""Signing a document version with a person's key, and issuing a document with the seal.

Every signature goes: checks that change nothing (document, version, key) → PIN and TOTP
(failures counted and committed, nothing else) → signing on temporary files with no database
transaction open (it may take seconds at B-LTA) → one transaction inserting the new immutable
version, the signature record and the audit event. Issuing also takes the register number in
that last transaction, so a failure anywhere gives the number back."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive import ObjectStore
from docsvc import errors
from docsvc.audit import service as audit
from docsvc.axis import service as axis_service
from docsvc.documents import files_service
from docsvc.documents import service as documents
from docsvc.documents.files_service import FileKind
from docsvc.documents.models import Document, DocumentFile
from docsvc.documents.schemas import RegisterRequest
from docsvc.documents.types import Direction, Status
from docsvc.organisations.models import Organisation
from docsvc.pdfgen import date_line
from docsvc.pki.images import cached_png
from docsvc.pki.service import signing_trust
from docsvc.principal import Actor, Role
from docsvc.settings import Settings
from docsvc.signatures import keys_service, stamping
from docsvc.signatures.models import SignatureRecord, SigningKey
from docsvc.signatures.schemas import IssueRequest, SignRequest
from docsvc.signatures.specs import build_spec
from docsvc.uploads import Upload
from docsvc.users.models import User
from signing.errors import InvalidPdfError, SigningError
from signing.interfaces import KeyBackend, SignatureSpec
from signing.pades import sign_pdf
from signing.pdf_input import PARSE_ERRORS

SIGNERS = (Role.LEADER, Role.SPECIALIST, Role.CLERK)
"""Who may sign a version with their own key (specialists initial drafts, leaders sign)."""


@dataclass(frozen=True)
class IssueResult:
    document: Document
    signature: SignatureRecord


@contextmanager
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="docsvc-sign-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _version(session: Session, doc: Document, seq: int | None) -> DocumentFile:
    query = select(DocumentFile).where(DocumentFile.document_id == doc.id, DocumentFile.kind == FileKind.VERSION)
    if seq is None:
        query = query.order_by(DocumentFile.seq.desc()).limit(1)
    else:
        query = query.where(DocumentFile.seq == seq)
    row = session.scalar(query)
    if row is None:
        raise errors.NotFoundError("version not found" if seq is not None else "the document has no version yet")
    return row


def _require_latest(session: Session, doc: Document, source: DocumentFile) -> None:
    """Only the newest version may be signed: a signature on an older one would fork the document,
    and the next step (issuing, sending) would silently drop whichever branch is not newest. Checked
    again in the transaction that records the result, since signing runs outside any transaction."""
    latest = _version(session, doc, None)
    if latest.id != source.id:
        raise errors.VersionConflictError(f"version {source.seq} is not the latest (version {latest.seq} is)",
                                          latest=latest.seq)


def _materialise(store: ObjectStore, row: DocumentFile, path: Path) -> Path:
    with path.open("wb") as out:
        for chunk in store.get(row.object_key, verify=True):
            out.write(chunk)
    return path


def _sign_file(settings: Settings, src: Path, dst: Path, key: KeyBackend, spec: SignatureSpec,
               prepare: Callable[[IncrementalPdfFileWriter], None] | None = None) -> None:
    trust = signing_trust(settings, spec.level, key.certificate)
    try:
        sign_pdf(src, dst, key, spec, timestamper=trust.timestamper, validation_context=trust.validation_context,
                 prepare=prepare)
    except InvalidPdfError as exc:
        raise errors.SigningFailedError(f"the version cannot be signed: {exc}", reason="invalid_pdf") from exc
    except SigningError as exc:
        raise errors.SigningFailedError(f"signing failed: {exc}", reason="signing_error") from exc


@contextmanager
def _unreadable_pdf_refused() -> Iterator[None]:
    """A stored version that passed the upload's header check may still be a damaged PDF: reading
    it (fields, signatures, anchors) is a 422 ``signing_failed``, never a 500."""
    try:
        yield
    except InvalidPdfError as exc:
        raise errors.SigningFailedError(f"the version cannot be signed: {exc}", reason="invalid_pdf") from exc
    except PARSE_ERRORS as exc:
        raise errors.SigningFailedError(f"the version is not a readable PDF: {type(exc).__name__}",
                                        reason="invalid_pdf") from exc


def _put(store: ObjectStore, path: Path, filename: str) -> Upload:
    with path.open("rb") as handle:
        stored = store.put(iter(lambda: handle.read(1024 * 1024), b""), content_type="application/pdf")
    return Upload(stored, filename, "application/pdf")


def _has_signatures(path: Path) -> bool:
    with path.open("rb") as handle:
        return bool(PdfFileReader(handle, strict=False).embedded_signatures)


def _with_registration_fields(src: Path, dst: Path) -> Path:
    """``src`` with the empty number/date fields added (unsigned update), or ``src`` itself
    when they exist already or an earlier signature forbids adding fields."""
    with src.open("rb") as handle:
        if stamping.has_registration_fields(handle):
            return src
    if _has_signatures(src):
        return src
    with src.open("rb") as handle, dst.open("wb") as out:
        stamping.add_registration_fields(handle, out)
    return dst


def _record(session: Session, actor: Actor, doc: Document, source: DocumentFile, upload: Upload,
            key: SigningKey, spec: SignatureSpec, *, purpose: str, profile: str) -> SignatureRecord:
    row = files_service.add_in_transaction(session, actor, doc.id, FileKind.VERSION, upload,
                                           note=f"{purpose}: {profile} {spec.level}", retry=False)
    record = SignatureRecord(document_id=doc.id, source_file_id=source.id, file_id=row.id, key_id=key.id,
                             signer_id=actor.id, purpose=purpose, profile=profile, level=spec.level,
                             field_name=spec.field_name or "", certificate_serial=key.serial)
    session.add(record)
    session.flush()
    audit.record(session, actor, f"document.{'issued' if purpose == 'issue' else 'signed'}", object_type="document",
                 object_id=doc.id, signature_id=record.id, source_version=source.seq, version=row.seq,
                 level=spec.level, profile=profile, certificate_serial=key.serial, sha256=row.sha256,
                 locks_document=spec.lock)
    return record


def _require_signable(doc: Document) -> None:
    if doc.status == Status.REVOKED:
        raise errors.InvalidStateError("a revoked document cannot be signed")
    if doc.status == Status.ISSUED:
        raise errors.InvalidStateError("an issued document cannot be signed again; make a copy to sign")


def sign_version(session: Session, settings: Settings, store: ObjectStore, actor: Actor, document_id: int,
                 seq: int, body: SignRequest) -> SignatureRecord:
    """Sign version ``seq`` with the actor's own key (PIN + TOTP) into a new version."""
    doc = documents.get_owned(session, actor, document_id, *SIGNERS)
    _require_signable(doc)
    if body.profile != "personal":
        # Decree 30 Art. 32-33: the seal, attachment and copy appearances are the agency's
        # signature, made with the organisation's key by its clerks, never with a personal key.
        raise errors.InvalidSignatureRequestError(
            f"the {body.profile} appearance is the organisation's signature: clerks apply it by issuing "
            "(POST /documents/{id}/issue); a personal key signs with the personal profile only",
            reason="use_issue")
    source = _version(session, doc, seq)
    _require_latest(session, doc, source)
    key = keys_service.require_personal_key(session, actor)
    needs_fields = body.profile == "personal" and doc.registered_at is None and doc.direction != Direction.INCOMING
    backend = keys_service.confirm(session, settings, actor, key, body.pin, body.otp, purpose="sign")
    user = session.get(User, actor.id)
    filename, source_id = source.filename, source.id
    session.rollback()  # no transaction (and no SQLite write lock) while signing
    with _workdir() as work, _unreadable_pdf_refused():
        src = _materialise(store, source, work / "in.pdf")
        if needs_fields:
            src = _with_registration_fields(src, work / "fields.pdf")
        image = cached_png(settings.pki_path / "images", "signature", user.full_name)
        spec = build_spec(src, profile=body.profile, level=body.level, certificate=backend.certificate,
                          image_path=image, reason=body.reason, anchor_text=body.anchor_text, page=body.page,
                          box=body.box)
        _sign_file(settings, src, work / "out.pdf", backend, spec)
        upload = _put(store, work / "out.pdf", filename)
    doc = documents.get_owned(session, actor, document_id, *SIGNERS)
    source = session.get(DocumentFile, source_id)
    _require_signable(doc)  # another request may have issued, revoked or signed it meanwhile
    _require_latest(session, doc, source)
    key = session.get(SigningKey, key.id)
    record = _record(session, actor, doc, source, upload, key, spec, purpose="sign", profile=body.profile)
    session.commit()
    return record


@contextmanager
def _closing(backend) -> Iterator[None]:
    """Close an HSM backend's token session when done; file keys hold nothing to close."""
    try:
        yield
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()


def _date_line(org: Organisation, doc: Document) -> str:
    return date_line(doc.place or org.address or org.name, doc.issued_date)


def issue(session: Session, settings: Settings, store: ObjectStore, actor: Actor, document_id: int,
          body: IssueRequest) -> IssueResult:
    """Ban hành: register the number and date, stamp them into the latest version's fields, and
    apply the organisation's seal at ``settings.signing.issue_level``. Clerks (văn thư) only
    (Decree 30 Art. 32-33), confirmed by their own PIN and TOTP."""
    doc = documents.get_owned(session, actor, document_id, Role.CLERK)
    if doc.direction == Direction.INCOMING:
        raise errors.InvalidStateError("incoming documents are registered, not issued")
    if doc.registered_at is not None or doc.status == Status.ISSUED:
        raise errors.DuplicateRegistrationError("document is already registered", number=doc.number)
    if doc.status == Status.REVOKED:
        raise errors.InvalidStateError("a revoked document cannot be issued")
    source = _version(session, doc, None)
    clerk_key = keys_service.require_personal_key(session, actor)
    keys_service.confirm(session, settings, actor, clerk_key, body.pin, body.otp, purpose="issue")
    org = session.get(Organisation, doc.organisation_id)
    seal = keys_service.ensure_seal(session, settings, actor, org)
    session.commit()
    backend = keys_service.open_seal(settings, org, seal)
    level = settings.signing.issue_level
    with _workdir() as work, _closing(backend), _unreadable_pdf_refused():
        src = _materialise(store, source, work / "in.pdf")
        try:
            doc = documents.register_in_transaction(session, actor, document_id,
                                                    RegisterRequest(issued_date=body.issued_date))
            number = f"{doc.number}/{doc.symbol}"
            src = _with_registration_fields(src, work / "fields.pdf")
            with src.open("rb") as handle:
                stamped = stamping.has_registration_fields(handle)
            registration = (f"Số: {number}", _date_line(org, doc))
            values = dict(zip((stamping.NUMBER_FIELD, stamping.DATE_FIELD), registration, strict=True))
            image = cached_png(settings.pki_path / "images", "seal", org.name)
            # A version signed elsewhere before docsvc could add its number/date fields cannot take
            # them now without breaking that signature: the seal itself then shows number and date,
            # as the issuing signature of the official-duty signing client does.
            spec = build_spec(src, profile="organisation", level=level, certificate=backend.certificate,
                              image_path=image, reason=f"Ban hành văn bản số {number}",
                              caption=() if stamped else registration, lock=body.lock_document)
            # Number and date are filled in the seal's own revision: the seal covers them (Decree 30
            # Art. 15.3: the agency signs after they are assigned), and a locking seal stays intact
            # when archive timestamps are added later.
            _sign_file(settings, src, work / "out.pdf", backend, spec,
                       prepare=(lambda writer: stamping.fill_in(writer, values)) if stamped else None)
            upload = _put(store, work / "out.pdf", source.filename)
            _require_latest(session, doc, source)  # nobody signed or uploaded a newer version meanwhile
            doc.status = Status.ISSUED
            record = _record(session, actor, doc, source, upload, seal, spec, purpose="issue",
                             profile="organisation")
            # External recipients: delivery over the axis is queued in this same transaction.
            axis_service.queue_outgoing(session, settings, actor, doc)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return IssueResult(doc, record)


def list_signatures(session: Session, actor: Actor, document_id: int) -> list[tuple[SignatureRecord, int]]:
    """Signatures of a readable document, each with the version number it produced."""
    doc = documents.get_readable(session, actor, document_id)
    rows = session.execute(select(SignatureRecord, DocumentFile.seq).join(DocumentFile,
                                                                          DocumentFile.id == SignatureRecord.file_id)
                           .where(SignatureRecord.document_id == doc.id).order_by(SignatureRecord.id))
    return [(record, seq) for record, seq in rows]


def count(session: Session, document_id: int) -> int:
    return session.scalar(select(func.count()).select_from(SignatureRecord)
                          .where(SignatureRecord.document_id == document_id)) or 0

"""Taking packages from the axis inbox of our organisations: fetch, parse, verify, register, ack.

Per package, in this order: (1) a package already in ``axis_inbox`` (same organisation and axis
message id) is only acknowledged again: a crash between our commit and the ack never registers
twice; (2) it is downloaded to a temporary file and parsed; unreadable or hostile input is recorded
as ``rejected`` with the library's error code and acknowledged, so it cannot block the inbox, and
nothing else is written; (3) a document package has its XML signature and the PAdES signatures of
its PDFs checked (the verdicts are stored; a failed check flags the document, it is never silently
accepted), its attachments stored, and one transaction registers it with an arrival number, records
the exchange and queues status 01 then 03 to the sender; a status package is applied to the
exchange it answers; (4) the package is acknowledged."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docsvc import errors
from docsvc.audit import service as audit
from docsvc.axis.models import AxisExchange, AxisInboxEntry, AxisStatusMessage
from docsvc.axis.transport import transport_for
from docsvc.documents import files_service
from docsvc.documents import service as documents
from docsvc.documents.files_service import FileKind
from docsvc.documents.models import Document
from docsvc.documents.schemas import RegisterRequest
from docsvc.documents.types import DOCUMENT_TYPES, Direction, Status
from docsvc.jobs import outbox
from docsvc.organisations.models import Organisation
from docsvc.pki.trust import other_certs, trust_roots
from docsvc.principal import SERVICE_ACTOR, Actor, Role
from docsvc.runtime import Runtime
from docsvc.uploads import Upload
from inter_axis.errors import EdxmlError
from inter_axis.model import ParsedAttachment, StatusMessage
from inter_axis.parse import ParsedPackage, read_package
from inter_axis.transport import NOT_FOUND, AxisTransport, ReceivedRef, TransportError, new_idempotency_key
from inter_axis.xmldsig import verify_package
from signing.errors import SigningError
from signing.validation import validate_pdf

log = logging.getLogger(__name__)
_PRIORITY = {0: "thuong", 1: "khan", 2: "thuong_khan", 3: "hoa_toc", 4: "hoa_toc"}
_TYPE_BY_NAME = {name.casefold(): code for code, (name, _abbr) in DOCUMENT_TYPES.items()}
SEND_STATUSES = "docsvc.axis_send_statuses"


def clerk_of(org: Organisation) -> Actor:
    """docsvc acting as the organisation's văn thư for automatic registration (audited as such)."""
    return Actor(kind="service", id=None, name=f"axis:{org.organ_id}", organisation_id=org.id,
                 roles=frozenset({Role.CLERK.value}))


@dataclass(frozen=True)
class Verification:
    signature: str
    """The XML-DSig verdict: ``valid`` or the reason it is not."""
    pades: str
    """The worst PAdES indication over the attached PDFs, ``no_pdf``, or ``invalid_pdf``."""

    @property
    def verified(self) -> bool:
        return self.signature == "valid" and self.pades == "TOTAL-PASSED"


def poll(rt: Runtime, limit: int = 100) -> dict[str, int]:
    """One round over every organisation with axis credentials; returns outcome counts."""
    counts: dict[str, int] = {}
    with rt.sessions() as session:
        orgs = list(session.scalars(select(Organisation).where(
            Organisation.organ_id.in_(rt.settings.axis.organ_ids()))))
        session.expunge_all()
    for org in orgs:
        transport = transport_for(rt.settings, org.organ_id)
        for ref in transport.list_received(limit=limit):
            outcome = take(rt, org, transport, ref)
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def take(rt: Runtime, org: Organisation, transport: AxisTransport, ref: ReceivedRef) -> str:
    """Process one received package (idempotent by its axis message id); returns its outcome."""
    with rt.sessions() as session:
        entry = session.scalar(select(AxisInboxEntry).where(AxisInboxEntry.organ_id == org.organ_id,
                                                           AxisInboxEntry.message_id == ref.message_id))
        outcome = entry.outcome if entry is not None else None
    if outcome is None:
        outcome = _fetch_and_process(rt, org, transport, ref)
    transport.ack(ref.message_id)
    with rt.sessions() as session:
        entry = session.scalar(select(AxisInboxEntry).where(AxisInboxEntry.organ_id == org.organ_id,
                                                           AxisInboxEntry.message_id == ref.message_id))
        if entry is not None and entry.acked_at is None:
            entry.acked_at = datetime.now(UTC)
            session.commit()
    return outcome


def _fetch_and_process(rt: Runtime, org: Organisation, transport: AxisTransport, ref: ReceivedRef) -> str:
    with tempfile.TemporaryDirectory(prefix="docsvc-axis-in-") as directory:
        path = Path(directory) / "package.edxml"
        try:
            with path.open("wb") as out:
                transport.get(ref.message_id, out)
        except TransportError as exc:
            if exc.code != NOT_FOUND:
                raise
            return _reject(rt, org, ref, exc.code, exc.message)
        try:
            parsed = read_package(path, spool_dir=directory, max_bytes=rt.settings.axis.max_package_bytes)
        except EdxmlError as exc:
            return _reject(rt, org, ref, exc.code, exc.message)
        with parsed:
            sender = parsed.status.from_org.organ_id if parsed.status else parsed.document.header.from_org.organ_id
            if sender != ref.from_organ_id:
                return _reject(rt, org, ref, "sender_mismatch",
                               f"the package names {sender} as sender; the axis says {ref.from_organ_id}")
            if parsed.kind == "status":
                return _apply_status(rt, org, ref, parsed)
            return _register_document(rt, org, ref, parsed, path, directory)


def _inbox_entry(org: Organisation, ref: ReceivedRef, outcome: str, **values) -> AxisInboxEntry:
    return AxisInboxEntry(organ_id=org.organ_id, message_id=ref.message_id, from_organ_id=ref.from_organ_id[:35],
                          kind=ref.kind, outcome=outcome, size=ref.size, sha256=ref.sha256, **values)


def _commit_entry(session: Session, entry: AxisInboxEntry) -> bool:
    """Commit the entry and what came with it; False when another poller recorded this message first."""
    session.add(entry)
    try:
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
        return False


def _reject(rt: Runtime, org: Organisation, ref: ReceivedRef, code: str, message: str) -> str:
    log.warning("axis package %s for %s rejected: %s %s", ref.message_id, org.organ_id, code, message)
    with rt.sessions() as session:
        audit.record(session, SERVICE_ACTOR, "axis.package_rejected", object_type="axis_message",
                     object_id=ref.message_id, organ_id=org.organ_id, error_code=code, sender=ref.from_organ_id)
        _commit_entry(session, _inbox_entry(org, ref, "rejected", error_code=code, error_message=message[:2000]))
    return "rejected"


# -- documents -------------------------------------------------------------------------------
def _pem_roots(settings) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(cert.dump()) for cert in trust_roots(settings)]


def _is_pdf(attachment: ParsedAttachment) -> bool:
    with attachment.path.open("rb") as handle:
        return b"%PDF-" in handle.read(1024)


def verify(rt: Runtime, path: Path, parsed: ParsedPackage, spool_dir: str) -> Verification:
    """The XML-DSig verdict over the whole package and the worst PAdES indication of its PDFs."""
    settings = rt.settings
    check = verify_package(path, _pem_roots(settings), max_bytes=settings.axis.max_package_bytes, spool_dir=spool_dir)
    indications = []
    for attachment in parsed.attachments:
        if attachment.path is None or not _is_pdf(attachment):
            continue
        try:
            report = validate_pdf(attachment.path, trust_roots(settings), other_certs=other_certs(settings),
                                  allow_fetching=settings.axis.verify_revocation)
            indications.append(report.indication if report.signatures else "unsigned_pdf")
        except SigningError:
            indications.append("invalid_pdf")
    rank = ["TOTAL-PASSED", "unsigned_pdf", "INDETERMINATE", "invalid_pdf", "TOTAL-FAILED"]
    pades = max(indications, key=lambda i: rank.index(i) if i in rank else len(rank)) if indications else "no_pdf"
    return Verification(check.reason, str(pades))


def _store_attachments(rt: Runtime, parsed: ParsedPackage) -> list[tuple[FileKind, Upload, str]]:
    """Put the attachments into the object store before the transaction (an interrupted intake leaves
    orphans for the reconcile job, never rows without bytes). The first PDF becomes version 1."""
    stored, version_taken = [], False
    for attachment in parsed.attachments:
        kind = FileKind.ATTACHMENT
        if not version_taken and _is_pdf(attachment):
            kind, version_taken = FileKind.VERSION, True
        with attachment.path.open("rb") as handle:
            obj = rt.store.put(iter(lambda h=handle: h.read(1 << 20), b""),
                               content_type=attachment.content_type or "application/octet-stream")
        name = (attachment.name or attachment.content_id or "attachment")[:255]
        stored.append((kind, Upload(obj, name, (attachment.content_type or "application/octet-stream")[:128]),
                       (attachment.description or "")[:255]))
    return stored


def _new_document(org: Organisation, parsed: ParsedPackage) -> Document:
    header = parsed.document.header
    number = header.code.number.strip()
    return Document(
        organisation_id=org.id, direction=Direction.INCOMING, status=Status.RECEIVED,
        doc_type=_TYPE_BY_NAME.get(header.document_type.type_name.strip().casefold(), "cong_van"),
        year=header.promulgation_date.year if header.promulgation_date else None,
        number=int(number) if number.isdigit() else None, symbol=header.code.notation[:64] or None,
        issued_date=header.promulgation_date, place=header.promulgation_place[:128] or None,
        subject=header.subject or header.content or "(không có trích yếu)",
        signer_name=header.signer.full_name[:255] or None, signer_position=header.signer.position[:255] or None,
        signer_competence=header.signer.competence[:8] or None, recipients=list(header.to_places),
        priority=_PRIORITY.get(header.other_info.priority, "thuong"), due_date=header.due_date,
        sender_name=(header.from_org.organ_name or header.from_org.organ_id)[:255])


def queue_status(session: Session, exchange: AxisExchange, code: str, description: str,
                 staff: str | None = None) -> AxisStatusMessage:
    """Add a status to send on ``exchange`` (key stored now) and queue its delivery after the commit."""
    message = AxisStatusMessage(exchange_id=exchange.id, direction="sent", code=code, description=description,
                                staff=staff, state="pending", idempotency_key=new_idempotency_key())
    session.add(message)
    session.flush()
    outbox.enqueue(session, SEND_STATUSES, exchange.id)
    return message


def _register_document(rt: Runtime, org: Organisation, ref: ReceivedRef, parsed: ParsedPackage, path: Path,
                       spool_dir: str) -> str:
    verification = verify(rt, path, parsed, spool_dir)
    stored = _store_attachments(rt, parsed)
    header = parsed.document.header
    with rt.sessions() as session:
        org = session.get(Organisation, org.id)
        actor = clerk_of(org)
        doc = _new_document(org, parsed)
        session.add(doc)
        session.flush()
        audit.record(session, actor, "document.created", object_type="document", object_id=doc.id,
                     direction=doc.direction, doc_type=doc.doc_type, source="axis", message_id=ref.message_id)
        try:
            documents.register_in_transaction(session, actor, doc.id, RegisterRequest())
        except errors.DuplicateRegistrationError as exc:
            session.rollback()
            return _reject(rt, org, ref, exc.code, exc.message)
        for kind, upload, note in stored:
            files_service.add_in_transaction(session, actor, doc.id, kind, upload, note=note or None)
        exchange = AxisExchange(
            organisation_id=org.id, document_id=doc.id, direction="incoming", counterpart=ref.from_organ_id,
            edxml_document_id=header.effective_document_id[:255], state="registered", last_status="03",
            message_id=ref.message_id, signature_status=verification.signature[:32],
            pades_status=verification.pades[:32], verified=verification.verified)
        session.add(exchange)
        session.flush()
        queue_status(session, exchange, "01", "Đã đến - phần mềm QLVB đã nhận")
        queue_status(session, exchange, "03", f"Đã tiếp nhận, số đến {doc.arrival_number}")
        audit.record(session, actor, "axis.document_received", object_type="document", object_id=doc.id,
                     message_id=ref.message_id, sender=ref.from_organ_id, document_id_edxml=exchange.edxml_document_id,
                     signature=verification.signature, pades=verification.pades, verified=verification.verified)
        if not verification.verified:
            audit.record(session, actor, "axis.document_unverified", object_type="document", object_id=doc.id,
                         signature=verification.signature, pades=verification.pades)
        entry = _inbox_entry(org, ref, "registered", document_id=doc.id, exchange_id=exchange.id,
                             warnings=list(parsed.warnings)[:100])
        if not _commit_entry(session, entry):
            return "registered"
    return "registered"


# -- statuses --------------------------------------------------------------------------------
def _find_exchange(session: Session, org: Organisation, status: StatusMessage) -> AxisExchange | None:
    """A recall (13) is about a document the sender sent us; every other code answers one we sent."""
    direction = "incoming" if status.status_code == "13" else "outgoing"
    return session.scalar(select(AxisExchange).where(
        AxisExchange.organisation_id == org.id, AxisExchange.direction == direction,
        AxisExchange.counterpart == status.from_org.organ_id,
        AxisExchange.edxml_document_id == status.response_for.document_id))


def _apply_status(rt: Runtime, org: Organisation, ref: ReceivedRef, parsed: ParsedPackage) -> str:
    status = parsed.status
    with rt.sessions() as session:
        org = session.get(Organisation, org.id)
        exchange = _find_exchange(session, org, status)
        if exchange is None:
            session.rollback()
            return _reject(rt, org, ref, "unknown_document",
                           f"status {status.status_code} for {status.response_for.document_id}, which was not "
                           f"exchanged with {status.from_org.organ_id}")
        exchange.last_status = status.status_code
        if status.status_code == "13" and exchange.state == "registered":
            exchange.state = "recall_requested"
        session.add(AxisStatusMessage(exchange_id=exchange.id, direction="received", code=status.status_code,
                                      description=status.description[:2000], state="received",
                                      staff=(status.staff.staff[:255] if status.staff else None),
                                      message_id=ref.message_id, sent_at=datetime.now(UTC)))
        audit.record(session, SERVICE_ACTOR, "axis.status_received", object_type="document",
                     object_id=exchange.document_id, code=status.status_code, counterpart=exchange.counterpart,
                     message_id=ref.message_id)
        _commit_entry(session, _inbox_entry(org, ref, "status", exchange_id=exchange.id,
                                            warnings=list(parsed.warnings)[:100]))
    return "status"

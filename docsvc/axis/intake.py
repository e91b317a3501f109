"""Taking packages from the axis inbox of our organisations: fetch, parse, verify, register, ack.

Per package, in this order: (1) a package already in ``axis_inbox`` (same organisation and axis
message id) is only acknowledged again: a crash between our commit and the ack never registers
twice; (2) it is downloaded to a temporary file (a batch's packages with one request where the
transport has ``get_many``; one the axis no longer has is rejected as ``not_found``, any other
transport failure fails the poll) and parsed; unreadable or hostile input is recorded
as ``rejected`` with the library's error code and acknowledged, so it cannot block the inbox, and
nothing else is written; (3) a document package has its XML signature and the PAdES signatures of
its PDFs checked (the verdicts are stored; a failed check flags the document, it is never silently
accepted), its attachments stored, and one transaction registers it with an arrival number, records
the exchange and queues status 01 then 03 to the sender; a second package with the same sender
OrganId and edXML DocumentId is rejected as ``duplicate_document``, and a revoke/update/replace
(BussinessDocType 1-3) as ``unsupported_business_type``; a status package is applied to the exchange
it answers when its code is one of §1.9, unless its signature shows tampering (``bad_signature``) or
is a valid one by another agency (``signer_mismatch``); an unsigned status, or one signed the way
other vendors sign (§1.7), is applied and audited as unverified; (4) the package is acknowledged.

Whatever goes wrong with one package that is not our own environment failing (the database, the
local disk, the object store or the trust configuration unavailable, code that cannot run: the poll
then fails and is retried, nothing acknowledged) ends as a rejection
of that package (``unprocessable_package``), recorded, audited and acknowledged: a package that
crashes a parser or verifier must not be fetched first on every poll for ever.

``poll`` takes a listing in batches: the fetch-parse-verify-store steps run per package outside any
transaction, then one transaction registers the batch's documents (one statement per table for them
all, one commit, one outbox hand-off) before any of them is acknowledged, so a crash still cannot
lose an acknowledged package, and the inbox entries (unique by organisation and message id) still
keep a retry from registering twice. Duplicates, of documents registered before or of one earlier in
the batch, are found under the organisation's lock before anything is written, left out, and
rejected once the batch is committed; a batch that meets a concurrent poller (or a package the
database cannot hold) is rolled back and registered one by one."""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.orm import Session

from archive.errors import ObjectStoreUnavailableError
from docsvc import errors
from docsvc.audit import service as audit
from docsvc.axis.models import AxisExchange, AxisInboxEntry, AxisStatusMessage
from docsvc.axis.transport import transport_for
from docsvc.documents import files_service
from docsvc.documents import service as documents
from docsvc.documents.files_service import FileKind
from docsvc.documents.types import DOCUMENT_TYPES, Direction, Status
from docsvc.jobs import outbox
from docsvc.organisations.models import Organisation
from docsvc.pki.trust import other_certs, trust_roots
from docsvc.principal import SERVICE_ACTOR, Actor, Role
from docsvc.runtime import Runtime
from docsvc.uploads import Upload
from inter_axis.errors import EdxmlError
from inter_axis.model import STATUS_CODES, BusinessDocType, MessageHeader, ParsedAttachment, StatusMessage
from inter_axis.parse import ParsedPackage, read_package
from inter_axis.transport import (
    DUPLICATE_DOCUMENT,
    NOT_FOUND,
    AxisTransport,
    ReceivedRef,
    TransportError,
    new_idempotency_key,
)
from inter_axis.xmldsig import SignatureCheck, verify_package
from signing.errors import SigningError, TrustConfigError
from signing.validation import validate_pdf

log = logging.getLogger(__name__)
_PRIORITY = {0: "thuong", 1: "khan", 2: "thuong_khan", 3: "hoa_toc", 4: "hoa_toc"}
_TYPE_BY_NAME = {name.casefold(): code for code, (name, _abbr) in DOCUMENT_TYPES.items()}
SEND_STATUSES = "docsvc.axis_send_statuses"
#: Documents registered per transaction by ``poll``.
BATCH = 50
#: Packages fetched, parsed and verified at once: one downloads while another is checked.
PREPARE_WORKERS = 2
#: Bytes of packages fetched with one ``get_many`` (and so on our disk at once), by their listed sizes.
FETCH_BYTES = 64 * 1024 * 1024
#: Rejection codes of intake's own (the others are the library's and the transport's).
UNPROCESSABLE = "unprocessable_package"
UNKNOWN_STATUS_CODE = "unknown_status_code"
BAD_SIGNATURE = "bad_signature"
SIGNER_MISMATCH = "signer_mismatch"
UNSUPPORTED_BUSINESS_TYPE = "unsupported_business_type"
#: Verdicts that show a status was changed or its signature tampered with (wrapping, a second
#: signature, edited content): rejected. Every other failed verdict (none, a VNPT-style block,
#: rsa-sha1, a CA we do not hold) is what other vendors' software sends (VN-STANDARDS §1.7): the
#: status is applied, and recorded and audited as unverified, as unverified documents are.
_TAMPERED = frozenset({"digest_mismatch", "signature_mismatch", "multiple_signatures", "misplaced_signature",
                       "bad_reference", "malformed_signature"})
_ORGAN_ID = re.compile(r"\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}")
_UID = re.compile(r"(?:^|,)UID=([^,+]+)")
#: ``session.info`` key: the transaction that holds the lock of an organisation's row, and which one.
_ORG_LOCKED = "docsvc.axis_org_locked"
#: Failures of our own environment, not of the package: the poll fails and the next one retries,
#: since rejecting (and acknowledging) a good package because our disk is full would lose it.
#: A trust-root file gone bad (SigningUnavailableError, TrustConfigError) would otherwise make every
#: good package "unverifiable" and throw the inbox away.
_ENVIRONMENT_FAILURES = (OperationalError, InterfaceError, SATimeoutError, OSError, ObjectStoreUnavailableError,
                         errors.SigningUnavailableError, TrustConfigError)


def _our_failure(exc: BaseException) -> bool:
    """True for what no package content can cause: the database, the local disk or the object store
    unavailable, or code that cannot run at all (an ImportError or NameError, as a half-deployed upgrade leaves;
    rejecting every package then would throw the whole inbox away). An UnboundLocalError is a
    NameError one branch of the code can hit on odd input: that one is the package's."""
    if isinstance(exc, _ENVIRONMENT_FAILURES):
        return True
    return isinstance(exc, ImportError | NameError) and not isinstance(exc, UnboundLocalError)


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


@dataclass(frozen=True)
class _Incoming:
    """A fetched, parsed, verified document package whose attachments are stored: ready to register."""

    ref: ReceivedRef
    header: MessageHeader
    warnings: tuple[str, ...]
    verification: Verification
    stored: list


def poll(rt: Runtime, limit: int = 100) -> dict[str, int]:
    """One round over every organisation with axis credentials; returns outcome counts."""
    counts: dict[str, int] = {}
    with rt.sessions() as session:
        orgs = list(session.scalars(select(Organisation).where(
            Organisation.organ_id.in_(rt.settings.axis.organ_ids()))))
        session.expunge_all()
    for org in orgs:
        transport = transport_for(rt.settings, org.organ_id)
        refs = transport.list_received(limit=limit)
        for start in range(0, len(refs), BATCH):
            for outcome in take_batch(rt, org, transport, refs[start:start + BATCH]):
                counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def take(rt: Runtime, org: Organisation, transport: AxisTransport, ref: ReceivedRef) -> str:
    """Process one received package (idempotent by its axis message id); returns its outcome."""
    return take_batch(rt, org, transport, [ref])[0]


def take_batch(rt: Runtime, org: Organisation, transport: AxisTransport, refs: list[ReceivedRef]) -> list[str]:
    """Process received packages (idempotent by axis message id), registering their documents in one
    transaction, then acknowledge them; returns their outcomes in order."""
    known = _known_outcomes(rt, org, [ref.message_id for ref in refs])
    outcomes: dict[str, str] = {ref.message_id: known[ref.message_id] for ref in refs if ref.message_id in known}
    new = [ref for ref in refs if ref.message_id not in known]
    start = 0
    while start < len(new):
        # A run of documents is prepared concurrently and registered together; a status (a recall may
        # be about a document of this batch) waits until the documents before it are registered.
        end = start
        while end < len(new) and new[end].kind == "document":
            end += 1
        run = new[start:end] or new[start:start + 1]
        results = _prepare_all(rt, org, transport, run)
        outcomes.update((ref.message_id, r) for ref, r in zip(run, results, strict=True) if isinstance(r, str))
        outcomes.update(_register_all(rt, org, [r for r in results if isinstance(r, _Incoming)]))
        start += len(run)
    _ack(transport, [ref.message_id for ref in refs])
    _mark_acked(rt, org, [ref.message_id for ref in refs])
    return [outcomes[ref.message_id] for ref in refs]


def _prepare_all(rt: Runtime, org: Organisation, transport: AxisTransport,
                 refs: list[ReceivedRef]) -> list[str | _Incoming]:
    """``_fetch_and_prepare`` for each of ``refs``, in order: the packages fetched with one request
    per group where the transport can (``get_many``), then prepared ``PREPARE_WORKERS`` at a time."""
    if len(refs) > 1 and getattr(transport, "get_many", None) is not None:
        with tempfile.TemporaryDirectory(prefix="docsvc-axis-batch-") as directory:
            results = []
            for group in _fetch_groups(refs):
                fetched = _fetch_many(transport, group, Path(directory))
                results += _map(lambda pair: _prepare_fetched(rt, org, pair[0], pair[1], directory),
                                list(zip(group, fetched, strict=True)))
            return results
    return _map(lambda ref: _fetch_and_prepare(rt, org, transport, ref), refs)


def _map(call, items: list) -> list:
    if len(items) == 1 or PREPARE_WORKERS < 2:
        return [call(item) for item in items]
    with ThreadPoolExecutor(max_workers=PREPARE_WORKERS, thread_name_prefix="axis-intake") as pool:
        return list(pool.map(call, items))


def _fetch_groups(refs: list[ReceivedRef]) -> list[list[ReceivedRef]]:
    """``refs`` in runs of at most ``FETCH_BYTES`` (by the sizes the axis listed; a bigger package
    alone), so that a batch of large packages is not all on our disk at once."""
    groups: list[list[ReceivedRef]] = []
    size = FETCH_BYTES
    for ref in refs:
        if size + ref.size > FETCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(ref)
        size += ref.size
    return groups


def _fetch_many(transport: AxisTransport, refs: list[ReceivedRef], directory: Path) -> list[Path | TransportError]:
    """The packages, each in its file under ``directory`` or ``not_found``; any other error of one
    package (its bytes damaged on the way: ``unavailable``) fails the poll, as ``get`` raising it would."""
    fetched = transport.get_many([ref.message_id for ref in refs], directory)
    for outcome in fetched:
        if isinstance(outcome, TransportError) and outcome.code != NOT_FOUND:
            raise outcome
    return fetched


def _prepare_fetched(rt: Runtime, org: Organisation, ref: ReceivedRef, fetched: Path | TransportError,
                     directory: str) -> str | _Incoming:
    """``_fetch_and_prepare`` of a package ``get_many`` fetched already (or found missing)."""
    if isinstance(fetched, TransportError):
        return _reject(rt, org, ref, fetched.code, fetched.message)
    stage = ["parsing"]
    try:
        with tempfile.TemporaryDirectory(prefix="docsvc-axis-in-", dir=directory) as spool:
            return _prepare_file(rt, org, ref, fetched, spool, stage)
    except Exception as exc:
        if _our_failure(exc):
            raise  # not this package's fault: nothing is acknowledged, the next poll tries again
        return _unprocessable(rt, org, ref, stage[0], exc)  # any crash on hostile input becomes a rejection
    finally:
        fetched.unlink(missing_ok=True)


def _ack(transport: AxisTransport, message_ids: list[str]) -> None:
    ack_many = getattr(transport, "ack_many", None)  # one request for the batch where the transport can
    if ack_many is not None and len(message_ids) > 1:
        ack_many(message_ids)
        return
    for message_id in message_ids:
        transport.ack(message_id)


def _known_outcomes(rt: Runtime, org: Organisation, message_ids: list[str]) -> dict[str, str]:
    with rt.sessions() as session:
        return dict(session.execute(select(AxisInboxEntry.message_id, AxisInboxEntry.outcome).where(
            AxisInboxEntry.organ_id == org.organ_id, AxisInboxEntry.message_id.in_(message_ids))).all())


def _mark_acked(rt: Runtime, org: Organisation, message_ids: list[str]) -> None:
    if not message_ids:
        return
    with rt.sessions() as session:
        session.execute(update(AxisInboxEntry).where(
            AxisInboxEntry.organ_id == org.organ_id, AxisInboxEntry.message_id.in_(message_ids),
            AxisInboxEntry.acked_at.is_(None)).values(acked_at=datetime.now(UTC)))
        session.commit()


def _fetch_and_process(rt: Runtime, org: Organisation, transport: AxisTransport, ref: ReceivedRef) -> str:
    """Everything but the ack, for one package."""
    result = _fetch_and_prepare(rt, org, transport, ref)
    return _register_one(rt, org, result) if isinstance(result, _Incoming) else result


def _fetch_and_prepare(rt: Runtime, org: Organisation, transport: AxisTransport,
                       ref: ReceivedRef) -> str | _Incoming:
    """A document package ready to register, or the outcome of a package that needed no more (rejected,
    status applied), already committed. Raises only for a transport or environment failure."""
    stage = ["fetching"]
    try:
        return _prepare(rt, org, transport, ref, stage)
    except TransportError:
        raise  # the axis failed (not_found is handled inside): nothing is acknowledged, the next poll retries
    except Exception as exc:
        if _our_failure(exc):
            raise  # not this package's fault: nothing is acknowledged, the next poll tries again
        return _unprocessable(rt, org, ref, stage[0], exc)  # any crash on hostile input becomes a rejection


def _unprocessable(rt: Runtime, org: Organisation, ref: ReceivedRef, stage: str, exc: Exception) -> str:
    log.exception("axis package %s for %s crashed intake while %s", ref.message_id, org.organ_id, stage)
    return _reject(rt, org, ref, UNPROCESSABLE, f"the package could not be processed ({stage}): "
                   f"{type(exc).__name__}", stage=stage, exception=type(exc).__name__)


def _prepare(rt: Runtime, org: Organisation, transport: AxisTransport, ref: ReceivedRef,
             stage: list[str]) -> str | _Incoming:
    """``_fetch_and_prepare`` without the safety net; ``stage[0]`` says how far it got."""
    with tempfile.TemporaryDirectory(prefix="docsvc-axis-in-") as directory:
        path = Path(directory) / "package.edxml"
        try:
            with path.open("wb") as out:
                transport.get(ref.message_id, out)
        except TransportError as exc:
            if exc.code != NOT_FOUND:
                raise
            return _reject(rt, org, ref, exc.code, exc.message)
        return _prepare_file(rt, org, ref, path, directory, stage)


def _prepare_file(rt: Runtime, org: Organisation, ref: ReceivedRef, path: Path, directory: str,
                  stage: list[str]) -> str | _Incoming:
    """``_prepare`` of the package fetched to ``path``; ``directory`` takes what parsing spools."""
    stage[0] = "parsing"
    try:
        parsed = read_package(path, spool_dir=directory, max_bytes=rt.settings.axis.max_package_bytes)
    except EdxmlError as exc:
        return _reject(rt, org, ref, exc.code, exc.message)
    with parsed:
        sender = parsed.status.from_org.organ_id if parsed.status else parsed.document.header.from_org.organ_id
        if sender != ref.from_organ_id:
            return _reject(rt, org, ref, "sender_mismatch",
                           f"the package names {sender} as sender; the axis says {ref.from_organ_id}")
        stage[0] = "verifying"
        if parsed.kind == "status":
            check = verify_signature(rt, path, directory)
            stage[0] = "applying the status"
            return _apply_status(rt, org, ref, parsed, check)
        business = parsed.document.business
        if business is not None and business.doc_type != BusinessDocType.NEW:
            # Revoking, updating or replacing a document we hold needs a clerk's decision that
            # intake does not make yet; registering it as new would file a second copy.
            return _reject(rt, org, ref, UNSUPPORTED_BUSINESS_TYPE,
                           f"BussinessDocType {int(business.doc_type)} ({business.doc_type.name.lower()} of "
                           f"{business.document_id or 'a document'}) is not taken automatically; "
                           "the sender should be told by other means")
        verification = verify(rt, path, parsed, directory)
        stage[0] = "storing attachments"
        return _Incoming(ref, parsed.document.header, tuple(parsed.warnings), verification,
                         _store_attachments(rt, parsed))


def _inbox_entry(org: Organisation, ref: ReceivedRef, outcome: str, **values) -> AxisInboxEntry:
    return AxisInboxEntry(**_inbox_values(org, ref, outcome, **values))


def _inbox_values(org: Organisation, ref: ReceivedRef, outcome: str, **values) -> dict:
    return dict(organ_id=org.organ_id, message_id=ref.message_id, from_organ_id=ref.from_organ_id[:35],
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


def _reject(rt: Runtime, org: Organisation, ref: ReceivedRef, code: str, message: str, **detail) -> str:
    log.warning("axis package %s for %s rejected: %s %s", ref.message_id, org.organ_id, code, message)
    with rt.sessions() as session:
        audit.record(session, SERVICE_ACTOR, "axis.package_rejected", object_type="axis_message",
                     object_id=ref.message_id, organ_id=org.organ_id, error_code=code, sender=ref.from_organ_id,
                     kind=ref.kind, **detail)
        _commit_entry(session, _inbox_entry(org, ref, "rejected", error_code=code, error_message=message[:2000]))
    return "rejected"


# -- documents -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Trust:
    """Trust anchors parsed once per ``Settings`` (the files and the dev PKI do not change under a
    running process; a restart picks up new ones)."""

    roots: tuple
    other_certs: tuple
    pem_roots: tuple[x509.Certificate, ...]


_trust_lock = threading.Lock()
_trust_cache: dict[int, tuple[object, _Trust]] = {}


def _trust(settings) -> _Trust:
    with _trust_lock:
        cached = _trust_cache.get(id(settings))
    if cached is not None and cached[0] is settings:
        return cached[1]
    roots = trust_roots(settings)
    trust = _Trust(roots, other_certs(settings),
                   tuple(x509.load_der_x509_certificate(cert.dump()) for cert in roots))
    with _trust_lock:
        _trust_cache[id(settings)] = (settings, trust)
    return trust


def _is_pdf(attachment: ParsedAttachment) -> bool:
    with attachment.path.open("rb") as handle:
        return b"%PDF-" in handle.read(1024)


def verify_signature(rt: Runtime, path: Path, spool_dir: str) -> SignatureCheck:
    """The XML-DSig verdict over the whole package against our trust anchors."""
    return verify_package(path, _trust(rt.settings).pem_roots, max_bytes=rt.settings.axis.max_package_bytes,
                          spool_dir=spool_dir)


def verify(rt: Runtime, path: Path, parsed: ParsedPackage, spool_dir: str) -> Verification:
    """The XML-DSig verdict over the whole package and the worst PAdES indication of its PDFs."""
    settings = rt.settings
    trust = _trust(settings)
    check = verify_signature(rt, path, spool_dir)
    indications = []
    for attachment in parsed.attachments:
        if attachment.path is None or not _is_pdf(attachment):
            continue
        try:
            report = validate_pdf(attachment.path, trust.roots, other_certs=trust.other_certs,
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


# ASCII digits only, at most 9: str.isdigit() also takes "²" (int() then fails) and thousands of
# digits overflow the column; such a number is kept only in the package, not as the document's.
_NUMBER = re.compile(r"[0-9]{1,9}")


def _document_values(org: Organisation, header: MessageHeader) -> dict:
    """The columns of the incoming document a package carries (``issuer`` included: the sender's
    OrganId, see ``_register_batch``)."""
    number = header.code.number.strip()
    sender_name = (header.from_org.organ_name or header.from_org.organ_id)[:255]
    return dict(
        organisation_id=org.id, direction=Direction.INCOMING, status=Status.RECEIVED,
        doc_type=_TYPE_BY_NAME.get(header.document_type.type_name.strip().casefold(), "cong_van"),
        year=header.promulgation_date.year if header.promulgation_date else None,
        number=int(number) if _NUMBER.fullmatch(number) else None, symbol=header.code.notation[:64] or None,
        issued_date=header.promulgation_date, place=header.promulgation_place[:128] or None,
        subject=header.subject or header.content or "(không có trích yếu)",
        signer_name=header.signer.full_name[:255] or None, signer_position=header.signer.position[:255] or None,
        signer_competence=header.signer.competence[:8] or None, recipients=list(header.to_places),
        priority=_PRIORITY.get(header.other_info.priority, "thuong"), due_date=header.due_date,
        sender_name=sender_name, issuer=header.from_org.organ_id[:255] or sender_name)


def queue_status(session: Session, exchange: AxisExchange, code: str, description: str,
                 staff: str | None = None) -> AxisStatusMessage:
    """Add a status to send on ``exchange`` (key stored now) and queue its delivery after the commit."""
    message = AxisStatusMessage(exchange_id=exchange.id, direction="sent", code=code, description=description,
                                staff=staff, state="pending", idempotency_key=new_idempotency_key())
    session.add(message)
    outbox.enqueue(session, SEND_STATUSES, exchange.id)  # its flush writes the message too
    return message


def _lock_organisation(session: Session, org: Organisation) -> None:
    """On PostgreSQL the organisation's row is locked (FOR NO KEY UPDATE: documents may still
    reference it meanwhile) before the duplicate keys are looked up, so that two pollers registering
    the same DocumentId, each in its own transaction, cannot both miss the other (SQLite's writer gate
    already serialises every write transaction). The lock lasts until the transaction ends (a
    savepoint's rollback would release it), so a transaction takes it once."""
    held = (session.get_transaction(), session.get_nested_transaction(), org.id)
    locked = session.info.get(_ORG_LOCKED)
    if held[0] is None or locked is None or locked[0] is not held[0] or locked[1] is not held[1] \
            or locked[2] != held[2]:
        session.execute(select(Organisation.id).where(Organisation.id == org.id).with_for_update(key_share=True))
        session.info[_ORG_LOCKED] = (session.get_transaction(), session.get_nested_transaction(), org.id)


def _known_document_ids(session: Session, org: Organisation, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Of the (sender OrganId, edXML DocumentId) ``keys``, those already registered here, with their document.

    The duplicate key of a package from the axis: unlike the registration's it does not depend on the
    sender's display name or a numeric CodeNumber. The hub refuses a second *new* document under one
    DocumentId, but not an update or replacement, and another axis may not refuse at all."""
    if not keys:
        return {}
    found: dict[tuple[str, str], int] = {}
    for counterpart, document_id, existing in session.execute(
            select(AxisExchange.counterpart, AxisExchange.edxml_document_id, AxisExchange.document_id).where(
                AxisExchange.organisation_id == org.id, AxisExchange.direction == "incoming",
                AxisExchange.edxml_document_id.in_({key[1] for key in keys}))):
        if (counterpart, document_id) in keys:
            found.setdefault((counterpart, document_id), existing)
    return found


@dataclass(frozen=True)
class _Refused:
    """A prepared package that is a duplicate: rejected once the batch's transaction has ended."""

    incoming: _Incoming
    code: str
    message: str
    existing: int | _Incoming | None
    """``duplicate_document``: the document registered under its key (in this batch: the package that got it)."""


@dataclass(frozen=True)
class _Accepted:
    """A prepared package to register: its document's columns and its edXML DocumentId."""

    incoming: _Incoming
    values: dict
    edxml_id: str


def _register_batch(session: Session, org: Organisation, ready: list[_Incoming]) -> list[_Refused]:
    """Register the documents of ``ready`` in the caller's transaction, their inbox entries included,
    with one statement per table for them all; returns the duplicates, in order, which were not
    registered (and nothing of them written): the caller rejects them after this transaction.

    The others are created and registered with consecutive arrival numbers in their order; each gets
    its files, its exchange, statuses 01 and 03 queued to the sender, its inbox entry, and its audit
    events in the order registering it alone appended them. Raises ``DuplicateRegistrationError``
    (rolled back) when a unique key is hit all the same."""
    _lock_organisation(session, org)
    accepted, refused = _without_duplicates(session, org, ready)
    if not accepted:
        return refused
    actor = clerk_of(org)
    docs = documents.create_registered_incoming(session, actor, [a.values for a in accepted], [
        {"source": "axis", "message_id": a.incoming.ref.message_id} for a in accepted])
    file_events = files_service.add_to_new_documents(session, actor, [
        (doc.id, kind, upload, note or None)
        for a, doc in zip(accepted, docs, strict=True) for kind, upload, note in a.incoming.stored])
    exchange_ids = _add_exchanges(session, org, accepted, docs)
    _queue_arrival_statuses(session, docs, exchange_ids)
    session.execute(insert(AxisInboxEntry.__table__), [
        _inbox_values(org, a.incoming.ref, "registered", document_id=doc.id, exchange_id=exchange_ids[doc.id],
                      warnings=list(a.incoming.warnings)[:100]) for a, doc in zip(accepted, docs, strict=True)])
    audit.record_many(session, _registration_events(actor, accepted, docs, iter(file_events)))
    ids = {a.incoming.ref.message_id: doc.id for a, doc in zip(accepted, docs, strict=True)}
    return [replace(r, existing=ids[r.existing.ref.message_id]) if isinstance(r.existing, _Incoming) else r
            for r in refused]


def _without_duplicates(session: Session, org: Organisation,
                        ready: list[_Incoming]) -> tuple[list[_Accepted], list[_Refused]]:
    """``ready`` sorted into the packages to register and the duplicates, under the organisation's lock.

    A package is a duplicate when its (sender OrganId, DocumentId) is already registered here
    (``duplicate_document``), or else its registration key (issuer, year, number, symbol) is
    (``duplicate_registration``), by a document registered before or one earlier in ``ready``. The
    issuer is the sender's OrganId, not its display name: registration's duplicate check then survives
    a renamed agency and never confuses two agencies that share a name ("Sở Tư pháp" of two provinces)."""
    rows = [_Accepted(incoming, _document_values(org, incoming.header), incoming.header.effective_document_id[:255])
            for incoming in ready]
    taken_ids: dict[tuple[str, str], int | _Incoming] = dict(_known_document_ids(
        session, org, {(a.incoming.ref.from_organ_id, a.edxml_id) for a in rows}))
    taken_keys: dict[documents.IncomingKey, int | _Incoming] = dict(documents.registered_incoming(
        session, org.id, {_registration_key(a.values) for a in rows}))
    accepted, refused = [], []
    for row in rows:
        sender, key = row.incoming.ref.from_organ_id, _registration_key(row.values)
        if (sender, row.edxml_id) in taken_ids:
            refused.append(_Refused(row.incoming, DUPLICATE_DOCUMENT, f"document {row.edxml_id} from {sender} is "
                                    "already registered here", taken_ids[sender, row.edxml_id]))
        elif key in taken_keys:
            refused.append(_Refused(row.incoming, errors.DuplicateRegistrationError.code,
                                    "this incoming document is already registered", None))
        else:
            taken_ids[sender, row.edxml_id] = taken_keys[key] = row.incoming
            accepted.append(row)
    return accepted, refused


def _add_exchanges(session: Session, org: Organisation, accepted: list[_Accepted],
                   docs: list[documents.RegisteredIncoming]) -> dict[int, int]:
    """One incoming exchange per registered document; returns document id → exchange id."""
    rows = [dict(organisation_id=org.id, document_id=doc.id, direction="incoming",
                 counterpart=a.incoming.ref.from_organ_id, edxml_document_id=a.edxml_id, state="registered",
                 last_status="03", message_id=a.incoming.ref.message_id,
                 signature_status=a.incoming.verification.signature[:32],
                 pades_status=a.incoming.verification.pades[:32], verified=a.incoming.verification.verified)
            for a, doc in zip(accepted, docs, strict=True)]
    return dict(session.execute(insert(AxisExchange.__table__).returning(AxisExchange.document_id, AxisExchange.id),
                                rows).all())


def _queue_arrival_statuses(session: Session, docs: list[documents.RegisteredIncoming],
                            exchange_ids: dict[int, int]) -> None:
    """``queue_status`` of 01 then 03 on each document's exchange, for all of them at once."""
    # One row after another (not one multi-row INSERT): 01 gets a smaller id than 03, and
    # delivery.send_statuses sends an exchange's statuses in the order of their ids.
    session.execute(insert(AxisStatusMessage.__table__), [
        dict(exchange_id=exchange_ids[doc.id], direction="sent", code=code, description=description, staff=None,
             state="pending", idempotency_key=new_idempotency_key())
        for doc in docs for code, description in (
            ("01", "Đã đến - phần mềm QLVB đã nhận"), ("03", f"Đã tiếp nhận, số đến {doc.arrival_number}"))])
    outbox.enqueue_many(session, [(SEND_STATUSES, [exchange_ids[doc.id]]) for doc in docs])


def _registration_events(actor: Actor, accepted: list[_Accepted], docs: list[documents.RegisteredIncoming],
                         file_events: Iterator[audit.Entry]) -> Iterator[audit.Entry]:
    """Each document's events in the order registering it alone appended them: created, registered,
    its files', received, and unverified when it is."""
    for a, doc in zip(accepted, docs, strict=True):
        verification, ref = a.incoming.verification, a.incoming.ref
        yield from doc.events
        for _ in a.incoming.stored:
            yield next(file_events)
        yield audit.entry(actor, "axis.document_received", object_type="document", object_id=doc.id,
                          message_id=ref.message_id, sender=ref.from_organ_id, document_id_edxml=a.edxml_id,
                          signature=verification.signature, pades=verification.pades, verified=verification.verified)
        if not verification.verified:
            yield audit.entry(actor, "axis.document_unverified", object_type="document", object_id=doc.id,
                              signature=verification.signature, pades=verification.pades)


def _registration_key(values: dict) -> documents.IncomingKey:
    return values["issuer"], values["year"], values["number"], values["symbol"]


def _register_all(rt: Runtime, org: Organisation, ready: list[_Incoming]) -> dict[str, str]:
    """Register ``ready`` in one transaction, then reject its duplicates; on anything else that stops
    the batch (a concurrent poller, a package the database cannot hold), one by one."""
    if not ready:
        return {}
    if len(ready) > 1:
        try:
            with rt.sessions() as session:
                refused = _register_batch(session, org, ready)
                session.commit()
        except Exception as exc:  # a concurrent poller, or one bad package: isolate it
            if _our_failure(exc):
                raise  # e.g. the database is unavailable: the next poll tries again, nothing was acked
            log.info("axis batch of %d for %s falls back to one by one", len(ready), org.organ_id, exc_info=True)
        else:
            outcomes = {incoming.ref.message_id: "registered" for incoming in ready}
            for duplicate in refused:
                outcomes[duplicate.incoming.ref.message_id] = _reject_duplicate(rt, org, duplicate)
            return outcomes
    return {incoming.ref.message_id: _register_one(rt, org, incoming) for incoming in ready}


def _reject_duplicate(rt: Runtime, org: Organisation, duplicate: _Refused) -> str:
    detail = {} if duplicate.existing is None else {"existing_document_id": duplicate.existing}
    return _reject(rt, org, duplicate.incoming.ref, duplicate.code, duplicate.message, **detail)


def _register_one(rt: Runtime, org: Organisation, incoming: _Incoming) -> str:
    message_id = incoming.ref.message_id
    refused, exception = None, None
    with rt.sessions() as session:
        try:
            (refused,) = _register_batch(session, org, [incoming]) or (None,)
            if refused is None:
                session.commit()
                return "registered"
            session.rollback()  # nothing was written but the lock: release it before the rejection
        except errors.DuplicateRegistrationError as exc:
            refused = _Refused(incoming, exc.code, exc.message, None)
        except IntegrityError:
            pass
        except Exception as exc:
            if _our_failure(exc):
                raise  # e.g. the database is unavailable: the next poll tries again, nothing was acked
            # A package our database cannot hold (out-of-range values, …) or one that trips a bug
            # must not block the inbox for ever: it is rejected and acknowledged like any invalid one.
            log.warning("axis package %s cannot be registered: %r", message_id, exc, exc_info=True)
            exception = type(exc).__name__
    # Out of the session: its rolled-back objects must not reopen a transaction (and SQLite's write
    # lock) while the rejection is written.
    if exception is not None:
        return _reject(rt, org, incoming.ref, "invalid_package", f"the package cannot be registered: {exception}",
                       exception=exception)
    if refused is None:
        # Most likely another poller recorded this message first; any other constraint means the
        # package cannot be held, and acknowledging it as "registered" would lose it silently.
        known = _known_outcomes(rt, org, [message_id]).get(message_id)
        if known is not None:
            return known
        return _reject(rt, org, incoming.ref, "invalid_package", "the package cannot be registered: IntegrityError")
    return _reject_duplicate(rt, org, refused)


# -- statuses --------------------------------------------------------------------------------
def _find_exchange(session: Session, org: Organisation, status: StatusMessage) -> AxisExchange | None:
    """A recall (13) is about a document the sender sent us; every other code answers one we sent."""
    direction = "incoming" if status.status_code == "13" else "outgoing"
    return session.scalar(select(AxisExchange).where(
        AxisExchange.organisation_id == org.id, AxisExchange.direction == direction,
        AxisExchange.counterpart == status.from_org.organ_id,
        AxisExchange.edxml_document_id == status.response_for.document_id))


def _apply_status(rt: Runtime, org: Organisation, ref: ReceivedRef, parsed: ParsedPackage,
                  check: SignatureCheck) -> str:
    """Apply a status to its exchange, or reject it leaving the exchange as it was: an unknown code
    (it could not even be stored), a signature that shows tampering, or a valid signature by another
    agency than the one the status names (the hub's authentication alone must not be enough to, say,
    recall a registered document with a 13). A status that is merely unsigned or signed the way other
    vendors sign is applied and audited as unverified: a recall is only a request the clerk answers."""
    status = parsed.status
    about = {"status_code": status.status_code[:16], "document_id_edxml": status.response_for.document_id[:255]}
    if status.status_code not in STATUS_CODES:
        return _reject(rt, org, ref, UNKNOWN_STATUS_CODE,
                       f"StatusCode {status.status_code[:16]!r} is not one of {', '.join(STATUS_CODES)}", **about)
    if check.reason in _TAMPERED:
        return _reject(rt, org, ref, BAD_SIGNATURE,
                       f"the signature of status {status.status_code} does not verify ({check.reason}); "
                       f"the exchange is left as it was", signature=check.reason, signer=check.signer, **about)
    signer_uid = _UID.search(check.signer or "")
    if check.intact and signer_uid and _ORGAN_ID.fullmatch(signer_uid.group(1).strip()) \
            and signer_uid.group(1).strip() != status.from_org.organ_id:
        return _reject(rt, org, ref, SIGNER_MISMATCH,
                       f"status {status.status_code} names {status.from_org.organ_id} as sender but is signed by "
                       f"{signer_uid.group(1).strip()}; the exchange is left as it was",
                       signature=check.reason, signer=check.signer, **about)
    with rt.sessions() as session:
        org = session.get(Organisation, org.id)
        exchange = _find_exchange(session, org, status)
        if exchange is None:
            session.rollback()
            return _reject(rt, org, ref, "unknown_document",
                           f"status {status.status_code} for {status.response_for.document_id}, which was not "
                           f"exchanged with {status.from_org.organ_id}", **about)
        exchange.last_status = status.status_code
        if status.status_code == "13" and exchange.state == "registered":
            exchange.state = "recall_requested"
        session.add(AxisStatusMessage(exchange_id=exchange.id, direction="received", code=status.status_code,
                                      description=status.description[:2000], state="received",
                                      staff=(status.staff.staff[:255] if status.staff else None),
                                      message_id=ref.message_id, sent_at=datetime.now(UTC)))
        audit.record(session, SERVICE_ACTOR, "axis.status_received", object_type="document",
                     object_id=exchange.document_id, code=status.status_code, counterpart=exchange.counterpart,
                     message_id=ref.message_id, signature=check.reason, signer=check.signer,
                     state=exchange.state, verified=check.valid)
        if not check.valid:
            audit.record(session, SERVICE_ACTOR, "axis.status_unverified", object_type="document",
                         object_id=exchange.document_id, code=status.status_code, signature=check.reason,
                         message_id=ref.message_id)
        _commit_entry(session, _inbox_entry(org, ref, "status", exchange_id=exchange.id,
                                            warnings=list(parsed.warnings)[:100]))
    return "status"

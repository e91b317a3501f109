"""Official documents: drafting, registration with atomic yearly numbering, sharing, reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docsvc import errors
from docsvc.audit import service as audit
from docsvc.documents.models import Document, DocumentShare, Register
from docsvc.documents.schemas import DocumentCreate, DocumentUpdate, RegisterRequest
from docsvc.documents.types import Direction, Status, make_symbol
from docsvc.organisations.models import Organisation
from docsvc.principal import Actor, Role

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
#: ``session.info`` key: register rows ``next_number`` made sure of, per transaction.
_REGISTERS = "docsvc.registers_ensured"
WRITERS = (Role.CLERK, Role.SPECIALIST, Role.LEADER)


def today_in_vietnam() -> date:
    return datetime.now(VIETNAM).date()


def _readable_by(actor: Actor):
    shared = exists().where(DocumentShare.document_id == Document.id,
                            DocumentShare.organisation_id == actor.organisation_id)
    return or_(Document.organisation_id == actor.organisation_id, shared)


def get_readable(session: Session, actor: Actor, document_id: int) -> Document:
    """The document if ``actor``'s organisation owns it or it was shared to them; otherwise
    404, so that another organisation cannot learn that the id exists."""
    doc = session.scalar(select(Document).where(Document.id == document_id, _readable_by(actor)))
    if doc is None:
        raise errors.NotFoundError("document not found")
    return doc


def get_owned(session: Session, actor: Actor, document_id: int, *roles: Role) -> Document:
    """The document for changing: owned by ``actor``'s organisation and ``actor`` holds a role."""
    # Owned implies readable, so an owned document needs no sharing subquery: a lookup by primary
    # key, answered from the session without SQL when this transaction already has the document
    # (registering one then adding its files looked it up three times). Anything else goes through
    # get_readable, which tells "not found" (404) from "not yours" (403) as before.
    doc = session.get(Document, document_id)
    if doc is None or doc.organisation_id != actor.organisation_id:
        doc = get_readable(session, actor, document_id)
        raise errors.PermissionDeniedError("only the owning organisation may change this document")
    if roles and not actor.has_any(*roles):
        raise errors.PermissionDeniedError("your role does not allow this", needs=[r.value for r in roles])
    return doc


def create(session: Session, actor: Actor, data: DocumentCreate) -> Document:
    if not actor.has_any(*WRITERS):
        raise errors.PermissionDeniedError("your role does not allow drafting documents")
    incoming = data.direction == Direction.INCOMING
    if incoming and not (data.sender_name and data.number and data.symbol and data.issued_date):
        raise errors.ValidationFailedError("an incoming document needs sender_name, number, symbol and issued_date")
    if not incoming and (data.number or data.symbol):
        raise errors.ValidationFailedError("outgoing numbers are assigned by registration, not given", field="number")
    doc = Document(organisation_id=actor.organisation_id, created_by_id=actor.id,
                   status=Status.RECEIVED if incoming else Status.DRAFT, **data.model_dump())
    if incoming:
        doc.year = data.issued_date.year
    session.add(doc)
    session.flush()
    audit.record(session, actor, "document.created", object_type="document", object_id=doc.id,
                 direction=doc.direction, doc_type=doc.doc_type)
    session.commit()
    return doc


def update_draft(session: Session, actor: Actor, document_id: int, data: DocumentUpdate) -> Document:
    doc = get_owned(session, actor, document_id, *WRITERS)
    if doc.status != Status.DRAFT:
        raise errors.InvalidStateError("only drafts can be edited", status=doc.status)
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(doc, field, value)
    audit.record(session, actor, "document.updated", object_type="document", object_id=doc.id, fields=sorted(changes))
    session.commit()
    return doc


def list_readable(session: Session, actor: Actor, *, direction: str | None = None, status: str | None = None,
                  year: int | None = None, limit: int = 50, offset: int = 0) -> list[Document]:
    query = select(Document).where(_readable_by(actor))
    if direction:
        query = query.where(Document.direction == direction)
    if status:
        query = query.where(Document.status == status)
    if year:
        query = query.where(Document.year == year)
    return list(session.scalars(query.order_by(Document.id.desc()).limit(limit).offset(offset)))


def next_number(session: Session, organisation_id: int, kind: str, year: int) -> int:
    """Take the next number of a register, atomically: the UPDATE … RETURNING holds the
    register row's lock until commit, so concurrent registrations get consecutive numbers,
    and a rolled-back registration gives its number back."""
    return next_numbers(session, organisation_id, kind, year, 1)[0]


def next_numbers(session: Session, organisation_id: int, kind: str, year: int, count: int) -> range:
    """Take the next ``count`` numbers of a register at once: consecutive, and as atomic as
    ``next_number``'s one (one UPDATE … RETURNING, whose row lock lasts until the commit)."""
    # The register row is made sure of once per transaction (and savepoint: rolling one back could
    # take the row with it) at most; a batch of registrations then skips a statement each.
    ensured = session.info.setdefault(_REGISTERS, {})
    current = ensured.get((organisation_id, kind, year))
    if current is None or current[0] is not session.get_transaction() \
            or current[1] is not session.get_nested_transaction():
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            dialect.insert(Register)
            .values(organisation_id=organisation_id, kind=kind, year=year, last_number=0)
            .on_conflict_do_nothing(index_elements=["organisation_id", "kind", "year"])
        )
        ensured[(organisation_id, kind, year)] = (session.get_transaction(), session.get_nested_transaction())
    last = session.execute(
        update(Register)
        .where(Register.organisation_id == organisation_id, Register.kind == kind, Register.year == year)
        .values(last_number=Register.last_number + count)
        .returning(Register.last_number)
    ).scalar_one()
    return range(last - count + 1, last + 1)


def register(session: Session, actor: Actor, document_id: int, data: RegisterRequest) -> Document:
    """Vào sổ: outgoing/internal documents get the next number and symbol of the year;
    incoming ones get the next arrival number (số đến)."""
    doc = register_in_transaction(session, actor, document_id, data)
    session.commit()
    return doc


def register_in_transaction(session: Session, actor: Actor, document_id: int, data: RegisterRequest, *,
                            issuer: str | None = None) -> Document:
    """``register`` without the commit: issuing takes the number, stamps and seals the PDF, and
    commits once, so a failed seal gives the number back. ``issuer`` (incoming documents) is the
    sender's identifier when the caller knows one (axis intake: its OrganId)."""
    doc = get_owned(session, actor, document_id, Role.CLERK)
    if doc.registered_at is not None:
        raise errors.DuplicateRegistrationError("document is already registered", number=doc.number,
                                                arrival_number=doc.arrival_number)
    org = session.get(Organisation, doc.organisation_id)
    if doc.direction == Direction.INCOMING:
        _register_incoming(session, doc, issuer)
    else:
        _register_outgoing(session, doc, org, data.issued_date or today_in_vietnam())
    doc.status, doc.registered_at = Status.REGISTERED, datetime.now(UTC)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise errors.DuplicateRegistrationError(
            "a document with this number and symbol is already registered", document_id=document_id) from exc
    audit.record(session, actor, "document.registered", object_type="document", object_id=doc.id,
                 number=doc.number, symbol=doc.symbol, arrival_number=doc.arrival_number)
    return doc


def _register_outgoing(session: Session, doc: Document, org: Organisation, issued: date) -> None:
    doc.issued_date, doc.year, doc.issuer = issued, issued.year, org.organ_id
    doc.symbol = make_symbol(doc.doc_type, org.short_name, doc.drafting_unit)
    doc.number = next_number(session, org.id, "outgoing", issued.year)


def _register_incoming(session: Session, doc: Document, issuer: str | None) -> None:
    # Appendix VI duplicate detection: same issuer, number, symbol and year as one we hold. The
    # issuer is the sender's identifier when the caller knows it (axis intake gives the OrganId,
    # which a renamed agency keeps and two agencies never share), else the name as printed. It is
    # set after the query: flushed first, it would hit uq_documents_number instead of this message.
    issuer = issuer or doc.sender_name
    duplicate = session.scalar(select(Document.id).where(
        Document.organisation_id == doc.organisation_id, Document.direction == Direction.INCOMING,
        Document.issuer == issuer, Document.year == doc.year, Document.number == doc.number,
        Document.symbol == doc.symbol, Document.id != doc.id, Document.registered_at.is_not(None)))
    doc.issuer = issuer
    if duplicate is not None:
        raise errors.DuplicateRegistrationError("this incoming document is already registered",
                                                existing_document_id=duplicate)
    arrival_year = today_in_vietnam().year
    doc.arrival_year = arrival_year
    doc.arrival_number = next_number(session, doc.organisation_id, "incoming", arrival_year)


#: (issuer, year, number, symbol): what two registrations of one incoming document share (Appendix VI).
IncomingKey = tuple[str | None, int | None, int | None, str | None]


def registered_incoming(session: Session, organisation_id: int, keys: Iterable[IncomingKey]) -> dict[IncomingKey, int]:
    """Of ``keys``, those an incoming document of the organisation is registered under, each with that
    document's id: ``_register_incoming``'s duplicate check for many documents in one query (a None
    matches a None, as it does there)."""
    keys = set(keys)
    if not keys:
        return {}
    rows = session.execute(select(Document.id, Document.issuer, Document.year, Document.number, Document.symbol).where(
        Document.organisation_id == organisation_id, Document.direction == Direction.INCOMING,
        _in_or_null(Document.issuer, {k[0] for k in keys}), _in_or_null(Document.year, {k[1] for k in keys}),
        _in_or_null(Document.number, {k[2] for k in keys}), Document.registered_at.is_not(None)))
    found: dict[IncomingKey, int] = {}
    for document_id, *key in rows:
        if tuple(key) in keys:
            found.setdefault(tuple(key), document_id)
    return found


def _in_or_null(column, values: set):
    present = [v for v in values if v is not None]
    if None not in values:
        return column.in_(present)
    return or_(column.in_(present), column.is_(None)) if present else column.is_(None)


@dataclass(frozen=True)
class RegisteredIncoming:
    id: int
    arrival_year: int
    arrival_number: int
    events: list[audit.Entry]
    """``document.created`` and ``document.registered``, for the caller to append in its order."""


def create_registered_incoming(session: Session, actor: Actor, values: Sequence[dict[str, Any]],
                               created_detail: Sequence[dict[str, Any]]) -> list[RegisteredIncoming]:
    """Create incoming documents and register them at once, in the caller's transaction: one INSERT
    for all, arrival numbers taken together (consecutive, in the order given). ``values`` are each
    document's columns, ``issuer`` (the registration key's) included; the caller has made sure under
    a lock that none is a duplicate (``registered_incoming``), and appends the audit events returned
    (``document.created`` with ``created_detail``, then ``document.registered``) with
    ``audit.record_many``. A unique key still hit (a registration that got in first) rolls the
    session back and raises ``DuplicateRegistrationError``, as ``register_in_transaction`` does."""
    if not actor.has_any(Role.CLERK):
        raise errors.PermissionDeniedError("your role does not allow this", needs=[Role.CLERK.value])
    if any(v["organisation_id"] != actor.organisation_id for v in values):
        raise errors.PermissionDeniedError("only the owning organisation may change this document")
    if not values:
        return []
    arrival_year = today_in_vietnam().year
    numbers = next_numbers(session, actor.organisation_id, "incoming", arrival_year, len(values))
    rows = [{**v, "direction": Direction.INCOMING, "status": Status.REGISTERED, "registered_at": datetime.now(UTC),
             "arrival_year": arrival_year, "arrival_number": number} for v, number in zip(values, numbers, strict=True)]
    try:
        # RETURNING the arrival number too: a multi-row INSERT's rows need not come back in order.
        ids = dict(session.execute(insert(Document.__table__).returning(Document.arrival_number, Document.id),
                                   rows).all())
    except IntegrityError as exc:
        session.rollback()
        raise errors.DuplicateRegistrationError("a document with this number and symbol is already registered") \
            from exc
    registered = []
    for row, detail in zip(rows, created_detail, strict=True):
        document_id = ids[row["arrival_number"]]
        registered.append(RegisteredIncoming(document_id, arrival_year, row["arrival_number"], [
            audit.entry(actor, "document.created", object_type="document", object_id=document_id,
                        direction=row["direction"], doc_type=row["doc_type"], **detail),
            audit.entry(actor, "document.registered", object_type="document", object_id=document_id,
                        number=row["number"], symbol=row["symbol"], arrival_number=row["arrival_number"])]))
    return registered


def share(session: Session, actor: Actor, document_id: int, organisation_id: int) -> None:
    doc = get_owned(session, actor, document_id, Role.CLERK, Role.LEADER)
    if session.get(Organisation, organisation_id) is None:
        raise errors.NotFoundError("organisation not found")
    if organisation_id == doc.organisation_id:
        raise errors.ValidationFailedError("a document cannot be shared to its own organisation")
    if session.get(DocumentShare, (doc.id, organisation_id)) is None:
        session.add(DocumentShare(document_id=doc.id, organisation_id=organisation_id))
    audit.record(session, actor, "document.shared", object_type="document", object_id=doc.id,
                 shared_with=organisation_id)
    session.commit()


def read(session: Session, actor: Actor, document_id: int) -> Document:
    """Read the record; reads by people and systems are audit events too."""
    doc = get_readable(session, actor, document_id)
    audit.record(session, actor, "document.read", object_type="document", object_id=doc.id)
    session.commit()
    return doc

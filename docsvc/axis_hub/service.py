"""What the hub does, without HTTP: authenticate agencies, accept packages (inspect, check,
store, record one delivery per recipient), list, hand out and acknowledge deliveries.

Errors are ``inter_axis.transport.TransportError`` with the transport's stable codes: the hub
and its client speak one vocabulary, and the HTTP layer only maps codes to statuses."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from docsvc.axis_hub.models import HubAgency, HubDelivery, HubMessage, create_schema, utcnow
from docsvc.axis_hub.storage import PackageStorage, PartialUpload
from inter_axis.errors import EdxmlError
from inter_axis.header_reader import locate
from inter_axis.inspect import PackageSummary, summarise
from inter_axis.lenient import LenientReader
from inter_axis.model import STATUS_CODES
from inter_axis.stream import StreamedTree, read_tree
from inter_axis.transport import (
    DUPLICATE_DOCUMENT,
    IDEMPOTENCY_CONFLICT,
    INVALID_PACKAGE,
    NOT_FOUND,
    SENDER_MISMATCH,
    TOO_LARGE,
    UNAUTHORIZED,
    UNKNOWN_RECIPIENT,
    SendReceipt,
    TransportError,
)

#: QCVN 102:2016 (``000.00.00.H41``) and QĐ 20/2020 (``H41.12``) identifier layouts (VN-STANDARDS §2).
ORGAN_ID = re.compile(r"^(\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}|[A-Z]\d{2}(\.[0-9A-Z]+)*)$")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:~-]{8,128}$")
#: BussinessDocType of a new document; revocations (1), updates (2), replacements (3) refer to
#: an already delivered DocumentId, so only type 0 is held to "never delivered twice".
NEW_DOCUMENT = "0"
#: Seconds the in-memory copy of the agency table is used before it is read again. Agencies change
#: at start-up (``sync_agencies``); the reload covers hubs sharing one database.
AGENCY_CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class AgencyEntry:
    """One line of the agencies file: ``{"organ_id", "name", "secret_sha256"}``."""

    organ_id: str
    name: str
    secret_sha256: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def read_agencies_file(path: Path) -> list[AgencyEntry]:
    """Parse and check an agencies file (JSON ``{"agencies": [...]}``); raises ``ValueError``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = []
    for item in data.get("agencies", []):
        entry = AgencyEntry(organ_id=item["organ_id"], name=item["name"], secret_sha256=item["secret_sha256"].lower())
        if not ORGAN_ID.match(entry.organ_id) or len(entry.organ_id) > 35:
            raise ValueError(f"{path}: {entry.organ_id!r} is not an agency identifier")
        if not re.fullmatch(r"[0-9a-f]{64}", entry.secret_sha256):
            raise ValueError(f"{path}: secret_sha256 of {entry.organ_id} is not a hex SHA-256")
        entries.append(entry)
    if len({e.organ_id for e in entries}) != len(entries):
        raise ValueError(f"{path}: an organ_id appears twice")
    return entries


@dataclass(frozen=True)
class StoredPackage:
    path: Path
    size: int
    sha256: str


class HubService:
    """The hub's operations over its database and package storage."""

    def __init__(self, engine: sa.Engine, storage: PackageStorage, max_package_bytes: int) -> None:
        self.engine = engine
        self.storage = storage
        self.max_package_bytes = max_package_bytes
        self.sessions: sessionmaker[Session] = sessionmaker(bind=engine, expire_on_commit=False)
        # Every request authenticates: one SELECT each cost ~1 ms of the hub's ~15 ms per package.
        self._agency_lock = threading.Lock()
        self._agency_cache: tuple[float, dict[str, str]] | None = None

    # -- start-up ----------------------------------------------------------------------------
    def prepare(self, agencies: Iterable[AgencyEntry] | None) -> list[str]:
        """Create tables, load the agencies file (it is the source of truth: agencies missing
        from it are deactivated), and sweep files left by a crash. Returns what was swept."""
        create_schema(self.engine)
        if agencies is not None:
            self.sync_agencies(list(agencies))
        with self.sessions() as session:
            return self.storage.sweep(lambda key: session.scalar(
                sa.select(sa.literal(True)).where(HubMessage.storage_key == key)) is not None)

    def sync_agencies(self, entries: list[AgencyEntry]) -> None:
        with self.sessions.begin() as session:
            known = {a.organ_id: a for a in session.scalars(sa.select(HubAgency))}
            listed = {e.organ_id for e in entries}
            for agency in known.values():
                agency.active = agency.organ_id in listed
            for e in entries:
                agency = known.get(e.organ_id) or HubAgency(organ_id=e.organ_id)
                agency.name, agency.secret_sha256, agency.active = e.name, e.secret_sha256, True
                session.add(agency)
        with self._agency_lock:
            self._agency_cache = None

    def _active_agencies(self) -> dict[str, str]:
        """secret SHA-256 → OrganId of the active agencies (cached for ``AGENCY_CACHE_SECONDS``)."""
        now = time.monotonic()
        with self._agency_lock:
            cached = self._agency_cache
        if cached is not None and now - cached[0] < AGENCY_CACHE_SECONDS:
            return cached[1]
        with self.sessions() as session:
            rows = session.execute(sa.select(HubAgency.secret_sha256, HubAgency.organ_id)
                                   .where(HubAgency.active.is_(True))).all()
        table = {row.secret_sha256: row.organ_id for row in rows}
        with self._agency_lock:
            self._agency_cache = (now, table)
        return table

    # -- authentication ----------------------------------------------------------------------
    def authenticate_cached(self, secret: str | None, claimed_agency_id: str | None) -> str | None:
        """``authenticate`` answered from a fresh agency cache without touching the database (so it
        can run on the event loop); ``None`` when that cannot decide: the cache is stale, or the
        secret or the claimed agency does not match (``authenticate`` then decides, and explains)."""
        with self._agency_lock:
            cached = self._agency_cache
        if not secret or cached is None or time.monotonic() - cached[0] >= AGENCY_CACHE_SECONDS:
            return None
        organ_id = cached[1].get(hash_secret(secret))
        return organ_id if organ_id is not None and claimed_agency_id in (None, organ_id) else None

    def authenticate(self, secret: str | None, claimed_agency_id: str | None) -> str:
        """The OrganId whose secret this is; ``unauthorized`` otherwise."""
        if secret:
            organ_id = self._active_agencies().get(hash_secret(secret))
            if organ_id is not None and claimed_agency_id in (None, organ_id):
                return organ_id
        raise TransportError(UNAUTHORIZED, "unknown agency or wrong secret")

    # -- sending -----------------------------------------------------------------------------
    def accept(self, sender: str, upload: PartialUpload, idempotency_key: str,
               expect_kind: str | None = None) -> SendReceipt:
        """Accept a fully received, fsynced upload, or refuse it leaving nothing behind.

        Order matters for crash safety: the file is placed durably before the rows that point
        at it are committed; the receipt is returned only after the commit."""
        try:
            replay = self._replay(sender, idempotency_key, upload.sha256)
            if replay is not None:
                return replay
            summary, tree = self._inspect(upload.path)
            recipients = self._check(sender, summary, expect_kind, tree)
            message_id = uuid.uuid4().hex
            storage_key = self.storage.key_for(message_id)
            self.storage.place(upload, storage_key)
            try:
                self._record(sender, message_id, storage_key, idempotency_key, summary, recipients, upload)
            except IntegrityError as exc:
                # A concurrent request with the same key or DocumentId committed first.
                self.storage.remove(storage_key)
                replay = self._replay(sender, idempotency_key, upload.sha256)
                if replay is not None:
                    return replay
                self._refuse_duplicates(sender, summary, recipients)
                raise TransportError(DUPLICATE_DOCUMENT, "already accepted by a concurrent request") from exc
            except BaseException:
                self.storage.remove(storage_key)
                raise
            return SendReceipt(message_id=message_id, document_id=summary.document_id, recipients=recipients,
                               kind=summary.kind)
        finally:
            self.storage.discard(upload)

    def _replay(self, sender: str, key: str, sha256: str) -> SendReceipt | None:
        with self.sessions() as session:  # columns, not a HubMessage: asked for every package sent
            message = session.execute(sa.select(HubMessage.id, HubMessage.sha256, HubMessage.document_id,
                                                HubMessage.kind).where(HubMessage.sender == sender,
                                                                       HubMessage.idempotency_key == key)).first()
            if message is None:
                return None
            if message.sha256 != sha256:
                raise TransportError(IDEMPOTENCY_CONFLICT, "this idempotency key was used for a different package",
                                     {"message_id": message.id})
            recipients = session.scalars(sa.select(HubDelivery.recipient)
                                         .where(HubDelivery.message_id == message.id)
                                         .order_by(HubDelivery.recipient)).all()
            return SendReceipt(message_id=message.id, document_id=message.document_id, recipients=tuple(recipients),
                               kind=message.kind, replayed=True)

    def _inspect(self, path: Path) -> tuple[PackageSummary, StreamedTree]:
        try:
            # The whole package is read (attachment text skipped, not kept): one whose body or
            # attachments are cut off or not well-formed must not be accepted either. The summary
            # comes from the same parse (the header was parsed twice before, ~1 ms a package).
            tree = read_tree(path, max_bytes=self.max_package_bytes)
            return summarise(tree), tree
        except EdxmlError as exc:
            code = TOO_LARGE if exc.code == "oversize" else INVALID_PACKAGE
            raise TransportError(code, f"package refused: {exc}", {"reason": exc.code}) from exc

    def _check(self, sender: str, summary: PackageSummary, expect_kind: str | None,
               tree: StreamedTree) -> tuple[str, ...]:
        if expect_kind is not None and summary.kind != expect_kind:
            raise TransportError(INVALID_PACKAGE, f"expected a {expect_kind} package, got a {summary.kind} package",
                                 {"reason": "wrong_kind"})
        if summary.from_organ_id != sender:
            raise TransportError(SENDER_MISMATCH, f"the package is from {summary.from_organ_id!r}, "
                                 f"but you are {sender}", {"from_organ_id": summary.from_organ_id})
        if summary.kind == "status":
            # Checked before anything is stored: the code goes into a two-character column, and a
            # code outside §1.9 ("003", "999", a reserved "07") means nothing to any recipient. The
            # reader refuses such a code already (same reason); this keeps the column safe whatever
            # reader the summary comes from.
            if summary.status_code not in STATUS_CODES:
                raise TransportError(INVALID_PACKAGE, f"StatusCode {str(summary.status_code)[:16]!r} is not one of "
                                     f"{', '.join(STATUS_CODES)}", {"reason": "unknown_status_code"})
            recipients = self._status_recipients(sender, summary, tree)
        else:
            recipients = tuple(summary.to_organ_ids)
        if not recipients:
            raise TransportError(INVALID_PACKAGE, "the package names no recipient", {"reason": "no_recipient"})
        if not all(recipients):
            raise TransportError(INVALID_PACKAGE, "a recipient has no OrganId", {"reason": "no_recipient"})
        if len(set(recipients)) != len(recipients):
            raise TransportError(INVALID_PACKAGE, "a recipient appears twice", {"reason": "duplicate_recipient"})
        if not summary.document_id or len(summary.document_id) > 200:
            raise TransportError(INVALID_PACKAGE, "missing or overlong DocumentId", {"reason": "document_id"})
        known = set(self._active_agencies().values())
        unknown = [r for r in recipients if r not in known]
        if unknown:
            raise TransportError(UNKNOWN_RECIPIENT, f"not registered on this axis: {', '.join(unknown)}",
                                 {"unknown": unknown})
        self._refuse_duplicates(sender, summary, recipients)
        return recipients

    def _status_recipients(self, sender: str, summary: PackageSummary, tree: StreamedTree) -> tuple[str, ...]:
        """Where a status goes. ResponseFor/OrganId is the document's original sender (§1.9), which
        routes a receiver's status (01-06, 15, 16) but not one the original sender sends itself (a
        recall 13): so a ``To`` in the status header, as docsvc writes it, decides; without one, a
        status goes to the original sender, or, if that is the sender itself, to the agencies this
        hub delivered the document to."""
        addressed = _status_to(tree)
        if addressed:
            return addressed
        original = tuple(r for r in summary.to_organ_ids if r)
        if original and original[0] != sender:
            return original[:1]
        with self.sessions() as session:
            return tuple(session.scalars(
                sa.select(HubDelivery.recipient).distinct()
                .where(HubDelivery.sender == sender, HubDelivery.new_document_id == summary.document_id)
                .order_by(HubDelivery.recipient)))

    def _refuse_duplicates(self, sender: str, summary: PackageSummary, recipients: tuple[str, ...]) -> None:
        new_id = _new_document_id(summary)
        if new_id is None:
            return
        with self.sessions() as session:
            rows = session.execute(sa.select(HubDelivery.recipient, HubDelivery.message_id).where(
                HubDelivery.sender == sender, HubDelivery.new_document_id == new_id,
                HubDelivery.recipient.in_(recipients))).all()
        if rows:
            raise TransportError(DUPLICATE_DOCUMENT, f"DocumentId {new_id} was already sent to "
                                 f"{', '.join(sorted(r.recipient for r in rows))}",
                                 {"document_id": new_id, "recipients": sorted(r.recipient for r in rows),
                                  "message_id": rows[0].message_id})

    def _record(self, sender: str, message_id: str, storage_key: str, key: str, summary: PackageSummary,
                recipients: tuple[str, ...], upload: PartialUpload) -> None:
        new_id = _new_document_id(summary)
        # Two plain INSERTs in one transaction (the ORM's unit of work, twice per package, cost more
        # than the statements); the same rows, the same constraints, one commit.
        with self.sessions.begin() as session:
            session.execute(sa.insert(HubMessage).values(
                id=message_id, sender=sender, idempotency_key=key, kind=summary.kind,
                document_id=summary.document_id, business_type=_text(summary.business_type),
                status_code=_text(summary.status_code), size=upload.size, sha256=upload.sha256,
                storage_key=storage_key, received_at=utcnow()))
            session.execute(sa.insert(HubDelivery), [
                {"message_id": message_id, "recipient": r, "sender": sender, "new_document_id": new_id,
                 "state": "pending"} for r in recipients])

    # -- receiving ---------------------------------------------------------------------------
    def pending_for(self, agency: str, limit: int) -> list[dict]:
        # Plain rows, not ORM objects: receivers list often (up to 1000 at a time), and building a
        # HubMessage per row was most of the listing's cost.
        with self.sessions() as session:
            rows = session.execute(
                sa.select(HubMessage.id, HubMessage.sender, HubMessage.document_id, HubMessage.kind,
                          HubMessage.status_code, HubMessage.received_at, HubMessage.size, HubMessage.sha256)
                .join(HubDelivery, HubDelivery.message_id == HubMessage.id)
                .where(HubDelivery.recipient == agency, HubDelivery.state == "pending")
                .order_by(HubMessage.received_at, HubMessage.id).limit(limit)).all()
        return [{"message_id": m.id, "from_organ_id": m.sender, "document_id": m.document_id, "kind": m.kind,
                 "status_code": m.status_code, "received_at": _iso(m.received_at), "size": m.size,
                 "sha256": m.sha256} for m in rows]

    def package_for(self, agency: str, message_id: str) -> StoredPackage:
        with self.sessions() as session:  # three columns, not a HubMessage: asked once per package fetched
            row = session.execute(sa.select(HubMessage.storage_key, HubMessage.size, HubMessage.sha256)
                                  .join(HubDelivery, HubDelivery.message_id == HubMessage.id)
                                  .where(HubMessage.id == message_id, HubDelivery.recipient == agency)).first()
        if row is None:
            raise TransportError(NOT_FOUND, f"no message {message_id} for {agency}")
        return StoredPackage(self.storage.path_of(row.storage_key), row.size, row.sha256)

    def ack(self, agency: str, message_id: str) -> None:
        with self.sessions.begin() as session:
            done = session.execute(sa.update(HubDelivery)
                                   .where(HubDelivery.message_id == message_id, HubDelivery.recipient == agency,
                                          HubDelivery.state == "pending")
                                   .values(state="delivered", delivered_at=utcnow()))
            if done.rowcount == 0:  # already acknowledged (fine) or not addressed to this agency
                self._addressed(session, agency, message_id)

    def ack_many(self, agency: str, message_ids: list[str]) -> list[str]:
        """Acknowledge several deliveries in one transaction; returns the ids that are not addressed
        to ``agency`` (nothing is changed for those)."""
        if not message_ids:
            return []
        with self.sessions.begin() as session:
            session.execute(sa.update(HubDelivery)
                            .where(HubDelivery.message_id.in_(message_ids), HubDelivery.recipient == agency,
                                   HubDelivery.state == "pending")
                            .values(state="delivered", delivered_at=utcnow()))
            addressed = set(session.scalars(sa.select(HubDelivery.message_id).where(
                HubDelivery.message_id.in_(message_ids), HubDelivery.recipient == agency)))
        return [m for m in message_ids if m not in addressed]

    def sent_status(self, agency: str, message_id: str) -> dict:
        with self.sessions() as session:
            message = session.get(HubMessage, message_id)
            if message is None or message.sender != agency:
                raise TransportError(NOT_FOUND, f"you sent no message {message_id}")
            deliveries = session.scalars(sa.select(HubDelivery).where(HubDelivery.message_id == message_id)
                                         .order_by(HubDelivery.recipient)).all()
            return {"message_id": message.id, "document_id": message.document_id, "kind": message.kind,
                    "received_at": _iso(message.received_at),
                    "deliveries": [{"recipient": d.recipient, "state": d.state, "delivered_at": _iso(d.delivered_at)}
                                   for d in deliveries]}

    def agencies(self) -> list[dict]:
        with self.sessions() as session:
            rows = session.scalars(sa.select(HubAgency).where(HubAgency.active.is_(True))
                                   .order_by(HubAgency.organ_id)).all()
        return [{"organ_id": a.organ_id, "name": a.name} for a in rows]

    @staticmethod
    def _addressed(session: Session, agency: str, message_id: str) -> HubMessage:
        """The message if it is addressed to ``agency``; ``not_found`` (never "forbidden") otherwise."""
        message = session.scalar(sa.select(HubMessage).join(HubDelivery, HubDelivery.message_id == HubMessage.id)
                                 .where(HubMessage.id == message_id, HubDelivery.recipient == agency))
        if message is None:
            raise TransportError(NOT_FOUND, f"no message {message_id} for {agency}")
        return message


def _status_to(tree: StreamedTree) -> tuple[str, ...]:
    """OrganIds of the ``To`` elements of a status header, in order (duplicates kept, so they are
    refused like a document's). ``inter_axis``'s summary has no To for a status."""
    reader = LenientReader()
    try:
        envelope = locate(tree.root, reader)
    except EdxmlError as exc:  # already located once by the summary; kept for a clear refusal all the same
        raise TransportError(INVALID_PACKAGE, f"package refused: {exc}", {"reason": exc.code}) from exc
    return tuple(reader.text(to, "OrganId", "MessageHeader/To") for to in reader.children(envelope.message, "To"))


def _new_document_id(summary: PackageSummary) -> str | None:
    if summary.kind != "document":
        return None
    business_type = _text(summary.business_type)
    return summary.document_id if business_type in (None, NEW_DOCUMENT) else None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # SQLite hands back naive datetimes; everything the hub stores is UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()

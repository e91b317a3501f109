"""What the hub does, without HTTP: authenticate agencies, accept packages (inspect, check,
store, record one delivery per recipient), list, hand out and acknowledge deliveries.

Errors are ``inter_axis.transport.TransportError`` with the transport's stable codes: the hub
and its client speak one vocabulary, and the HTTP layer only maps codes to statuses."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
#: Batch caps (``send_many``): packages per request and their bytes together. A package over the
#: byte cap still goes alone (``send``); the client splits larger batches.
DEFAULT_MAX_BATCH_PACKAGES = 100
DEFAULT_MAX_BATCH_BYTES = 32 * 1024**2
#: Most packages one ``get_many`` request names.
MAX_GET_MANY = 100
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


@dataclass
class Incoming:
    """One package of a send or of a batch, its bytes received into ``upload``."""

    idempotency_key: str
    upload: PartialUpload | None
    expect_kind: str | None = None
    """``status`` for ``update_status``: a document package is refused."""
    refused: TransportError | None = None
    """Refused before its bytes were kept (a bad key, over the size limit): ``upload`` is None."""


@dataclass(frozen=True)
class _Accepted:
    """A package accepted earlier, as a retry under its key is answered."""

    message_id: str
    sha256: str
    document_id: str
    kind: str
    recipients: tuple[str, ...]

    def answer(self, sha256: str) -> SendReceipt | TransportError:
        if sha256 != self.sha256:
            return TransportError(IDEMPOTENCY_CONFLICT, "this idempotency key was used for a different package",
                                  {"message_id": self.message_id})
        return SendReceipt(message_id=self.message_id, document_id=self.document_id, recipients=self.recipients,
                           kind=self.kind, replayed=True)


@dataclass
class _Candidate:
    """A package that passed every check needing no database, on its way to being recorded."""

    index: int
    key: str
    upload: PartialUpload
    summary: PackageSummary
    recipients: tuple[str, ...] | None
    recall: bool
    """A status without To from the document's own sender: its recipients are the document's."""
    new_document_id: str | None
    message_id: str = ""
    storage_key: str = ""

    def accepted(self) -> _Accepted:
        return _Accepted(self.message_id, self.upload.sha256, self.summary.document_id, self.summary.kind,
                         tuple(sorted(self.recipients or ())))


# Statements built once: SQLAlchemy memoises a statement's cache key on the object, so reusing
# them skips that work on every package.
_M, _D = HubMessage.__table__, HubDelivery.__table__
_REPLAYS = sa.select(_M.c.id, _M.c.idempotency_key, _M.c.sha256, _M.c.document_id, _M.c.kind).where(
    _M.c.sender == sa.bindparam("sender"), _M.c.idempotency_key.in_(sa.bindparam("keys", expanding=True)))
_RECIPIENTS_OF = (sa.select(_D.c.message_id, _D.c.recipient)
                  .where(_D.c.message_id.in_(sa.bindparam("ids", expanding=True)))
                  .order_by(_D.c.message_id, _D.c.recipient))
_SENT_DOCUMENTS = sa.select(_D.c.new_document_id, _D.c.recipient, _D.c.message_id).where(
    _D.c.sender == sa.bindparam("sender"), _D.c.new_document_id.in_(sa.bindparam("ids", expanding=True)))
_DOCUMENT_RECIPIENTS = (sa.select(_D.c.recipient).distinct()
                        .where(_D.c.sender == sa.bindparam("sender"),
                               _D.c.new_document_id == sa.bindparam("document_id"))
                        .order_by(_D.c.recipient))
_PACKAGES_FOR = (sa.select(_M.c.id, _M.c.storage_key, _M.c.size, _M.c.sha256)
                .join(_D, _D.c.message_id == _M.c.id)
                .where(_M.c.id.in_(sa.bindparam("ids", expanding=True)), _D.c.recipient == sa.bindparam("agency")))
_INSERT_MESSAGE = sa.insert(_M)
_INSERT_DELIVERY = sa.insert(_D)


class HubService:
    """The hub's operations over its database and package storage."""

    def __init__(self, engine: sa.Engine, storage: PackageStorage, max_package_bytes: int, *,
                 max_batch_packages: int = DEFAULT_MAX_BATCH_PACKAGES,
                 max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES) -> None:
        self.engine = engine
        self.storage = storage
        self.max_package_bytes = max_package_bytes
        self.max_batch_packages = max_batch_packages
        """Most packages one ``send_many`` request may carry."""
        self.max_batch_bytes = max_batch_bytes
        """Most package bytes (all packages together) one ``send_many`` request may carry."""
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
        """Accept a fully received upload, or refuse it leaving nothing behind: ``accept_many``
        of one package, its refusal raised."""
        outcome = self.accept_many(sender, [Incoming(idempotency_key, upload, expect_kind)])[0]
        if isinstance(outcome, TransportError):
            raise outcome
        return outcome

    def accept_many(self, sender: str, items: Sequence[Incoming]) -> list[SendReceipt | TransportError]:
        """Accept or refuse each received package of a send or a batch, in order, with the outcome
        each would have had sent alone after the ones before it. Uploads are disposed of in any case.

        Order matters for crash safety: every file is fsynced and placed durably before the rows
        that point at it are committed, and receipts exist only after the commit. A batch pays once
        what a package alone pays once: the replay look-up, the directory fsync, the duplicate
        look-up and the transaction (see ``_place_and_record``).

        A retry is answered with the original receipt (or ``idempotency_conflict``) before any
        other outcome. A batch looks its keys up first, so a retried batch is answered without
        reading its packages again; a package alone looks its key up in the transaction that would
        record it (one transaction instead of two for every send), or before its refusal."""
        outcomes: list[SendReceipt | TransportError | None] = [item.refused for item in items]
        try:
            live = [i for i, item in enumerate(items) if outcomes[i] is None]
            for i in live:
                self.storage.finish(items[i].upload)
            ahead = len(live) > 1
            known = self._replays(sender, [items[i].idempotency_key for i in live]) if ahead else {}
            candidates, refused = [], []
            for i in live:
                item = items[i]
                earlier = known.get(item.idempotency_key)
                if earlier is not None:  # a retry: answered without reading the package again
                    outcomes[i] = earlier.answer(item.upload.sha256)
                    continue
                try:
                    summary, tree = self._inspect(item.upload.path)
                    candidates.append(self._check(i, sender, item, summary, tree))
                except TransportError as exc:
                    outcomes[i] = exc
                    refused.append(i)
            if refused and not ahead:
                known = self._replays(sender, [items[i].idempotency_key for i in refused])
                for i in refused:
                    earlier = known.get(items[i].idempotency_key)
                    if earlier is not None:
                        outcomes[i] = earlier.answer(items[i].upload.sha256)
            if candidates:
                self._place_and_record(sender, candidates, outcomes, check_replays=not ahead)
            return outcomes
        finally:
            for item in items:
                if item.upload is not None:
                    self.storage.discard(item.upload)

    def _replays(self, sender: str, keys: list[str], conn: sa.Connection | None = None) -> dict[str, _Accepted]:
        """What was accepted earlier from ``sender`` under any of ``keys``: one query (two if any),
        on ``conn`` or a connection of its own."""
        if not keys:
            return {}
        if conn is None:
            with self.engine.connect() as own:
                return self._replays(sender, keys, own)
        rows = conn.execute(_REPLAYS, {"sender": sender, "keys": sorted(set(keys))}).all()
        if not rows:
            return {}
        recipients: dict[str, list[str]] = {}
        for row in conn.execute(_RECIPIENTS_OF, {"ids": [r.id for r in rows]}):
            recipients.setdefault(row.message_id, []).append(row.recipient)
        return {r.idempotency_key: _Accepted(r.id, r.sha256, r.document_id, r.kind, tuple(recipients.get(r.id, ())))
                for r in rows}

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

    def _check(self, index: int, sender: str, item: Incoming, summary: PackageSummary,
               tree: StreamedTree) -> _Candidate:
        """Every check that needs no database: what is left (duplicates, and the recipients of a
        recall without To) is decided when the package is recorded."""
        if item.expect_kind is not None and summary.kind != item.expect_kind:
            raise TransportError(INVALID_PACKAGE, f"expected a {item.expect_kind} package, got a {summary.kind} "
                                 "package", {"reason": "wrong_kind"})
        if summary.from_organ_id != sender:
            raise TransportError(SENDER_MISMATCH, f"the package is from {summary.from_organ_id!r}, "
                                 f"but you are {sender}", {"from_organ_id": summary.from_organ_id})
        recipients: tuple[str, ...] | None
        if summary.kind == "status":
            # Checked before anything is stored: the code goes into a two-character column, and a
            # code outside §1.9 ("003", "999", a reserved "07") means nothing to any recipient. The
            # reader refuses such a code already (same reason); this keeps the column safe whatever
            # reader the summary comes from.
            if summary.status_code not in STATUS_CODES:
                raise TransportError(INVALID_PACKAGE, f"StatusCode {str(summary.status_code)[:16]!r} is not one of "
                                     f"{', '.join(STATUS_CODES)}", {"reason": "unknown_status_code"})
            recipients = _status_recipients(sender, summary, tree)
        else:
            recipients = tuple(summary.to_organ_ids)
        if recipients is not None:
            self._check_recipients(recipients)
        if not summary.document_id or len(summary.document_id) > 200:
            raise TransportError(INVALID_PACKAGE, "missing or overlong DocumentId", {"reason": "document_id"})
        return _Candidate(index=index, key=item.idempotency_key, upload=item.upload, summary=summary,
                          recipients=recipients, recall=recipients is None,
                          new_document_id=_new_document_id(summary))

    def _check_recipients(self, recipients: tuple[str, ...]) -> None:
        if not recipients:
            raise TransportError(INVALID_PACKAGE, "the package names no recipient", {"reason": "no_recipient"})
        if not all(recipients):
            raise TransportError(INVALID_PACKAGE, "a recipient has no OrganId", {"reason": "no_recipient"})
        if len(set(recipients)) != len(recipients):
            raise TransportError(INVALID_PACKAGE, "a recipient appears twice", {"reason": "duplicate_recipient"})
        known = set(self._active_agencies().values())
        unknown = [r for r in recipients if r not in known]
        if unknown:
            raise TransportError(UNKNOWN_RECIPIENT, f"not registered on this axis: {', '.join(unknown)}",
                                 {"unknown": unknown})

    def _place_and_record(self, sender: str, candidates: list[_Candidate],
                          outcomes: list[SendReceipt | TransportError | None], *, check_replays: bool) -> None:
        """Place the candidates' files durably, then record them in one transaction.

        Should that transaction meet a concurrent request's rows (a unique constraint: the same
        key, or the same new DocumentId for a recipient), it is rolled back whole and the
        candidates are recorded one transaction each, each such refusal explained as for a
        single send. Files whose rows were not committed are removed; a failure while committing
        leaves them to the start-up sweep (the commit may have happened)."""
        prefix = secrets.token_hex(1)  # the batch's files share one directory: one fsync
        for c in candidates:
            c.message_id = prefix + uuid.uuid4().hex[2:]
            c.storage_key = self.storage.key_for(c.message_id)
        recorded: set[int] = set()
        committing = [False]
        try:
            self.storage.place_many([(c.upload, c.storage_key) for c in candidates])
            try:
                recorded = self._record(sender, candidates, outcomes, committing, check_replays)
            except IntegrityError:
                recorded = set()
                for c in candidates:
                    committing[0] = False
                    if self._record_alone(sender, c, outcomes, committing, check_replays):
                        recorded.add(c.index)
        except BaseException:
            if committing[0]:
                recorded = {c.index for c in candidates}  # unknown: the sweep decides
            raise
        finally:
            for c in candidates:
                if c.index not in recorded:
                    self.storage.remove(c.storage_key)

    def _record(self, sender: str, candidates: list[_Candidate], outcomes: list[SendReceipt | TransportError | None],
                committing: list[bool], check_replays: bool) -> set[int]:
        """One transaction: the replay look-up (``check_replays``), the duplicate checks (one query
        for the whole batch, plus the batch's own earlier packages), then the rows of every
        candidate that passes. Returns the indexes recorded; sets the outcome of every candidate."""
        accepted: list[_Candidate] = []
        with self.engine.begin() as conn:
            if check_replays:
                known = self._replays(sender, [c.key for c in candidates], conn)
                if known:
                    for c in candidates:
                        if c.key in known:
                            outcomes[c.index] = known[c.key].answer(c.upload.sha256)
                    candidates = [c for c in candidates if c.key not in known]
            new_ids = sorted({c.new_document_id for c in candidates if c.new_document_id})
            sent: dict[tuple[str, str], str] = {}
            if new_ids:
                for row in conn.execute(_SENT_DOCUMENTS, {"sender": sender, "ids": new_ids}):
                    sent.setdefault((row.new_document_id, row.recipient), row.message_id)
            by_key: dict[str, _Candidate] = {}
            for c in candidates:
                earlier = by_key.get(c.key)
                if earlier is not None:  # the same key earlier in this batch
                    outcomes[c.index] = earlier.accepted().answer(c.upload.sha256)
                    continue
                try:
                    if c.recall:
                        c.recipients = self._recall_recipients(conn, sender, c.summary.document_id, accepted)
                        self._check_recipients(c.recipients)
                    if c.new_document_id:
                        _refuse_duplicate(c, sent)
                except TransportError as exc:
                    # A retry that raced its original (same key) clashes with it as a duplicate:
                    # it gets the original's receipt, as a retry after the original would.
                    earlier = (self._replays(sender, [c.key], conn).get(c.key)
                               if exc.code == DUPLICATE_DOCUMENT else None)
                    outcomes[c.index] = exc if earlier is None else earlier.answer(c.upload.sha256)
                    continue
                if c.new_document_id:
                    for r in c.recipients:
                        sent[(c.new_document_id, r)] = c.message_id
                by_key[c.key] = c
                accepted.append(c)
            if accepted:
                now = utcnow()
                conn.execute(_INSERT_MESSAGE, [{
                    "id": c.message_id, "sender": sender, "idempotency_key": c.key, "kind": c.summary.kind,
                    "document_id": c.summary.document_id, "business_type": _text(c.summary.business_type),
                    "status_code": _text(c.summary.status_code), "size": c.upload.size, "sha256": c.upload.sha256,
                    "storage_key": c.storage_key,
                    # The batch's order, for receivers listing oldest first.
                    "received_at": now + timedelta(microseconds=n)} for n, c in enumerate(accepted)])
                conn.execute(_INSERT_DELIVERY, [
                    {"message_id": c.message_id, "recipient": r, "sender": sender,
                     "new_document_id": c.new_document_id, "state": "pending"}
                    for c in accepted for r in c.recipients])
            committing[0] = True
        for c in accepted:
            outcomes[c.index] = SendReceipt(message_id=c.message_id, document_id=c.summary.document_id,
                                            recipients=c.recipients, kind=c.summary.kind)
        return {c.index for c in accepted}

    def _record_alone(self, sender: str, c: _Candidate, outcomes: list[SendReceipt | TransportError | None],
                      committing: list[bool], check_replays: bool) -> bool:
        """``_record`` of one candidate; a concurrent request's row that beats it is explained."""
        try:
            return bool(self._record(sender, [c], outcomes, committing, check_replays))
        except IntegrityError as exc:
            earlier = self._replays(sender, [c.key]).get(c.key)
            if earlier is not None:
                outcomes[c.index] = earlier.answer(c.upload.sha256)
                return False
            outcome = TransportError(DUPLICATE_DOCUMENT, "already accepted by a concurrent request")
            outcome.__cause__ = exc
            if c.new_document_id and c.recipients:
                with self.engine.connect() as conn:
                    sent = {(row.new_document_id, row.recipient): row.message_id for row in conn.execute(
                        _SENT_DOCUMENTS, {"sender": sender, "ids": [c.new_document_id]})}
                try:
                    _refuse_duplicate(c, sent)
                except TransportError as refusal:
                    outcome = refusal
            outcomes[c.index] = outcome
            return False

    @staticmethod
    def _recall_recipients(conn: sa.Connection, sender: str, document_id: str,
                           accepted: list[_Candidate]) -> tuple[str, ...]:
        """The agencies ``sender`` delivered its document ``document_id`` to: on this hub, and
        earlier in the batch being recorded."""
        recipients = set(conn.scalars(_DOCUMENT_RECIPIENTS, {"sender": sender, "document_id": document_id}))
        for c in accepted:
            if c.new_document_id == document_id:
                recipients.update(c.recipients)
        return tuple(sorted(recipients))

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

    def packages_for_many(self, agency: str, message_ids: list[str]) -> dict[str, StoredPackage]:
        """``package_for`` of several ids in one query; ids not addressed to ``agency`` are left out."""
        if not message_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(_PACKAGES_FOR, {"agency": agency, "ids": sorted(set(message_ids))}).all()
        return {row.id: StoredPackage(self.storage.path_of(row.storage_key), row.size, row.sha256) for row in rows}

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


def _status_recipients(sender: str, summary: PackageSummary, tree: StreamedTree) -> tuple[str, ...] | None:
    """Where a status goes. ResponseFor/OrganId is the document's original sender (§1.9), which
    routes a receiver's status (01-06, 15, 16) but not one the original sender sends itself (a
    recall 13): so a ``To`` in the status header, as docsvc writes it, decides; without one, a
    status goes to the original sender, or, if that is the sender itself, to the agencies this
    hub delivered the document to (``None``: looked up when the status is recorded)."""
    addressed = _status_to(tree)
    if addressed:
        return addressed
    original = tuple(r for r in summary.to_organ_ids if r)
    if original and original[0] != sender:
        return original[:1]
    return None


def _refuse_duplicate(c: _Candidate, sent: dict[tuple[str, str], str]) -> None:
    """``duplicate_document`` if the candidate's new DocumentId already went to one of its recipients."""
    clash = sorted(r for r in c.recipients if (c.new_document_id, r) in sent)
    if clash:
        raise TransportError(DUPLICATE_DOCUMENT, f"DocumentId {c.new_document_id} was already sent to "
                             f"{', '.join(clash)}", {"document_id": c.new_document_id, "recipients": clash,
                                                     "message_id": sent[(c.new_document_id, clash[0])]})


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

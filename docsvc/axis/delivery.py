"""Sending over the axis with retries: the state machine shared by outgoing documents
(``AxisExchange``) and the status messages we send (``AxisStatusMessage``).

Rows are attempted in batches (``attempt_many``; ``attempt`` is a batch of one): one transaction
reads every due row with its document, organisation, files and seal; the packages are built and
signed with no transaction open (SQLite's write lock must not wait on the network), small ones in
memory; they are sent with each row's idempotency key, one request per organisation
(``send_many``, when the transport has it; one ``send`` per package otherwise); one transaction
records every outcome. ``unavailable`` schedules the next attempt with exponential backoff (capped,
±25 % jitter); any other axis error marks the row ``failed`` with the code (``duplicate_document``
included: such a package is never sent again). A row that another attempt finished meanwhile keeps
that attempt's outcome. A crash anywhere repeats the attempt with the same key and the same bytes,
which the axis answers with the original receipt, so nothing is delivered twice; a rebuild that
gives other bytes than the first attempt's is not sent (``package_changed``)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session, sessionmaker

from archive import ArchiveError, ObjectStore
from docsvc.audit import service as audit
from docsvc.axis import packages
from docsvc.axis.models import AxisExchange, AxisStatusMessage
from docsvc.axis.packages import SignedPackage
from docsvc.axis.transport import seal_key, transport_for
from docsvc.documents.models import Document
from docsvc.errors import DocsvcError
from docsvc.organisations.models import Organisation
from docsvc.principal import SERVICE_ACTOR
from docsvc.settings import Settings
from inter_axis.errors import EdxmlError
from inter_axis.transport import AxisTransport, TransportError

log = logging.getLogger(__name__)
SENDING = ("pending", "retrying")
#: Rows the jobs hand to one ``attempt_many``.
BATCH = 50
#: Most packages, and most bytes of packages held in memory, in one ``send_many`` request.
REQUEST_MAX_PACKAGES = 50
REQUEST_MAX_BYTES = 32 * 1024**2
#: A built package: a context manager yielding its final bytes (in memory or in a temporary file).
Built = Callable[[], AbstractContextManager[SignedPackage]]
#: What one row's attempt ended with: the transport's receipt or the error, and the package's SHA-256.
Outcome = tuple[object, str | None]
_EXPECTED = (TransportError, EdxmlError, DocsvcError, ArchiveError)


def backoff(settings: Settings, attempts: int, rand: Callable[[], float] = random.random) -> timedelta:
    """Delay before attempt ``attempts + 1``: base·2^(attempts-1), capped, jittered by ±25 %."""
    axis = settings.axis
    delay = min(axis.retry_cap_seconds, axis.retry_base_seconds * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay * (0.75 + 0.5 * rand()))


@dataclass(frozen=True)
class _Attempt:
    row_id: int
    organ_id: str
    key: str
    expected_sha256: str | None
    build: Built
    status: bool
    in_memory: bool = True
    """The package is built in memory (and can wait in a request's batch); else through files on disk
    and sent alone while its temporary files exist."""


def _due(row, now: datetime) -> bool:
    return row.state in SENDING and (row.next_attempt_at is None or row.next_attempt_at <= now)


_BY_ID: dict[tuple[type, bool], object] = {}


def _by_id(session: Session, model, ids: Iterable[int], *, lock: bool = False) -> dict[int, object]:
    """Rows of ``model`` by id, in one query (its statement built once: building one costs as much as
    running it); ``lock`` takes their row locks (PostgreSQL; SQLite's writer gate already serialises
    the transactions that record outcomes)."""
    ids = list(set(ids))
    if not ids:
        return {}
    statement = _BY_ID.get((model, lock))
    if statement is None:
        statement = select(model).where(model.id.in_(bindparam("ids", expanding=True)))
        _BY_ID[(model, lock)] = statement = statement.with_for_update() if lock else statement
    return {row.id: row for row in session.scalars(statement, {"ids": ids})}


class _Seals:
    """Each organisation's seal, looked up once per batch."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self._session, self._settings, self._seals = session, settings, {}

    def __call__(self, org: Organisation):
        if org.id not in self._seals:
            self._seals[org.id] = seal_key(self._session, self._settings, org)
        return self._seals[org.id]


def _prepare_documents(session: Session, settings: Settings, store: ObjectStore, rows: list[AxisExchange],
                       skip: Callable[[object, Exception], None]) -> list[_Attempt]:
    documents = _by_id(session, Document, (row.document_id for row in rows))
    organisations = _by_id(session, Organisation, (row.organisation_id for row in rows))
    files = packages.sendable_files_of(session, list(documents.values()))
    seals, max_bytes = _Seals(session, settings), settings.axis.max_package_bytes
    prepared = []
    for row in rows:
        try:
            doc, org = documents[row.document_id], organisations[row.organisation_id]
            seal, rows_of_doc = seals(org), files[doc.id]
            recipient = (row.counterpart, next((name for oid, name in packages.axis_recipients(doc.recipients)
                                                if oid == row.counterpart), ""))
        except Exception as exc:  # noqa: BLE001 - this row is left as it is; the others go on
            skip(row, exc)
            continue
        package_args = (doc, org, recipient, row.created_at)
        in_memory = packages.fits_in_memory(rows_of_doc)

        def build(package_args=package_args, rows_of_doc=rows_of_doc, seal=seal):
            return packages.built_document(store, package_args, rows_of_doc, seal, max_bytes)

        prepared.append(_Attempt(row.id, org.organ_id, row.idempotency_key, row.package_sha256, build,
                                 status=False, in_memory=in_memory))
    return prepared


def _prepare_statuses(session: Session, settings: Settings, rows: list[AxisStatusMessage],
                      skip: Callable[[object, Exception], None]) -> list[_Attempt]:
    exchanges = _by_id(session, AxisExchange, (row.exchange_id for row in rows))
    organisations = _by_id(session, Organisation, (e.organisation_id for e in exchanges.values()))
    seals, max_bytes = _Seals(session, settings), settings.axis.max_package_bytes
    prepared = []
    for row in rows:
        try:
            exchange = exchanges[row.exchange_id]
            org = organisations[exchange.organisation_id]
            seal = seals(org)
            # ResponseFor/OrganId is the original sender of the document (§1.9): the counterpart for a
            # status about a document we received, ourselves for a recall (13) of one we sent. The
            # status goes To the counterpart in both cases, and the hub routes it by that To.
            original_sender = org.organ_id if exchange.direction == "outgoing" else exchange.counterpart
            message = packages.status_message(org, original_sender, exchange.edxml_document_id, row.code,
                                              row.description, row.created_at, row.staff)
        except Exception as exc:  # noqa: BLE001 - this row is left as it is; the others go on
            skip(row, exc)
            continue
        write = packages.write_status_to(message, exchange.counterpart)

        def build(write=write, seal=seal):
            return nullcontext(packages.signed_bytes(write, seal, max_bytes))

        prepared.append(_Attempt(row.id, org.organ_id, row.idempotency_key, None, build, status=True))
    return prepared


def _fail(row, code: str, message: str) -> None:
    row.state, row.error_code, row.error_message, row.next_attempt_at = "failed", code, message[:2000], None


def _apply_outcome(settings: Settings, row, outcome, sha256: str | None) -> str:
    now = datetime.now(UTC)
    row.attempts += 1
    if isinstance(outcome, TransportError) and outcome.retryable:
        if row.attempts >= settings.axis.max_attempts:
            _fail(row, outcome.code, f"gave up after {row.attempts} attempts: {outcome.message}")
        else:
            row.state, row.error_code, row.error_message = "retrying", outcome.code, outcome.message[:2000]
            row.next_attempt_at = now + backoff(settings, row.attempts)
    elif isinstance(outcome, (TransportError, EdxmlError, DocsvcError)):
        _fail(row, outcome.code, getattr(outcome, "message", str(outcome)))
    elif isinstance(outcome, ArchiveError):
        _fail(row, "file_unavailable", str(outcome))
    else:
        row.state, row.message_id, row.sent_at = "sent", outcome.message_id, now
        row.error_code = row.error_message = row.next_attempt_at = None
    if sha256 and isinstance(row, AxisExchange) and row.package_sha256 is None:
        row.package_sha256 = sha256
    return row.state


def _audit_entry(row, kind: str) -> audit.Entry:
    return audit.entry(SERVICE_ACTOR, f"axis.{kind}_{row.state}", object_type="axis_" + kind, object_id=row.id,
                       attempts=row.attempts, error_code=row.error_code, message_id=row.message_id)


def attempt(sessions: sessionmaker[Session], settings: Settings, store: ObjectStore, model, row_id: int,
            *, force: bool = False) -> str:
    """One delivery attempt of an ``AxisExchange`` (outgoing document) or ``AxisStatusMessage`` (sent);
    returns the row's state afterwards. Rows not due (or already sent/failed) are left alone."""
    return _attempt_batch(sessions, settings, store, model, [row_id], force=force, strict=True)[row_id]


def attempt_many(sessions: sessionmaker[Session], settings: Settings, store: ObjectStore, model,
                 row_ids: Iterable[int], *, force: bool = False) -> dict[int, str]:
    """One delivery attempt of each of ``row_ids`` (all ``AxisExchange`` or all ``AxisStatusMessage``),
    as :func:`attempt` makes it, with one read transaction, one request per organisation and one
    transaction recording every outcome; returns row id → state afterwards (``missing`` for an unknown
    id). Rows not due are left alone. A row that cannot be prepared or built for an unexpected reason
    (a bug, not an axis or archive error) is logged and left as it was; the others go on.

    Statuses are sent in the order given; :func:`send_statuses_many` sends one per exchange at a
    time, so a later code never overtakes an earlier one."""
    return _attempt_batch(sessions, settings, store, model, list(row_ids), force=force, strict=False)


def _attempt_batch(sessions: sessionmaker[Session], settings: Settings, store: ObjectStore, model,
                   row_ids: list[int], *, force: bool, strict: bool) -> dict[int, str]:
    ids = list(dict.fromkeys(row_ids))
    states: dict[int, str] = {}

    def skip(row, exc: Exception) -> None:
        if strict:
            raise exc
        log.error("axis attempt of %s %s skipped: %r", model.__name__, row.id, exc, exc_info=exc)

    with sessions() as session:
        rows = _by_id(session, model, ids)
        now = datetime.now(UTC)
        due = []
        for row_id in ids:
            row = rows.get(row_id)
            if row is None:
                states[row_id] = "missing"
            elif _due(row, now) or (force and row.state in SENDING):
                states[row_id] = row.state  # until an outcome is recorded
                due.append(row)
            else:
                states[row_id] = row.state
        if not due:
            return states
        if model is AxisExchange:
            prepared = _prepare_documents(session, settings, store, due, skip)
        else:
            prepared = _prepare_statuses(session, settings, due, skip)
        session.expunge_all()  # plain values from here on: the builds run after the transaction ends
        session.commit()  # a seal created on first use is kept
    outcomes = _deliver(settings, prepared, strict)
    if not outcomes:
        return states
    kind = "status" if model is AxisStatusMessage else "document"
    with sessions() as session:
        # Locked: two runs that sent the same row (a job and the sweep) record it once; the second
        # then sees it sent and keeps that outcome instead of counting a second attempt.
        rows = _by_id(session, model, outcomes, lock=True)
        recorded = []
        for row_id in sorted(outcomes):
            row = rows[row_id]
            if row.state not in SENDING:  # a concurrent attempt finished first
                states[row_id] = row.state
                continue
            outcome, sha256 = outcomes[row_id]
            states[row_id] = _apply_outcome(settings, row, outcome, sha256)
            recorded.append(row)
        session.flush()
        audit.record_many(session, [_audit_entry(row, kind) for row in recorded])  # one statement for all
        session.commit()
    return states


def _deliver(settings: Settings, prepared: list[_Attempt], strict: bool) -> dict[int, Outcome]:
    """Build, sign and send every prepared package, one request per organisation (split when it
    would exceed ``REQUEST_MAX_PACKAGES`` or ``REQUEST_MAX_BYTES``); a package built on disk goes
    alone, while its temporary files exist. Returns row id → outcome for every package that got one."""
    by_org: dict[str, list[_Attempt]] = {}
    for item in prepared:
        by_org.setdefault(item.organ_id, []).append(item)
    outcomes: dict[int, Outcome] = {}
    for organ_id, items in by_org.items():
        try:
            transport = transport_for(settings, organ_id)
        except _EXPECTED as exc:
            log.warning("axis send as %s failed: %s", organ_id, exc)
            outcomes.update((item.row_id, (exc, None)) for item in items)
            continue
        waiting: list[tuple[_Attempt, SignedPackage]] = []
        size = 0
        for item in items:
            try:
                with item.build() as signed:
                    if item.expected_sha256 and signed.sha256 != item.expected_sha256:
                        outcomes[item.row_id] = (TransportError(
                            "package_changed", "the rebuilt package differs from the first one (the document "
                            "or the seal changed); it is not sent under the same key"), signed.sha256)
                        continue
                    if not item.in_memory:
                        _send_request(transport, [(item, signed)], outcomes, strict)
                        continue
            except _EXPECTED as exc:
                log.warning("axis package of %s not built: %s", item.key, exc)
                outcomes[item.row_id] = (exc, None)
                continue
            except Exception as exc:
                if strict:
                    raise
                log.error("axis package of %s not built: %r", item.key, exc, exc_info=exc)
                continue
            if waiting and (len(waiting) >= REQUEST_MAX_PACKAGES or size + signed.size > REQUEST_MAX_BYTES):
                _send_request(transport, waiting, outcomes, strict)
                waiting, size = [], 0
            waiting.append((item, signed))
            size += signed.size
        if waiting:
            _send_request(transport, waiting, outcomes, strict)
    return outcomes


def _send_request(transport: AxisTransport, items: list[tuple[_Attempt, SignedPackage]],
                  outcomes: dict[int, Outcome], strict: bool) -> None:
    """Send ``items`` in one ``send_many`` request, or one by one when the transport has no
    ``send_many``. One by one, an ``unavailable`` axis is not asked again for the rest: they get the
    same error (and their retry), as a failed ``send_many`` request gives every package."""
    send_many = getattr(transport, "send_many", None)
    try:
        if send_many is not None:
            try:
                # Statuses go as update_status would send them: the axis refuses a document among them.
                results = list(send_many([(signed.source(), item.key, "status" if item.status else "document")
                                          for item, signed in items]))
            except TransportError as exc:
                if exc.retryable or len(items) == 1:
                    results = [exc] * len(items)
                else:
                    # Refused as a whole (a batch cap lower than ours, a framing this axis does not
                    # take…): no package was judged, so none may fail for good on it. Each is sent
                    # alone and gets its own verdict.
                    log.warning("axis batch of %d refused as a whole (%s); sending one by one", len(items), exc)
                    results = _one_by_one(transport, items)
            if len(results) != len(items):
                raise RuntimeError(f"send_many answered {len(results)} outcomes for {len(items)} packages")
        else:
            results = _one_by_one(transport, items)
    except Exception as exc:
        if strict:
            raise
        log.error("axis request of %d packages failed unexpectedly: %r", len(items), exc, exc_info=exc)
        return
    for (item, signed), result in zip(items, results, strict=True):
        if isinstance(result, TransportError):
            log.warning("axis send of %s failed: %s", item.key, result)
        outcomes[item.row_id] = (result, signed.sha256)


def _one_by_one(transport: AxisTransport, items: list[tuple[_Attempt, SignedPackage]]) -> list:
    """Each package in its own request (statuses through ``update_status``); once the axis is found
    unavailable, the rest get the same error without asking again."""
    results = []
    for item, signed in items:
        if results and isinstance(results[-1], TransportError) and results[-1].retryable:
            results.append(results[-1])
            continue
        send = transport.update_status if item.status else transport.send
        try:
            results.append(send(signed.source(), idempotency_key=item.key))
        except TransportError as exc:
            results.append(exc)
    return results


def send_statuses(sessions: sessionmaker[Session], settings: Settings, store: ObjectStore,
                  exchange_id: int) -> list[str]:
    """Send the pending statuses of one exchange in order (01 before 03 …), stopping at the first
    that is not sent yet so a later code never overtakes an earlier one."""
    return send_statuses_many(sessions, settings, store, [exchange_id])[exchange_id]


def send_statuses_many(sessions: sessionmaker[Session], settings: Settings, store: ObjectStore,
                       exchange_ids: Iterable[int]) -> dict[int, list[str]]:
    """:func:`send_statuses` of several exchanges, in rounds: each round sends the first pending
    status of every exchange still going (one ``attempt_many``), and an exchange goes on to its next
    status only once the previous one is sent. Returns exchange id → the states, in order."""
    results: dict[int, list[str]] = {exchange_id: [] for exchange_id in exchange_ids}
    going, tried = set(results), set()
    while going:
        with sessions() as session:
            heads: dict[int, int] = {}
            for status_id, exchange_id in session.execute(
                    select(AxisStatusMessage.id, AxisStatusMessage.exchange_id).where(
                        AxisStatusMessage.exchange_id.in_(list(going)), AxisStatusMessage.direction == "sent",
                        AxisStatusMessage.state.in_(SENDING)).order_by(AxisStatusMessage.id)):
                heads.setdefault(exchange_id, status_id)
        heads = {exchange_id: status_id for exchange_id, status_id in heads.items() if status_id not in tried}
        if not heads:
            break
        tried.update(heads.values())
        states = attempt_many(sessions, settings, store, AxisStatusMessage, list(heads.values()))
        going = set()
        for exchange_id, status_id in heads.items():
            results[exchange_id].append(states[status_id])
            if states[status_id] == "sent":
                going.add(exchange_id)
    return results


def due_rows(sessions: sessionmaker[Session], limit: int = 200) -> tuple[list[int], list[int]]:
    """(outgoing exchange ids, exchange ids with status messages) whose next attempt is due, including
    pending rows whose outbox job was lost."""
    now = datetime.now(UTC)
    due = or_(AxisExchange.next_attempt_at.is_(None), AxisExchange.next_attempt_at <= now)
    status_due = or_(AxisStatusMessage.next_attempt_at.is_(None), AxisStatusMessage.next_attempt_at <= now)
    with sessions() as session:
        documents = list(session.scalars(select(AxisExchange.id).where(
            AxisExchange.direction == "outgoing", AxisExchange.state.in_(SENDING), due)
            .order_by(AxisExchange.id).limit(limit)))
        statuses = list(session.scalars(select(AxisStatusMessage.exchange_id).where(
            AxisStatusMessage.direction == "sent", AxisStatusMessage.state.in_(SENDING), status_due)
            .distinct().limit(limit)))
    return documents, statuses

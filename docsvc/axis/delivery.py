"""Sending over the axis with retries: the state machine shared by outgoing documents
(``AxisExchange``) and the status messages we send (``AxisStatusMessage``).

Each attempt reads the row, builds and signs the package with no transaction open (SQLite's
write lock must not wait on the network), sends it with the row's idempotency key, and records
the outcome in a new transaction. ``unavailable`` schedules the next attempt with exponential
backoff (capped, ±25 % jitter); any other axis error marks the row ``failed`` with the code
(``duplicate_document`` included: such a package is never sent again). A crash anywhere repeats
the attempt with the same key and the same bytes, which the axis answers with the original
receipt, so nothing is delivered twice."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from archive import ArchiveError, ObjectStore
from docsvc.audit import service as audit
from docsvc.axis import packages
from docsvc.axis.models import AxisExchange, AxisStatusMessage
from docsvc.axis.transport import seal_key, transport_for
from docsvc.documents.models import Document
from docsvc.errors import DocsvcError
from docsvc.organisations.models import Organisation
from docsvc.principal import SERVICE_ACTOR
from docsvc.settings import Settings
from inter_axis.errors import EdxmlError
from inter_axis.transport import TransportError

log = logging.getLogger(__name__)
SENDING = ("pending", "retrying")
#: A built package: a context manager yielding (path, sha256) of the bytes to send.
Built = Callable[[], AbstractContextManager[tuple[Path, str]]]


def backoff(settings: Settings, attempts: int, rand: Callable[[], float] = random.random) -> timedelta:
    """Delay before attempt ``attempts + 1``: base·2^(attempts-1), capped, jittered by ±25 %."""
    axis = settings.axis
    delay = min(axis.retry_cap_seconds, axis.retry_base_seconds * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay * (0.75 + 0.5 * rand()))


@dataclass(frozen=True)
class _Attempt:
    organ_id: str
    key: str
    expected_sha256: str | None
    build: Built
    status: bool


def _due(row, now: datetime) -> bool:
    return row.state in SENDING and (row.next_attempt_at is None or row.next_attempt_at <= now)


def _prepare_document(session: Session, settings: Settings, store: ObjectStore, row: AxisExchange) -> _Attempt:
    doc = session.get(Document, row.document_id)
    org = session.get(Organisation, row.organisation_id)
    seal = seal_key(session, settings, org)
    files = packages.sendable_files(session, doc)
    recipient = (row.counterpart, next((name for oid, name in packages.axis_recipients(doc.recipients)
                                        if oid == row.counterpart), ""))
    package_args = (doc, org, recipient, row.created_at)
    session.expunge_all()  # plain values from here on: the build runs after the transaction ends

    def build():
        return _built_document(store, package_args, files, seal, settings.axis.max_package_bytes)

    return _Attempt(org.organ_id, row.idempotency_key, row.package_sha256, build, status=False)


@contextmanager
def _built_document(store: ObjectStore, package_args: tuple, files, seal, max_bytes: int) -> Iterator[tuple[Path, str]]:
    with packages.materialised(store, files) as local:
        package = packages.document_package(*package_args, local)
        with packages.signed_file(packages.write_document(package), seal, max_bytes) as result:
            yield result


def _prepare_status(session: Session, settings: Settings, row: AxisStatusMessage) -> _Attempt:
    exchange = session.get(AxisExchange, row.exchange_id)
    org = session.get(Organisation, exchange.organisation_id)
    seal = seal_key(session, settings, org)
    # ResponseFor/OrganId is the original sender of the document (§1.9): the counterpart for a
    # status about a document we received, ourselves for a recall (13) of one we sent. The status
    # goes To the counterpart in both cases, and the hub routes it by that To.
    original_sender = org.organ_id if exchange.direction == "outgoing" else exchange.counterpart
    message = packages.status_message(org, original_sender, exchange.edxml_document_id, row.code,
                                      row.description, row.created_at, row.staff)
    recipient = exchange.counterpart
    max_bytes = settings.axis.max_package_bytes

    def build():
        return packages.signed_file(packages.write_status_to(message, recipient), seal, max_bytes)

    return _Attempt(org.organ_id, row.idempotency_key, None, build, status=True)


def _fail(row, code: str, message: str) -> None:
    row.state, row.error_code, row.error_message, row.next_attempt_at = "failed", code, message[:2000], None


def _record_outcome(session: Session, settings: Settings, row, outcome, sha256: str | None, kind: str,
                    object_id: int) -> str:
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
    audit.record(session, SERVICE_ACTOR, f"axis.{kind}_{row.state}", object_type="axis_" + kind, object_id=object_id,
                 attempts=row.attempts, error_code=row.error_code, message_id=row.message_id)
    return row.state


def attempt(sessions: sessionmaker[Session], settings: Settings, store: ObjectStore, model, row_id: int,
            *, force: bool = False) -> str:
    """One delivery attempt of an ``AxisExchange`` (outgoing document) or ``AxisStatusMessage`` (sent);
    returns the row's state afterwards. Rows not due (or already sent/failed) are left alone."""
    with sessions() as session:
        row = session.get(model, row_id)
        if row is None:
            return "missing"
        if not (_due(row, datetime.now(UTC)) or (force and row.state in SENDING)):
            return row.state
        if model is AxisExchange:
            prepared = _prepare_document(session, settings, store, row)
        else:
            prepared = _prepare_status(session, settings, row)
        session.commit()  # a seal created on first use is kept
    outcome, sha256 = _send(settings, prepared)
    with sessions() as session:
        row = session.get(model, row_id)
        if row.state not in SENDING:  # a concurrent attempt finished first
            return row.state
        kind = "status" if prepared.status else "document"
        state = _record_outcome(session, settings, row, outcome, sha256, kind, row_id)
        session.commit()
        return state


def _send(settings: Settings, prepared: _Attempt):
    sha256 = None
    try:
        transport = transport_for(settings, prepared.organ_id)
        with prepared.build() as (path, sha256):
            if prepared.expected_sha256 and sha256 != prepared.expected_sha256:
                return TransportError("package_changed", "the rebuilt package differs from the first one "
                                      "(the document or the seal changed); it is not sent under the same key"), sha256
            send = transport.update_status if prepared.status else transport.send
            return send(path, idempotency_key=prepared.key), sha256
    except (TransportError, EdxmlError, DocsvcError, ArchiveError) as exc:
        log.warning("axis send of %s failed: %s", prepared.key, exc)
        return exc, sha256


def send_statuses(sessions: sessionmaker[Session], settings: Settings, store: ObjectStore,
                  exchange_id: int) -> list[str]:
    """Send the pending statuses of one exchange in order (01 before 03 …), stopping at the first
    that is not sent yet so a later code never overtakes an earlier one."""
    with sessions() as session:
        ids = list(session.scalars(select(AxisStatusMessage.id).where(
            AxisStatusMessage.exchange_id == exchange_id, AxisStatusMessage.direction == "sent",
            AxisStatusMessage.state.in_(SENDING)).order_by(AxisStatusMessage.id)))
    states = []
    for status_id in ids:
        states.append(attempt(sessions, settings, store, AxisStatusMessage, status_id))
        if states[-1] != "sent":
            break
    return states


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

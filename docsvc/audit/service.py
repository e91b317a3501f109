"""Appending to and verifying the hash-chained audit log.

Each event's hash covers its own fields and the previous event's hash. Appends are serialised
(a transaction-scoped advisory lock on PostgreSQL; SQLite transactions already hold the write
lock from BEGIN), so the chain is linear even with many API processes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from docsvc.audit.models import AuditEvent
from docsvc.principal import Actor

GENESIS = "0" * 64
_LOCK_KEY = 0x646F6373  # "docs": the advisory lock that serialises chain appends on PostgreSQL
#: ``session.info`` key of the chain's tail as the current transaction left it (see ``_tail``).
_TAIL = "docsvc.audit_tail"


def _timestamp(value: datetime) -> str:
    # SQLite hands back naive datetimes, PostgreSQL aware ones: hash the UTC wall-clock form.
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds")


def event_hash(event: AuditEvent) -> str:
    payload = {
        "seq": event.seq,
        "occurred_at": _timestamp(event.occurred_at),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "organisation_id": event.organisation_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    object_type: str | None = None,
    object_id: Any = None,
    organisation_id: int | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append an event in the caller's transaction: it commits or rolls back with the change."""
    last_seq, last_hash = _tail(session)
    event = AuditEvent(
        seq=last_seq + 1,
        occurred_at=datetime.now(UTC),
        actor_type=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name,
        organisation_id=organisation_id if organisation_id is not None else actor.organisation_id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail=detail,
        prev_hash=last_hash,
    )
    event.hash = event_hash(event)
    # Written now, not at the caller's next flush: an expunge_all() before the commit (delivery does
    # one) must not drop an event whose seq the next append already follows.
    session.add(event)
    session.flush()
    session.info[_TAIL] = (session.get_transaction(), session.get_nested_transaction(), event.seq, event.hash)
    return event


def _tail(session: Session) -> tuple[int, str]:
    """(seq, hash) of the chain's last event: read under the chain's lock at the first append of a
    transaction, then carried from one append to the next in memory. One registration appends ~6
    events in one transaction, and the SELECT of the tail was the costliest part of each append.

    The cache is valid while the same transaction (and savepoint) is open: the lock taken at the
    first append (SQLite's write lock from BEGIN, PostgreSQL's transaction-scoped advisory lock) keeps
    any other writer off the chain until it ends. A commit, a rollback, or entering or leaving a
    savepoint (whose rollback would take our appends with it) gives other transaction objects, so
    the tail is read again."""
    cached = session.info.get(_TAIL)
    if cached is not None and session.in_transaction() and cached[0] is session.get_transaction() \
            and cached[1] is session.get_nested_transaction():
        return cached[2], cached[3]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    last = session.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    return (last.seq, last.hash) if last else (0, GENESIS)


@dataclass(frozen=True)
class ChainReport:
    """Outcome of ``verify_chain``: ``ok`` or the first event that breaks the chain."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    first_bad_id: int | None = None
    reason: str | None = None


def verify_chain(session: Session, batch: int = 5000) -> ChainReport:
    """Walk the whole log in order and report the first edited, deleted or reordered event."""
    expected_seq, expected_prev, checked = 1, GENESIS, 0
    query = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=batch)
    for event in session.scalars(query):
        problem = None
        if event.seq != expected_seq:
            problem = f"expected event #{expected_seq} here but found #{event.seq} (deleted or reordered)"
        elif event.prev_hash != expected_prev:
            problem = "prev_hash does not match the previous event (deleted or reordered)"
        elif event_hash(event) != event.hash:
            problem = "content does not match its hash (edited)"
        if problem:
            return ChainReport(False, checked, event.seq, event.id, problem)
        expected_seq, expected_prev, checked = expected_seq + 1, event.hash, checked + 1
    return ChainReport(True, checked)

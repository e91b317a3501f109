"""Appending to and verifying the hash-chained audit log.

Each event's hash covers its own fields and the previous event's hash. Appends are serialised
(a transaction-scoped advisory lock on PostgreSQL; SQLite transactions already hold the write
lock from BEGIN), so the chain is linear even with many API processes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import insert, select, text
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
    return _hash(event.seq, event.occurred_at, event.actor_type, event.actor_id, event.actor_name,
                 event.organisation_id, event.action, event.object_type, event.object_id, event.detail,
                 event.prev_hash)


def _hash(seq: int, occurred_at: datetime, actor_type: str, actor_id: int | None, actor_name: str | None,
          organisation_id: int | None, action: str, object_type: str | None, object_id: str | None, detail: dict,
          prev_hash: str) -> str:
    payload = {
        "seq": seq,
        "occurred_at": _timestamp(occurred_at),
        "actor_type": actor_type,
        "actor_id": actor_id,
        "actor_name": actor_name,
        "organisation_id": organisation_id,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "detail": detail,
        "prev_hash": prev_hash,
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


class Entry(NamedTuple):
    """An event to append with ``record_many``: ``record``'s arguments, kept for later."""

    actor: Actor
    action: str
    object_type: str | None
    object_id: Any
    organisation_id: int | None
    detail: dict[str, Any]


def entry(actor: Actor, action: str, *, object_type: str | None = None, object_id: Any = None,
          organisation_id: int | None = None, **detail: Any) -> Entry:
    """The event ``record`` would append with these arguments, to append later with ``record_many``."""
    return Entry(actor, action, object_type, object_id, organisation_id, detail)


def record_many(session: Session, entries: Iterable[Entry]) -> int:
    """Append ``entries`` in order in the caller's transaction, as ``record`` would one after the
    other (the same chain, seqs and hashes), with one multi-row statement instead of a flush each;
    returns how many. Like ``record``'s, the rows are written now."""
    last_seq, last_hash = _tail(session)
    rows = []
    for actor, action, object_type, object_id, organisation_id, detail in entries:
        last_seq += 1
        row = {"seq": last_seq, "occurred_at": datetime.now(UTC), "actor_type": actor.kind, "actor_id": actor.id,
               "actor_name": actor.name,
               "organisation_id": organisation_id if organisation_id is not None else actor.organisation_id,
               "action": action, "object_type": object_type,
               "object_id": None if object_id is None else str(object_id), "detail": detail, "prev_hash": last_hash}
        last_hash = row["hash"] = _hash(**row)
        rows.append(row)
    if not rows:
        return 0
    # Executed one row after another (executemany, not one multi-row INSERT): ids are then given in
    # seq order on both databases, which verify_chain relies on (it walks the log by id).
    session.execute(insert(AuditEvent.__table__), rows)
    session.info[_TAIL] = (session.get_transaction(), session.get_nested_transaction(), last_seq, last_hash)
    return len(rows)


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

"""Transactional outbox: a job is written in the same transaction as the change that needs it
and sent to the broker only after that transaction commits. If sending fails, or the process
dies in between, ``relay_pending`` sends it later. Tasks are idempotent, so a message sent
twice does no harm; the Celery task id is derived from the outbox id."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from docsvc.jobs.models import OutboxMessage

log = logging.getLogger(__name__)
_PENDING = "docsvc.outbox_pending"

Sender = Callable[[OutboxMessage], None]


def enqueue(session: Session, task: str, *args: object) -> OutboxMessage:
    """Queue ``task(*args)`` to run once the current transaction commits."""
    message = OutboxMessage(task=task, args=list(args))
    session.add(message)
    session.flush()
    session.info.setdefault(_PENDING, []).append(message.id)
    return message


def install_after_commit(factory: sessionmaker[Session], sender: Sender) -> None:
    """Send the messages of each committed session right away (the fast path)."""

    @event.listens_for(factory, "after_commit")
    def _after_commit(session: Session) -> None:
        ids = session.info.pop(_PENDING, [])
        if ids:
            _send(factory, ids, sender)

    @event.listens_for(factory, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(_PENDING, None)


def _send(factory: sessionmaker[Session], ids: Iterable[int], sender: Sender) -> int:
    # Talk to the broker outside any transaction: on SQLite a transaction holds the
    # database's write lock, and a slow or unreachable broker must not stall every request.
    with factory() as session:
        messages = list(session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(list(ids)))))
        session.expunge_all()  # keep their loaded values; the rollback would expire them
        session.rollback()
    sent = []
    for message in messages:
        try:
            sender(message)
        except Exception as exc:  # broker down: leave it for relay_pending, never lose it
            log.warning("outbox message %s (%s) not sent yet: %s", message.id, message.task, exc)
            continue
        sent.append(message.id)
    if sent:
        with factory() as session:
            session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(sent))
                            .values(dispatched_at=datetime.now(UTC), attempts=OutboxMessage.attempts + 1))
            session.commit()
    return len(sent)


def relay_pending(factory: sessionmaker[Session], sender: Sender, min_age_seconds: float = 5.0,
                  batch: int = 500) -> int:
    """Send messages committed but not yet sent (older than ``min_age_seconds`` so the fast
    path gets its chance first). Returns how many were sent."""
    cutoff = datetime.now(UTC) - timedelta(seconds=min_age_seconds)
    with factory() as session:
        ids = list(session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.dispatched_at.is_(None), OutboxMessage.created_at <= cutoff)
            .order_by(OutboxMessage.id).limit(batch)))
        session.rollback()
    return _send(factory, ids, sender) if ids else 0

"""Transactional outbox: a job is written in the same transaction as the change that needs it
and sent to the broker only after that transaction commits.

A message stays pending until the worker reports the task done (``mark_completed``). The relay
(``relay_pending``) sends again what was never sent (the broker was down, the process died
between commit and send) and what was sent but never finished (a broker lost it, a worker was
killed mid-task). Tasks are idempotent, so a message delivered twice does no harm; the Celery
task id is derived from the outbox id."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, event, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from docsvc.jobs.models import OutboxMessage

log = logging.getLogger(__name__)
_PENDING = "docsvc.outbox_pending"
#: ``session.info`` key: (task, arguments) → (transaction, savepoint, message) queued in this transaction.
_QUEUED = "docsvc.outbox_queued"
TASK_ID_PREFIX = "outbox-"

Sender = Callable[[OutboxMessage], None]


def enqueue(session: Session, task: str, *args: object) -> OutboxMessage:
    """Queue ``task(*args)`` to run once the current transaction commits.

    The same task with the same arguments queued again in the same transaction (and savepoint) is
    queued once, and that message is returned: tasks are idempotent and run after the commit, so a
    second run would find nothing left to do (two statuses queued on one exchange need one
    ``send_statuses``, which sends every pending one in order)."""
    key = _key(task, args)
    earlier = _queued(session, key)
    if earlier is not None:
        session.flush()  # as a new message's would: callers count on what they added being written
        return earlier
    message = OutboxMessage(task=task, args=list(args))
    session.add(message)
    session.flush()
    # Keep a detached copy: after the commit the fast path sends it without reading it back.
    copy = OutboxMessage(id=message.id, task=task, args=list(args))
    session.info.setdefault(_PENDING, []).append(copy)
    _remember(session, key, message)
    return message


def enqueue_many(session: Session, jobs: Iterable[tuple[str, Sequence[object]]]) -> int:
    """``enqueue`` for each ``(task, args)``, with one multi-row INSERT; returns how many messages
    were written (a job already queued in this transaction, or twice in ``jobs``, is queued once)."""
    rows, keys = [], set()
    for task, args in jobs:
        key = _key(task, args)
        if key in keys or _queued(session, key) is not None:
            continue
        keys.add(key)
        rows.append({"task": task, "args": list(args)})
    if not rows:
        return 0
    written = session.execute(insert(OutboxMessage.__table__).returning(
        OutboxMessage.id, OutboxMessage.task, OutboxMessage.args), rows).all()
    pending = session.info.setdefault(_PENDING, [])
    for id_, task, args in sorted(written):
        copy = OutboxMessage(id=id_, task=task, args=args)
        pending.append(copy)
        _remember(session, _key(task, args), copy)
    return len(written)


def _key(task: str, args: Sequence[object]) -> tuple[str, str]:
    return task, json.dumps(list(args), sort_keys=True, default=repr)


def _queued(session: Session, key: tuple[str, str]) -> OutboxMessage | None:
    """The message queued for ``key`` in this very transaction and savepoint, if any: one queued in a
    savepoint since rolled back (or in another transaction) does not count."""
    queued = session.info.get(_QUEUED)
    found = queued.get(key) if queued else None
    if found is None or found[0] is not session.get_transaction() \
            or found[1] is not session.get_nested_transaction():
        return None
    return found[2]


def _remember(session: Session, key: tuple[str, str], message: OutboxMessage) -> None:
    session.info.setdefault(_QUEUED, {})[key] = (session.get_transaction(), session.get_nested_transaction(),
                                                 message)


def task_id(message: OutboxMessage) -> str:
    return f"{TASK_ID_PREFIX}{message.id}"


def install_after_commit(factory: sessionmaker[Session], sender: Sender) -> None:
    """Send the messages of each committed session right away (the fast path)."""

    @event.listens_for(factory, "after_commit")
    def _after_commit(session: Session) -> None:
        session.info.pop(_QUEUED, None)
        messages = session.info.pop(_PENDING, [])
        if messages:
            _send(factory, messages, sender)

    @event.listens_for(factory, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(_PENDING, None)
        session.info.pop(_QUEUED, None)


def _send(factory: sessionmaker[Session], messages: Iterable[OutboxMessage], sender: Sender) -> int:
    # Talk to the broker outside any transaction: on SQLite a transaction holds the
    # database's write lock, and a slow or unreachable broker must not stall every request.
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


def relay_pending(factory: sessionmaker[Session], sender: Sender, *, min_age_seconds: float = 5.0,
                  redeliver_after_seconds: float = 35 * 60, max_attempts: int = 5, batch: int = 500) -> int:
    """Send what is due: never sent and older than ``min_age_seconds`` (the fast path gets
    its chance first), or sent but unfinished for ``redeliver_after_seconds``. Returns how
    many were sent."""
    now = datetime.now(UTC)
    never_sent = and_(OutboxMessage.dispatched_at.is_(None),
                      OutboxMessage.created_at <= now - timedelta(seconds=min_age_seconds))
    stalled = OutboxMessage.dispatched_at <= now - timedelta(seconds=redeliver_after_seconds)
    with factory() as session:
        due = list(session.scalars(select(OutboxMessage).where(
            OutboxMessage.completed_at.is_(None), OutboxMessage.attempts < max_attempts,
            or_(never_sent, stalled)).order_by(OutboxMessage.id).limit(batch)))
        session.expunge_all()  # keep their loaded values; the rollback would expire them
        session.rollback()
    return _send(factory, due, sender) if due else 0


def mark_completed(factory: sessionmaker[Session], celery_task_id: str | None) -> None:
    """Record that the task behind an outbox message succeeded (called in the worker)."""
    if not celery_task_id or not celery_task_id.startswith(TASK_ID_PREFIX):
        return
    message_id = int(celery_task_id.removeprefix(TASK_ID_PREFIX))
    with factory() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                        .values(completed_at=datetime.now(UTC)))
        session.commit()

"""Celery tasks of the axis exchange. All take ids, are idempotent and safe to re-run: a sending row
that is already sent is left alone; an inbox message already recorded is only acknowledged.

Sending goes in batches (``delivery.attempt_many``: one read, one request per organisation, one
recording transaction). The outbox queues one job per exchange (``axis_send_document`` /
``axis_send_statuses``); a job takes over the other jobs of its task still waiting in the outbox, up
to ``delivery.BATCH``, and delivers their rows together with its own. Taking over marks their outbox
messages completed in one transaction, so exactly one run claims each message (a concurrent run, or
a run of a taken-over job, finds it claimed and does nothing) and no row is built and sent by two
runs at once. Should the run that took them over die, the rows are still pending, and the beat's
``axis_retry_due`` (which sends every due row, pending ones included) delivers them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from celery import shared_task
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from docsvc.axis import delivery, intake
from docsvc.axis.models import AxisExchange
from docsvc.axis.service import SEND_DOCUMENT
from docsvc.axis.transport import enabled
from docsvc.jobs.models import OutboxMessage
from docsvc.jobs.outbox import TASK_ID_PREFIX
from docsvc.jobs.tasks import runtime
from inter_axis.transport import TransportError

log = logging.getLogger(__name__)


def _take_over(rt, task: str, own_task_id: str | None, first: int) -> list[int] | None:
    """The ids this run delivers: ``first``, then those of the oldest other jobs of ``task`` waiting
    in the outbox (``delivery.BATCH`` in all), whose messages it claims. None when this run's own
    message was claimed already: by the run that delivers ``first`` with its batch, or by an earlier
    run of this very job (a redelivery, which has nothing left to do); None too when claiming failed
    (the sweep sends what no run took)."""
    own = None
    if own_task_id and own_task_id.startswith(TASK_ID_PREFIX):
        own = int(own_task_id.removeprefix(TASK_ID_PREFIX))
    try:
        with rt.sessions() as session:
            candidates = list(session.scalars(select(OutboxMessage.id).where(
                OutboxMessage.task == task, OutboxMessage.completed_at.is_(None))
                .order_by(OutboxMessage.id).limit(delivery.BATCH)))
            if own is not None and own not in candidates:
                candidates.append(own)
            claimed = dict(session.execute(update(OutboxMessage).where(
                OutboxMessage.id.in_(candidates), OutboxMessage.completed_at.is_(None))
                .values(completed_at=datetime.now(UTC))
                .returning(OutboxMessage.id, OutboxMessage.args)).all()) if candidates else {}
            session.commit()
    except DBAPIError as exc:
        # e.g. a deadlock with a concurrent claim, which may well have claimed our own message and be
        # delivering our row: leave it to that run, or to the sweep, which sends every pending row.
        log.warning("taking over queued %s jobs failed; %s is left to the run that claimed it or to the "
                    "sweep: %s", task, first, exc)
        return None
    if own is not None and own not in claimed:
        return None
    others = [args[0] for message_id, args in sorted(claimed.items())
              if message_id != own and isinstance(args, list) and len(args) == 1 and isinstance(args[0], int)]
    return list(dict.fromkeys([first, *others]))


@shared_task(name="docsvc.axis_send_document", acks_late=True, bind=True)
def axis_send_document(self, exchange_id: int) -> str:
    """Deliver one outgoing document to one recipient (one attempt; retries are scheduled), with the
    documents of the other queued ``axis_send_document`` jobs it takes over; returns its state."""
    rt = runtime()
    ids = _take_over(rt, SEND_DOCUMENT, self.request.id, exchange_id)
    if ids is None:
        with rt.sessions() as session:
            row = session.get(AxisExchange, exchange_id)
            return row.state if row is not None else "missing"
    states = {}
    for start in range(0, len(ids), delivery.BATCH):
        states.update(delivery.attempt_many(rt.sessions, rt.settings, rt.store, AxisExchange,
                                            ids[start:start + delivery.BATCH]))
    return states[exchange_id]


@shared_task(name="docsvc.axis_send_statuses", acks_late=True, bind=True)
def axis_send_statuses(self, exchange_id: int) -> list[str]:
    """Send the pending status messages of one exchange, in order (with those of the exchanges of the
    other queued ``axis_send_statuses`` jobs it takes over)."""
    rt = runtime()
    ids = _take_over(rt, intake.SEND_STATUSES, self.request.id, exchange_id)
    if ids is None:
        return []
    return delivery.send_statuses_many(rt.sessions, rt.settings, rt.store, ids)[exchange_id]


@shared_task(name="docsvc.axis_retry_due", acks_late=True)
def axis_retry_due() -> dict:
    """Beat: attempt every send whose backoff has expired (and pending ones whose job was lost), in
    batches of ``delivery.BATCH``; returns how many documents ended in each state."""
    rt = runtime()
    if not enabled(rt.settings):
        return {}
    documents, status_exchanges = delivery.due_rows(rt.sessions)
    states: dict[str, int] = {}
    for start in range(0, len(documents), delivery.BATCH):
        batch = documents[start:start + delivery.BATCH]
        for state in delivery.attempt_many(rt.sessions, rt.settings, rt.store, AxisExchange, batch).values():
            states[state] = states.get(state, 0) + 1
    for start in range(0, len(status_exchanges), delivery.BATCH):
        delivery.send_statuses_many(rt.sessions, rt.settings, rt.store,
                                    status_exchanges[start:start + delivery.BATCH])
    return states


@shared_task(name="docsvc.axis_poll", acks_late=True)
def axis_poll() -> dict:
    """Beat: take what waits in the axis inbox of each organisation with credentials."""
    rt = runtime()
    if not enabled(rt.settings):
        return {}
    try:
        return intake.poll(rt)
    except TransportError as exc:  # the axis is down: the next round tries again
        log.warning("axis poll failed: %s", exc)
        return {"error": exc.code}

"""Celery tasks of the axis exchange. All take ids, are idempotent and safe to re-run: a sending row
that is already sent is left alone; an inbox message already recorded is only acknowledged."""

from __future__ import annotations

import logging

from celery import shared_task

from docsvc.axis import delivery, intake
from docsvc.axis.models import AxisExchange
from docsvc.axis.transport import enabled
from docsvc.jobs.tasks import runtime
from inter_axis.transport import TransportError

log = logging.getLogger(__name__)


@shared_task(name="docsvc.axis_send_document", acks_late=True)
def axis_send_document(exchange_id: int) -> str:
    """Deliver one outgoing document to one recipient (one attempt; retries are scheduled)."""
    rt = runtime()
    return delivery.attempt(rt.sessions, rt.settings, rt.store, AxisExchange, exchange_id)


@shared_task(name="docsvc.axis_send_statuses", acks_late=True)
def axis_send_statuses(exchange_id: int) -> list[str]:
    """Send the pending status messages of one exchange, in order."""
    rt = runtime()
    return delivery.send_statuses(rt.sessions, rt.settings, rt.store, exchange_id)


@shared_task(name="docsvc.axis_retry_due", acks_late=True)
def axis_retry_due() -> dict:
    """Beat: attempt every send whose backoff has expired (and pending ones whose job was lost)."""
    rt = runtime()
    if not enabled(rt.settings):
        return {}
    documents, status_exchanges = delivery.due_rows(rt.sessions)
    states: dict[str, int] = {}
    for exchange_id in documents:
        state = delivery.attempt(rt.sessions, rt.settings, rt.store, AxisExchange, exchange_id)
        states[state] = states.get(state, 0) + 1
    for exchange_id in status_exchanges:
        delivery.send_statuses(rt.sessions, rt.settings, rt.store, exchange_id)
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

"""The axis as clerks use it: issuing queues delivery to external recipients; processing statuses
(04, 05, 06) on a received document; recall (13) of a sent one and its answer (15 agree, 16 refuse);
the exchange history. Each call is one transaction: rows, audit events and outbox jobs together."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from docsvc import errors
from docsvc.audit import service as audit
from docsvc.axis.intake import queue_status
from docsvc.axis.models import AxisExchange, AxisStatusMessage
from docsvc.axis.packages import axis_recipients, edxml_document_id
from docsvc.documents import service as documents
from docsvc.documents.models import Document
from docsvc.documents.types import Status
from docsvc.jobs import outbox
from docsvc.organisations.models import Organisation
from docsvc.principal import Actor, Role
from docsvc.settings import Settings
from inter_axis.transport import new_idempotency_key

SEND_DOCUMENT = "docsvc.axis_send_document"
PROCESSING_CODES = ("04", "05", "06")
RECALL_ANSWERS = {"15": "Đồng ý thu hồi", "16": "Từ chối thu hồi"}


def queue_outgoing(session: Session, settings: Settings, actor: Actor, doc: Document) -> list[AxisExchange]:
    """Called inside the issuing transaction: one exchange per external recipient (an OrganId in the
    document's recipients that is not an organisation of this service), its idempotency key stored
    now, its delivery job in the outbox. Nothing happens when the axis is not configured; an
    organisation without an axis credential gets its exchanges ``failed`` with ``axis_not_configured``
    so the clerk sees why nothing went out."""
    if not settings.axis.endpoint:
        return []
    wanted = [organ_id for organ_id, _name in axis_recipients(doc.recipients)]
    if not wanted:
        return []
    ours = set(session.scalars(select(Organisation.organ_id).where(Organisation.organ_id.in_(wanted))))
    org = session.get(Organisation, doc.organisation_id)
    credential = settings.axis.secret_for(org.organ_id) is not None
    exchanges = []
    for organ_id in wanted:
        if organ_id in ours:
            continue  # internal recipients read the document through sharing
        exchange = AxisExchange(organisation_id=org.id, document_id=doc.id, direction="outgoing",
                                counterpart=organ_id, edxml_document_id=edxml_document_id(doc, org),
                                state="pending", idempotency_key=new_idempotency_key())
        if not credential:
            exchange.state, exchange.error_code = "failed", errors.AxisNotConfiguredError.code
            exchange.error_message = f"organisation {org.organ_id} has no axis credential"
        session.add(exchange)
        session.flush()
        if credential:
            outbox.enqueue(session, SEND_DOCUMENT, exchange.id)
        audit.record(session, actor, "axis.document_queued", object_type="document", object_id=doc.id,
                     recipient=organ_id, exchange_id=exchange.id, state=exchange.state)
        exchanges.append(exchange)
    return exchanges


def _exchanges(session: Session, doc: Document, direction: str) -> list[AxisExchange]:
    return list(session.scalars(select(AxisExchange).where(AxisExchange.document_id == doc.id,
                                                           AxisExchange.direction == direction)
                                .order_by(AxisExchange.id)))


def send_processing_status(session: Session, actor: Actor, document_id: int, code: str,
                           description: str = "") -> list[AxisStatusMessage]:
    """04 assigned, 05 in progress, 06 done, sent to the sender of a document received over the axis."""
    doc = documents.get_owned(session, actor, document_id, Role.CLERK)
    if code not in PROCESSING_CODES:
        raise errors.AxisStatusNotAllowedError(f"only {', '.join(PROCESSING_CODES)} are sent this way", code=code)
    exchanges = _exchanges(session, doc, "incoming")
    if not exchanges:
        raise errors.NotExchangedError("this document was not received over the axis")
    sent = []
    for exchange in exchanges:
        if exchange.state != "registered":
            raise errors.AxisStatusNotAllowedError(f"the exchange is {exchange.state}", state=exchange.state)
        if exchange.last_status in PROCESSING_CODES and exchange.last_status > code:
            raise errors.AxisStatusNotAllowedError(f"status {exchange.last_status} was already reported",
                                                   last_status=exchange.last_status)
        exchange.last_status = code
        sent.append(queue_status(session, exchange, code, description, actor.name))
        audit.record(session, actor, "axis.status_queued", object_type="document", object_id=doc.id, code=code,
                     counterpart=exchange.counterpart)
    session.commit()
    return sent


def recall(session: Session, actor: Actor, document_id: int, reason: str) -> list[AxisStatusMessage]:
    """Status 13 to every recipient the document was delivered to."""
    doc = documents.get_owned(session, actor, document_id, Role.CLERK)
    delivered = [e for e in _exchanges(session, doc, "outgoing") if e.state == "sent"]
    if not delivered:
        raise errors.NotExchangedError("this document was not delivered to anyone over the axis")
    sent = [queue_status(session, exchange, "13", reason or "Thu hồi văn bản điện tử", actor.name)
            for exchange in delivered]
    audit.record(session, actor, "axis.recall_queued", object_type="document", object_id=doc.id,
                 recipients=[e.counterpart for e in delivered], reason=reason)
    session.commit()
    return sent


def answer_recall(session: Session, actor: Actor, document_id: int, code: str,
                  description: str = "") -> AxisStatusMessage:
    """15 agrees (the received copy is revoked), 16 refuses; only while a recall is pending."""
    doc = documents.get_owned(session, actor, document_id, Role.CLERK)
    if code not in RECALL_ANSWERS:
        raise errors.AxisStatusNotAllowedError("a recall is answered with 15 or 16", code=code)
    pending = [e for e in _exchanges(session, doc, "incoming") if e.state == "recall_requested"]
    if not pending:
        raise errors.AxisStatusNotAllowedError("no recall of this document is pending")
    exchange = pending[0]
    exchange.state, exchange.last_status = ("revoked" if code == "15" else "registered"), code
    if code == "15":
        doc.status = Status.REVOKED
    message = queue_status(session, exchange, code, description or RECALL_ANSWERS[code], actor.name)
    audit.record(session, actor, "axis.recall_answered", object_type="document", object_id=doc.id, code=code,
                 counterpart=exchange.counterpart)
    session.commit()
    return message


def history(session: Session, actor: Actor, document_id: int) -> list[tuple[AxisExchange, list[AxisStatusMessage]]]:
    """Exchanges of a document the actor's organisation holds, each with its statuses in order."""
    doc = documents.get_readable(session, actor, document_id)
    if doc.organisation_id != actor.organisation_id:
        raise errors.NotFoundError("document not found")  # a share does not reveal the owner's exchanges
    exchanges = list(session.scalars(select(AxisExchange).where(AxisExchange.document_id == doc.id)
                                     .order_by(AxisExchange.id)))
    statuses = list(session.scalars(select(AxisStatusMessage).where(
        AxisStatusMessage.exchange_id.in_([e.id for e in exchanges])).order_by(AxisStatusMessage.id)))
    audit.record(session, actor, "axis.history_read", object_type="document", object_id=doc.id)
    session.commit()
    return [(e, [s for s in statuses if s.exchange_id == e.id]) for e in exchanges]



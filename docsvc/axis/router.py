"""Axis API: the exchange history of a document, processing statuses, recall and its answer, the inbox log."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from docsvc.audit import service as audit
from docsvc.axis import service
from docsvc.axis.models import AxisInboxEntry
from docsvc.axis.schemas import ExchangeRead, InboxEntryRead, RecallAnswer, RecallCreate, StatusCreate, StatusRead
from docsvc.deps import SessionDep, UserDep, require_roles
from docsvc.organisations.models import Organisation
from docsvc.principal import Role

router = APIRouter(tags=["axis"])
Clerk = require_roles(Role.CLERK)


@router.get("/documents/{document_id}/axis", response_model=list[ExchangeRead])
def exchange_history(document_id: int, session: SessionDep, actor: UserDep):
    """Every axis exchange of the document (per recipient or sender) with its statuses."""
    return [ExchangeRead.model_validate(exchange).model_copy(
        update={"statuses": [StatusRead.model_validate(s) for s in statuses]})
        for exchange, statuses in service.history(session, actor, document_id)]


@router.post("/documents/{document_id}/axis/status", response_model=list[StatusRead], status_code=202)
def send_status(document_id: int, body: StatusCreate, session: SessionDep, actor: UserDep):
    """Report processing (04 assigned, 05 in progress, 06 done) to the sender of a received document."""
    return service.send_processing_status(session, actor, document_id, body.code, body.description)


@router.post("/documents/{document_id}/axis/recall", response_model=list[StatusRead], status_code=202)
def recall(document_id: int, body: RecallCreate, session: SessionDep, actor: UserDep):
    """Recall (13) a document delivered over the axis, from every recipient."""
    return service.recall(session, actor, document_id, body.reason)


@router.post("/documents/{document_id}/axis/recall-answer", response_model=StatusRead, status_code=202)
def answer_recall(document_id: int, body: RecallAnswer, session: SessionDep, actor: UserDep):
    """Answer a pending recall: 15 agrees (the document is revoked here), 16 refuses."""
    return service.answer_recall(session, actor, document_id, body.code, body.description)


@router.get("/axis/inbox", response_model=list[InboxEntryRead], dependencies=[Clerk])
def inbox(session: SessionDep, actor: UserDep, outcome: str | None = None, limit: int = 100):
    """Packages taken from the axis for your organisation, newest first (rejected ones with their code)."""
    organ_id = session.scalar(select(Organisation.organ_id).where(Organisation.id == actor.organisation_id))
    query = select(AxisInboxEntry).where(AxisInboxEntry.organ_id == organ_id)
    if outcome:
        query = query.where(AxisInboxEntry.outcome == outcome)
    rows = list(session.scalars(query.order_by(AxisInboxEntry.id.desc()).limit(min(max(limit, 1), 1000))))
    audit.record(session, actor, "axis.inbox_read", object_type="organisation", object_id=actor.organisation_id,
                 count=len(rows))
    session.commit()
    return rows

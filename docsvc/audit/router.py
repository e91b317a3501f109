from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from docsvc.audit import service
from docsvc.audit.models import AuditEvent
from docsvc.deps import SessionDep, require_roles
from docsvc.organisations.service import subtree_ids
from docsvc.principal import Actor, Role

router = APIRouter(prefix="/audit", tags=["audit"])
AdminDep = Annotated[Actor, require_roles(Role.ADMIN)]


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: int | None
    actor_name: str | None
    organisation_id: int | None
    action: str
    object_type: str | None
    object_id: str | None
    detail: dict
    hash: str


@router.get("/events", response_model=list[AuditEventRead])
def list_events(session: SessionDep, actor: AdminDep, object_type: str | None = None, object_id: str | None = None,
                action: str | None = None, after_seq: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """Events of the administrator's organisation and those below it, oldest first."""
    query = select(AuditEvent).where(AuditEvent.seq > after_seq,
                                     AuditEvent.organisation_id.in_(subtree_ids(session, actor.organisation_id)))
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(session.scalars(query.order_by(AuditEvent.seq).limit(limit)))


@router.get("/verify")
def verify(session: SessionDep, actor: AdminDep) -> dict:
    """Check the whole chain (what ``docsvc audit verify`` does)."""
    report = service.verify_chain(session)
    return {"ok": report.ok, "checked": report.checked, "first_bad_seq": report.first_bad_seq,
            "reason": report.reason}

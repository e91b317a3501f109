from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter
from sqlalchemy import select, text

from docsvc import errors
from docsvc.audit import service as audit
from docsvc.deps import SessionDep, require_roles
from docsvc.jobs import outbox
from docsvc.jobs.models import JobRun
from docsvc.principal import Actor, Role

router = APIRouter(tags=["operations"])
AdminDep = Annotated[Actor, require_roles(Role.ADMIN)]


@router.get("/health")
def health(session: SessionDep) -> dict:
    session.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.post("/admin/reconcile", status_code=202)
def start_reconcile(session: SessionDep, actor: AdminDep) -> dict:
    """Queue a comparison of database rows and stored objects; poll ``/admin/jobs/{key}``."""
    key = f"reconcile:{uuid.uuid4().hex}"
    audit.record(session, actor, "store.reconcile_requested", object_type="job", object_id=key)
    outbox.enqueue(session, "docsvc.reconcile_objects", key)
    session.commit()
    return {"job": key}


@router.get("/admin/jobs/{key}")
def job_status(session: SessionDep, actor: AdminDep, key: str) -> dict:
    run = session.scalar(select(JobRun).where(JobRun.key == key))
    if run is None:
        raise errors.NotFoundError("no finished run with this key yet", key=key)
    return {"key": run.key, "task": run.task, "status": run.status, "result": run.result,
            "finished_at": run.finished_at}

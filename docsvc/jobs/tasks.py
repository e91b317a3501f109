"""Celery tasks. Each takes ids, is idempotent (a finished run is recorded under a key and a
re-delivery does nothing) and is safe to re-run after a worker is killed mid-way."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from celery import shared_task
from celery.signals import task_success
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from docsvc.audit import service as audit
from docsvc.documents.models import DocumentFile
from docsvc.jobs import outbox, reconcile
from docsvc.jobs.models import JobRun
from docsvc.principal import SERVICE_ACTOR
from docsvc.runtime import Runtime
from docsvc.settings import get_settings

log = logging.getLogger(__name__)
_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The worker process's runtime, built on first use (never at import)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(get_settings())
    return _runtime


def _finished(session, key: str) -> JobRun | None:
    return session.scalar(select(JobRun).where(JobRun.key == key, JobRun.status != "running"))


def _save_run(session, task: str, key: str, status: str, result: dict) -> None:
    run = session.scalar(select(JobRun).where(JobRun.key == key)) or JobRun(task=task, key=key)
    run.status, run.result, run.finished_at = status, result, datetime.now(UTC)
    session.add(run)
    try:
        session.flush()
    except IntegrityError:  # a concurrent delivery of the same job finished first
        session.rollback()


@shared_task(name="docsvc.verify_file", acks_late=True)
def verify_file(file_id: int) -> dict:
    """Read a just-uploaded file back from the store and check its SHA-256 (fixity)."""
    rt, key = runtime(), f"verify_file:{file_id}"
    with rt.sessions() as session:
        if (done := _finished(session, key)) is not None:
            return done.result
        row = session.get(DocumentFile, file_id)
        if row is None:
            return {"file_id": file_id, "status": "missing_row"}
        ok = rt.store.exists(row.object_key) and rt.store.verify(row.object_key)
        result = {"file_id": file_id, "ok": ok, "sha256": row.sha256}
        _save_run(session, "docsvc.verify_file", key, "ok" if ok else "failed", result)
        if not ok:
            audit.record(session, SERVICE_ACTOR, "file.integrity_failed", object_type="document",
                         object_id=row.document_id, file_id=row.id)
        session.commit()
        return result


@shared_task(name="docsvc.reconcile_objects", acks_late=True)
def reconcile_objects(run_key: str | None = None) -> dict:
    """Compare database rows with the object store and record the drift found."""
    rt = runtime()
    key = run_key or f"reconcile:{datetime.now(UTC):%Y-%m-%dT%H}"
    with rt.sessions() as session:
        if (done := _finished(session, key)) is not None:
            return done.result
        report = reconcile.find_drift(session, rt.store)
        _save_run(session, "docsvc.reconcile_objects", key, "ok" if report.clean else "drift", report.as_dict())
        audit.record(session, SERVICE_ACTOR, "store.reconciled", object_type="job", object_id=key,
                     missing=len(report.missing), orphans=len(report.orphans))
        session.commit()
        return report.as_dict()


@shared_task(name="docsvc.relay_outbox", acks_late=True)
def relay_outbox() -> int:
    return runtime().relay_outbox()


@task_success.connect
def _report_completion(sender=None, **_kwargs) -> None:
    """Close the outbox message this run came from, so the relay does not send it again."""
    outbox.mark_completed(runtime().sessions, sender.request.id if sender else None)

"""Everything a process needs, built once from ``Settings``: database, object store, job queue.

The API keeps one ``Runtime`` on ``app.state``; the Celery worker builds one per process; the
CLI builds one per command. Nothing here is created at import time."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from archive import ObjectStore, ObjectStoreSpec, make_object_store
from docsvc.db.session import make_engine, make_session_factory
from docsvc.jobs import outbox
from docsvc.jobs.celery_app import make_celery
from docsvc.jobs.models import OutboxMessage
from docsvc.settings import Settings
from docsvc.users import security


def object_store_spec(settings: Settings) -> ObjectStoreSpec:
    """Translate our settings into the archive library's plain spec."""
    store = settings.object_store
    if store.kind == "filesystem":
        return ObjectStoreSpec(kind="filesystem", path=settings.objects_path)
    return ObjectStoreSpec(
        kind="s3",
        endpoint=store.endpoint,
        access_key=store.access_key,
        secret_key=store.secret_key.get_secret_value() if store.secret_key else None,
        bucket=store.bucket,
        secure=store.secure,
        region=store.region,
    )


@dataclass
class Runtime:
    settings: Settings

    def __post_init__(self) -> None:
        auth = self.settings.auth
        security.configure_password_hashing(auth.argon2_time_cost, auth.argon2_memory_kib)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.resolved_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        factory = make_session_factory(self.engine)
        outbox.install_after_commit(factory, self.send_job)
        return factory

    @cached_property
    def celery(self) -> Celery:
        return make_celery(self.settings)

    def send_job(self, message: OutboxMessage) -> None:
        """Hand one outbox message to the broker; the task id makes re-sends recognisable."""
        self.celery.send_task(message.task, args=message.args, task_id=outbox.task_id(message))

    def relay_outbox(self, min_age_seconds: float = 5.0) -> int:
        jobs = self.settings.jobs
        return outbox.relay_pending(self.sessions, self.send_job, min_age_seconds=min_age_seconds,
                                    redeliver_after_seconds=jobs.redeliver_after_seconds,
                                    max_attempts=jobs.max_attempts)

    @cached_property
    def store(self) -> ObjectStore:
        return make_object_store(object_store_spec(self.settings))

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()

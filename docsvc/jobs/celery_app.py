"""The Celery application, configured from ``Settings``.

Tasks take ids (JSON only, never pickles), are idempotent, acknowledged late and re-delivered
if a worker dies, and carry time limits. The embedded default uses kombu's SQLAlchemy transport
on a SQLite file, so ``make run`` needs no broker server; production uses Redis."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from celery import Celery
from celery.schedules import crontab

from docsvc.settings import Settings


def _use_wal(path: Path) -> None:
    """Put the embedded broker's SQLite file in WAL mode (a setting the file keeps), so each
    publish costs one log append instead of a rollback journal's several syncs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def _axis_schedule(settings: Settings) -> dict:
    """Poll the axis inbox and send due retries every ``axis.poll_seconds`` (only when configured)."""
    if not settings.axis.endpoint:
        return {}
    every = float(settings.axis.poll_seconds)
    return {"axis-poll": {"task": "docsvc.axis_poll", "schedule": every},
            "axis-retry-due": {"task": "docsvc.axis_retry_due", "schedule": every}}


def make_celery(settings: Settings) -> Celery:
    broker = settings.resolved_broker_url
    if broker.startswith("sqla+sqlite:///"):
        _use_wal(Path(broker.removeprefix("sqla+sqlite:///")))
    app = Celery("docsvc", broker=broker, include=["docsvc.jobs.tasks", "docsvc.axis.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=30 * 60,
        task_soft_time_limit=25 * 60,
        broker_connection_retry_on_startup=True,
        # Publishing happens right after a commit inside a request: if the broker is down,
        # give up quickly and leave the message to the outbox relay instead of hanging.
        broker_connection_timeout=3,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        # kombu's SQLAlchemy transport hands its options to create_engine(), so only Redis
        # gets these; the embedded transport polls once a second.
        broker_transport_options={"visibility_timeout": 3600} if broker.startswith("redis") else {},
        worker_hijack_root_logger=False,
        beat_schedule={
            "relay-outbox": {"task": "docsvc.relay_outbox", "schedule": 30.0},
            "reconcile-objects": {"task": "docsvc.reconcile_objects", "schedule": crontab(hour=2, minute=0),
                                  "args": [None]},
            **_axis_schedule(settings),
        },
        timezone="Asia/Ho_Chi_Minh",
    )
    return app

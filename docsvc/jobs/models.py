from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from docsvc.db.base import Base, utcnow


class OutboxMessage(Base):
    """A job written in the same transaction as the change that calls for it, so a job is
    sent only for committed changes and is never lost if the process dies before sending."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(128))
    args: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(index=True)
    """Last time it was handed to the broker."""
    completed_at: Mapped[datetime | None] = mapped_column(index=True)
    """Set by the worker when the task succeeded. Until then the relay may send it again."""
    attempts: Mapped[int] = mapped_column(default=0)


class JobRun(Base):
    """Result of a job whose outcome users look at (e.g. reconcile reports)."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(128), unique=True)
    """Idempotency key: a re-delivered job finds its finished run and does nothing."""
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

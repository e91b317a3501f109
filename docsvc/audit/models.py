from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from docsvc.db.base import Base


class AuditEvent(Base):
    """One event. ``hash`` = SHA-256 over the canonical event including ``prev_hash``, so an
    edited, deleted or reordered event breaks the chain from that point on."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    occurred_at: Mapped[datetime]
    actor_type: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[int | None]
    actor_name: Mapped[str | None] = mapped_column(String(128))
    organisation_id: Mapped[int | None] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

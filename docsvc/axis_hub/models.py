"""The hub's own tables. The hub is a separate service with its own database, so these live on
their own ``MetaData``, never on docsvc's ``Base``; ``create_schema`` makes them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class HubBase(DeclarativeBase):
    metadata = sa.MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s",
    })


def utcnow() -> datetime:
    return datetime.now(UTC)


class HubAgency(HubBase):
    """An agency allowed on the hub; its secret is kept only as a SHA-256 (secrets are random
    256-bit tokens, so a slow password hash would add nothing but latency to every request)."""

    __tablename__ = "hub_agencies"

    organ_id: Mapped[str] = mapped_column(sa.String(35), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(500))
    secret_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)


class HubMessage(HubBase):
    """One accepted package. Its bytes are at ``storage_key`` under the hub's package directory."""

    __tablename__ = "hub_messages"
    __table_args__ = (
        # A retried send (same sender, same key) finds the original instead of a second copy.
        sa.UniqueConstraint("sender", "idempotency_key", name="uq_hub_messages_sender_key"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    sender: Mapped[str] = mapped_column(sa.String(35), sa.ForeignKey("hub_agencies.organ_id"))
    idempotency_key: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(sa.String(16))
    document_id: Mapped[str] = mapped_column(sa.String(200))
    business_type: Mapped[str | None] = mapped_column(sa.String(8))
    status_code: Mapped[str | None] = mapped_column(sa.String(2))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    storage_key: Mapped[str] = mapped_column(sa.String(200))
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class HubDelivery(HubBase):
    """One recipient's copy of a message: ``pending`` until the recipient acknowledges it."""

    __tablename__ = "hub_deliveries"
    __table_args__ = (
        # The database, not a read-then-insert race, guarantees that a new document's
        # DocumentId reaches each recipient once. ``new_document_id`` is NULL for statuses,
        # revocations and updates, and NULLs never collide in a unique index.
        sa.UniqueConstraint("sender", "new_document_id", "recipient", name="uq_hub_deliveries_document"),
        sa.Index("ix_hub_deliveries_inbox", "recipient", "state", "message_id"),
    )

    message_id: Mapped[str] = mapped_column(sa.ForeignKey("hub_messages.id"), primary_key=True)
    recipient: Mapped[str] = mapped_column(sa.String(35), sa.ForeignKey("hub_agencies.organ_id"), primary_key=True)
    sender: Mapped[str] = mapped_column(sa.String(35))
    new_document_id: Mapped[str | None] = mapped_column(sa.String(200))
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    delivered_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


def create_schema(engine: sa.Engine) -> None:
    """Create the hub's tables if missing (the schema is small and additive so far)."""
    HubBase.metadata.create_all(engine)

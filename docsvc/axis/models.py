"""What docsvc remembers about the axis: one exchange per (document, counterpart agency), every status
message sent or received on it, and every package taken from the axis inbox.

Sending rows (an outgoing document, a status we send) share one state machine: ``pending`` →
``sent``; ``retrying`` with ``next_attempt_at`` after an ``unavailable`` axis; ``failed`` with the
axis's ``error_code`` otherwise. Their ``idempotency_key`` is written in the same transaction that
creates them, before any attempt, so every retry (after a crash too) presents the same key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from docsvc.db.base import Base, utcnow


class AxisExchange(Base):
    """A document exchanged with one external agency: ours sent to them, or theirs received by us."""

    __tablename__ = "axis_exchanges"
    __table_args__ = (UniqueConstraint("document_id", "direction", "counterpart"),
                      Index("ix_axis_exchanges_due", "state", "next_attempt_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    direction: Mapped[str] = mapped_column(String(10))
    """``outgoing`` (we sent it) or ``incoming`` (we received it)."""
    counterpart: Mapped[str] = mapped_column(String(35))
    """OrganId of the recipient (outgoing) or of the sender (incoming)."""
    edxml_document_id: Mapped[str] = mapped_column(String(255), index=True)
    """edXML ``DocumentId`` (``OrganId,yyyy/MM/dd,Number/Notation``)."""
    state: Mapped[str] = mapped_column(String(16))
    """Outgoing: pending, retrying, sent, failed. Incoming: registered, recall_requested, revoked."""
    last_status: Mapped[str | None] = mapped_column(String(2))
    """Latest edXML StatusCode seen on this exchange (01-06, 13, 15, 16)."""
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(64))
    """The axis's id of the document package."""
    package_sha256: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the first package built: a rebuild for a retry must give the same bytes."""
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    signature_status: Mapped[str | None] = mapped_column(String(32))
    """Incoming: the XML-DSig check (``valid`` or the reason it failed)."""
    pades_status: Mapped[str | None] = mapped_column(String(32))
    """Incoming: the PAdES verdict of the attached PDFs (``TOTAL-PASSED``, ``no_pdf``, …)."""
    verified: Mapped[bool | None]
    """Incoming: both checks passed. False flags the document for the clerk; it is never silent."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AxisStatusMessage(Base):
    """A status message (§1.9) on an exchange: one we send (with the sending state machine) or one we got."""

    __tablename__ = "axis_status_messages"
    __table_args__ = (Index("ix_axis_status_messages_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("axis_exchanges.id"), index=True)
    direction: Mapped[str] = mapped_column(String(10))
    """``sent`` or ``received``."""
    code: Mapped[str] = mapped_column(String(2))
    description: Mapped[str] = mapped_column(Text, default="")
    staff: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    """Sent: pending, retrying, sent, failed. Received: received."""
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class AxisInboxEntry(Base):
    """One package taken from the axis inbox of one of our organisations. The unique message id
    makes intake idempotent: a crash after the commit and before the ack only re-acks."""

    __tablename__ = "axis_inbox"
    __table_args__ = (UniqueConstraint("organ_id", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organ_id: Mapped[str] = mapped_column(String(35))
    """Our OrganId the package was addressed to."""
    message_id: Mapped[str] = mapped_column(String(64))
    from_organ_id: Mapped[str] = mapped_column(String(35))
    kind: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(16))
    """``registered`` (a new incoming document), ``status`` (applied to an exchange), ``rejected``."""
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    exchange_id: Mapped[int | None] = mapped_column(ForeignKey("axis_exchanges.id"))
    size: Mapped[int] = mapped_column(default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    warnings: Mapped[list] = mapped_column(JSON, default=list)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    acked_at: Mapped[datetime | None]

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from docsvc.db.base import Base, utcnow


class Register(Base):
    """A register book (sổ đăng ký): one counter per organisation, kind and calendar year."""

    __tablename__ = "registers"
    __table_args__ = (UniqueConstraint("organisation_id", "kind", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(10))
    """``outgoing`` (số văn bản đi) or ``incoming`` (số đến)."""
    year: Mapped[int]
    last_number: Mapped[int] = mapped_column(default=0)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        # Số and ký hiệu are unique within an agency for one calendar year (Decree 30 art. 15).
        # For incoming documents the same triple from two issuers is two documents: ``issuer``
        # is our own organ_id for outgoing ones and the sender for incoming ones.
        UniqueConstraint("organisation_id", "direction", "issuer", "year", "number", "symbol",
                         name="uq_documents_number"),
        UniqueConstraint("organisation_id", "arrival_year", "arrival_number", name="uq_documents_arrival"),
        Index("ix_documents_org_status", "organisation_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    direction: Mapped[str] = mapped_column(String(10))
    doc_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    year: Mapped[int | None]
    number: Mapped[int | None]
    symbol: Mapped[str | None] = mapped_column(String(64))
    issuer: Mapped[str | None] = mapped_column(String(255))
    arrival_year: Mapped[int | None]
    arrival_number: Mapped[int | None]
    """Số đến: the incoming register's running number for ``arrival_year``."""
    issued_date: Mapped[date | None]
    place: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(Text)
    signer_name: Mapped[str | None] = mapped_column(String(255))
    signer_position: Mapped[str | None] = mapped_column(String(255))
    signer_competence: Mapped[str | None] = mapped_column(String(8))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    priority: Mapped[str] = mapped_column(String(20), default="thuong")
    confidentiality: Mapped[str] = mapped_column(String(20), default="thuong")
    due_date: Mapped[date | None]
    sender_name: Mapped[str | None] = mapped_column(String(255))
    """For incoming documents: the issuing agency as printed."""
    drafting_unit: Mapped[str | None] = mapped_column(String(32))
    """Abbreviation of the drafting unit, used in công văn symbols (12/UBND-VX)."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    registered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DocumentShare(Base):
    """A document addressed or shared to another organisation, which may then read it."""

    __tablename__ = "document_shares"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocumentFile(Base):
    """One immutable file of a document: a version of the main PDF, an attachment or an appendix.

    Rows are only ever inserted; a signed PDF becomes version n+1."""

    __tablename__ = "document_files"
    __table_args__ = (UniqueConstraint("document_id", "kind", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    """``version``, ``attachment`` or ``appendix``."""
    seq: Mapped[int]
    """Version number for ``version``; position for attachments and appendices."""
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    object_key: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(String(255))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from docsvc.db.base import Base, utcnow


class Dossier(Base):
    __tablename__ = "dossiers"
    __table_args__ = (
        UniqueConstraint("organisation_id", "code"),
        Index("ix_dossiers_applicant", "applicant_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    """``work`` (hồ sơ công việc) or ``procedure`` (hồ sơ TTHC)."""
    code: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    procedure_code: Mapped[str | None] = mapped_column(String(32))
    applicant_id_type: Mapped[str | None] = mapped_column(String(12))
    """``personal_id`` (12-digit số định danh cá nhân) or ``tax_code``."""
    applicant_id: Mapped[str | None] = mapped_column(String(14))
    applicant_name: Mapped[str | None] = mapped_column(String(255))
    retention: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DossierDocument(Base):
    """A document filed in a dossier; ``role`` is ``member`` or ``result`` (kết quả giải quyết)."""

    __tablename__ = "dossier_documents"

    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(10), default="member")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DossierComponent(Base):
    """A thành phần hồ sơ: one paper the applicant supplied, optionally with its scanned file."""

    __tablename__ = "dossier_components"

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    copies: Mapped[int] = mapped_column(default=1)
    filename: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    object_key: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

"""Signing keys (personal and organisation seal) and the record of every signature made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from docsvc.db.base import Base, utcnow


class SigningKey(Base):
    """A signing key and its certificate.

    The private key is held only as PKCS#12: a personal key encrypted under the owner's PIN
    (the server cannot sign without it), a seal key encrypted under a passphrase derived from
    the server secret (``protection='server'``). A newer key of the same owner deactivates
    the older one; rows are kept so that old signatures still name their key."""

    __tablename__ = "signing_keys"
    __table_args__ = (Index("ix_signing_keys_owner", "kind", "organisation_id", "user_id", "is_active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    """``personal`` (a person's key) or ``seal`` (the organisation's con dấu)."""
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    """Owner of a personal key; NULL for a seal."""
    certificate: Mapped[bytes] = mapped_column(LargeBinary)
    """DER certificate."""
    serial: Mapped[str] = mapped_column(String(64))
    """Certificate serial number, hexadecimal."""
    subject: Mapped[str] = mapped_column(String(512))
    not_after: Mapped[datetime]
    pkcs12: Mapped[bytes] = mapped_column(LargeBinary)
    protection: Mapped[str] = mapped_column(String(10))
    """``pin`` (personal) or ``server`` (seal)."""
    failed_pins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SignatureRecord(Base):
    """One signature applied by docsvc: which version was signed, which version it produced."""

    __tablename__ = "signatures"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    source_file_id: Mapped[int] = mapped_column(ForeignKey("document_files.id"))
    file_id: Mapped[int] = mapped_column(ForeignKey("document_files.id"))
    """The new, signed version."""
    key_id: Mapped[int] = mapped_column(ForeignKey("signing_keys.id"))
    signer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    """Who confirmed the signature (the leader, or the clerk applying the seal)."""
    purpose: Mapped[str] = mapped_column(String(10))
    """``sign`` (a person signs a version) or ``issue`` (the seal at ban hành)."""
    profile: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(8))
    field_name: Mapped[str] = mapped_column(String(64))
    certificate_serial: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from docsvc.documents.types import (
    DOCUMENT_TYPES,
    Competence,
    Confidentiality,
    Direction,
    DocumentTypeCode,
    Priority,
    format_number,
)


class DocumentCreate(BaseModel):
    direction: Direction
    doc_type: DocumentTypeCode
    subject: str = Field(min_length=1, max_length=500, description="Trích yếu")
    place: str | None = Field(default=None, max_length=128)
    signer_name: str | None = Field(default=None, max_length=255)
    signer_position: str | None = Field(default=None, max_length=255)
    signer_competence: Competence | None = None
    recipients: list[str] = Field(default_factory=list, max_length=200, description="Nơi nhận, as printed")
    priority: Priority = Priority.NORMAL
    confidentiality: Confidentiality = Confidentiality.NORMAL
    due_date: date | None = None
    drafting_unit: str | None = Field(default=None, max_length=32, pattern=r"^[A-ZĐ0-9]+$")
    # Incoming documents carry the sender's own number, symbol and date as printed.
    sender_name: str | None = Field(default=None, max_length=255)
    number: int | None = Field(default=None, ge=1, le=10**9)
    symbol: str | None = Field(default=None, max_length=64, pattern=r"^\S+$")
    issued_date: date | None = None


class DocumentUpdate(BaseModel):
    """Fields of a draft that may still change."""

    subject: str | None = Field(default=None, min_length=1, max_length=500)
    signer_name: str | None = Field(default=None, max_length=255)
    signer_position: str | None = Field(default=None, max_length=255)
    signer_competence: Competence | None = None
    recipients: list[str] | None = Field(default=None, max_length=200)
    priority: Priority | None = None
    due_date: date | None = None


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organisation_id: int
    direction: str
    doc_type: str
    status: str
    year: int | None
    number: int | None
    symbol: str | None
    issuer: str | None
    arrival_year: int | None
    arrival_number: int | None
    issued_date: date | None
    place: str | None
    subject: str
    signer_name: str | None
    signer_position: str | None
    signer_competence: str | None
    recipients: list[str]
    priority: str
    confidentiality: str
    due_date: date | None
    sender_name: str | None
    drafting_unit: str | None
    registered_at: datetime | None
    created_at: datetime

    @computed_field
    @property
    def type_name(self) -> str:
        return DOCUMENT_TYPES[self.doc_type][0]

    @computed_field
    @property
    def number_symbol(self) -> str | None:
        """``12/CT-UBND`` once numbered."""
        return format_number(self.number, self.symbol) if self.number and self.symbol else None


class RegisterRequest(BaseModel):
    issued_date: date | None = None
    """Outgoing: the issue date (defaults to today, Vietnam time)."""


class ShareCreate(BaseModel):
    organisation_id: int


class FileRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    document_id: int
    kind: str
    seq: int
    filename: str
    content_type: str
    size: int
    sha256: str
    note: str | None
    created_at: datetime

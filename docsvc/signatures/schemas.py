"""Request and response bodies of the signing API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["B-B", "B-T", "B-LT", "B-LTA"]
Profile = Literal["personal", "organisation", "attachment", "copy"]


class KeyEnrol(BaseModel):
    pin: str = Field(min_length=6, max_length=64)
    """Protects the private key; asked for at every signature. Never stored."""
    personal_id: str | None = Field(default=None, pattern=r"^\d{12}$")
    """Số định danh cá nhân (CCCD) for the certificate's UID; the development PKI derives one if omitted."""


class KeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    organisation_id: int
    user_id: int | None
    serial: str
    subject: str
    not_after: datetime
    is_active: bool
    created_at: datetime


class SignRequest(BaseModel):
    pin: str = Field(min_length=1, max_length=64)
    otp: str = Field(min_length=1, max_length=10)
    level: Level = "B-T"
    profile: Profile = "personal"
    reason: str | None = Field(default=None, max_length=200)


class IssueRequest(BaseModel):
    pin: str = Field(min_length=1, max_length=64)
    """The clerk's own PIN (of their personal key)."""
    otp: str = Field(min_length=1, max_length=10)
    issued_date: date | None = None


class SignatureRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    document_id: int
    source_file_id: int
    file_id: int
    version: int = 0
    key_id: int
    signer_id: int | None
    purpose: str
    profile: str
    level: str
    field_name: str
    certificate_serial: str
    created_at: datetime

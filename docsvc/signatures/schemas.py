"""Request and response bodies of the signing API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

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


Coordinate = Annotated[float, Field(allow_inf_nan=False, ge=-14400, le=14400)]
"""A PDF coordinate in points; PDF pages are at most 14,400 pt (200 in) on a side."""


class Placement(BaseModel):
    """Where a visible signature goes when the default (found from the page) is not wanted: an
    explicit box, or an anchor text to place against, optionally on one page."""

    anchor_text: str | None = Field(default=None, min_length=1, max_length=200)
    """Text on the page to place against (default: the signer's name from the certificate)."""
    page: int | None = Field(default=None, ge=-1000, le=10000)
    """Zero-based page; negative counts from the end (-1 = last page)."""
    box: tuple[Coordinate, Coordinate, Coordinate, Coordinate] | None = None
    """``[x1, y1, x2, y2]`` in PDF points, origin bottom left; wins over anchor_text."""


class SignRequest(Placement):
    pin: str = Field(min_length=1, max_length=64)
    otp: str = Field(min_length=1, max_length=10)
    level: Level = "B-T"
    profile: Profile = "personal"
    """Only ``personal`` here: the agency's appearances (seal, attachment, copy) carry the
    organisation's signature, applied by its clerks (Decree 30 Art. 32-33)."""
    reason: str | None = Field(default=None, max_length=200)


class IssueRequest(BaseModel):
    pin: str = Field(min_length=1, max_length=64)
    """The clerk's own PIN (of their personal key)."""
    otp: str = Field(min_length=1, max_length=10)
    issued_date: date | None = None
    lock_document: bool = False
    """Make the seal the last signature: the issued PDF then refuses further signatures and form
    changes (validators flag them); LTV data and archive timestamps may still be added."""


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

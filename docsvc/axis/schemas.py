"""Request and response bodies of the axis API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StatusCreate(BaseModel):
    """A processing status for the sender of a received document."""

    code: Literal["04", "05", "06"]
    description: str = Field(default="", max_length=500)


class RecallCreate(BaseModel):
    reason: str = Field(default="", max_length=500)


class RecallAnswer(BaseModel):
    code: Literal["15", "16"]
    """15 agrees (the received copy is revoked), 16 refuses."""
    description: str = Field(default="", max_length=500)


class StatusRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    direction: str
    code: str
    description: str
    state: str
    error_code: str | None
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None


class ExchangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    direction: str
    counterpart: str
    edxml_document_id: str
    state: str
    last_status: str | None
    message_id: str | None
    attempts: int
    next_attempt_at: datetime | None
    error_code: str | None
    error_message: str | None
    signature_status: str | None
    pades_status: str | None
    verified: bool | None
    created_at: datetime
    sent_at: datetime | None
    statuses: list[StatusRead] = []


class InboxEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organ_id: str
    message_id: str
    from_organ_id: str
    kind: str
    outcome: str
    error_code: str | None
    error_message: str | None
    document_id: int | None
    warnings: list
    received_at: datetime
    acked_at: datetime | None

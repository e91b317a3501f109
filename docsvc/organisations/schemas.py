from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["province", "department", "district", "commune", "other"]


class OrganisationCreate(BaseModel):
    organ_id: str = Field(max_length=35, examples=["000.00.00.H41"])
    name: str = Field(min_length=1, max_length=255, examples=["Ủy ban nhân dân tỉnh Nghệ An"])
    short_name: str = Field(min_length=1, max_length=20, pattern=r"^[A-ZĐ0-9]+$", examples=["UBND"])
    level: Level
    parent_id: int | None = None
    address: str | None = Field(default=None, max_length=255)


class OrganisationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organ_id: str
    name: str
    short_name: str
    level: str
    parent_id: int | None
    address: str | None
    created_at: datetime

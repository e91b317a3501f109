from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from docsvc.principal import Role


class UserCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9._-]+$")
    full_name: str = Field(min_length=1, max_length=255)
    position: str | None = Field(default=None, max_length=255)
    organisation_id: int
    roles: list[Role] = Field(min_length=1)
    password: str | None = Field(default=None, min_length=10, max_length=256)
    """Omit to have one generated and returned once."""


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    position: str | None
    organisation_id: int
    roles: list[str]
    totp_enabled: bool
    is_active: bool
    created_at: datetime


class UserCreated(UserRead):
    initial_password: str | None = None


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class TotpEnrolment(BaseModel):
    secret: str
    otpauth_uri: str


class TotpConfirm(BaseModel):
    code: str = Field(pattern=r"^\d{6}$")


class ApiClientCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    organisation_id: int


class ApiClientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    organisation_id: int
    key_prefix: str
    is_active: bool
    created_at: datetime


class ApiClientCreated(ApiClientRead):
    api_key: str
    """Shown once; only its hash is stored."""

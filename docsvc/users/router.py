from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query

from docsvc.deps import ActorDep, SessionDep, SettingsDep, UserDep, oauth2_scheme
from docsvc.users import auth_service, service
from docsvc.users.models import User
from docsvc.users.schemas import (
    ApiClientCreate,
    ApiClientCreated,
    ApiClientRead,
    Token,
    TotpConfirm,
    TotpEnrolment,
    UserCreate,
    UserCreated,
    UserRead,
)

router = APIRouter(tags=["auth and users"])


@router.post("/auth/token", response_model=Token)
def issue_token(
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    otp: Annotated[str | None, Form(description="TOTP code, required once enrolled")] = None,
) -> Token:
    """OAuth2 password flow, with the one-time code as an extra form field."""
    issued = auth_service.login(session, settings, username, password, otp)
    return Token(access_token=issued.access_token, expires_at=issued.expires_at)


@router.post("/auth/logout", status_code=204)
def logout(session: SessionDep, settings: SettingsDep, actor: UserDep,
           token: Annotated[str, Depends(oauth2_scheme)]) -> None:
    auth_service.logout(session, settings, token, actor)


@router.get("/auth/me", response_model=UserRead)
def me(session: SessionDep, actor: UserDep):
    return session.get(User, actor.id)


@router.post("/auth/totp/enrol", response_model=TotpEnrolment)
def enrol_totp(session: SessionDep, settings: SettingsDep, actor: UserDep) -> TotpEnrolment:
    secret, uri = service.start_totp_enrolment(session, settings, actor)
    return TotpEnrolment(secret=secret, otpauth_uri=uri)


@router.post("/auth/totp/confirm", status_code=204)
def confirm_totp(session: SessionDep, actor: UserDep, body: TotpConfirm) -> None:
    service.confirm_totp(session, actor, body.code)


@router.post("/users", response_model=UserCreated, status_code=201)
def create_user(session: SessionDep, actor: UserDep, body: UserCreate) -> UserCreated:
    user, password = service.create_user(session, actor, body)
    return UserCreated(**UserRead.model_validate(user).model_dump(), initial_password=password)


@router.get("/users", response_model=list[UserRead])
def list_users(session: SessionDep, actor: UserDep, organisation_id: Annotated[int, Query()]):
    return service.list_users(session, actor, organisation_id)


@router.post("/api-clients", response_model=ApiClientCreated, status_code=201)
def create_api_client(session: SessionDep, actor: UserDep, body: ApiClientCreate) -> ApiClientCreated:
    client, key = service.create_api_client(session, actor, body)
    return ApiClientCreated(**ApiClientRead.model_validate(client).model_dump(), api_key=key)


@router.get("/auth/whoami")
def whoami(actor: ActorDep) -> dict:
    """Works for users and system clients alike."""
    return {"kind": actor.kind, "id": actor.id, "name": actor.name, "organisation_id": actor.organisation_id,
            "roles": sorted(actor.roles)}

"""FastAPI dependencies shared by every router: the runtime, a DB session, the acting user.

Dependencies that do no blocking I/O are ``async def``: FastAPI runs sync dependencies in
the thread pool, and each hop there costs more than the work itself. Only the ones that
query the database stay sync."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from docsvc import errors
from docsvc.principal import Actor, Role
from docsvc.runtime import Runtime
from docsvc.settings import Settings
from docsvc.users import auth_service

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings_dep(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[Session]:
    """A session per request; services commit their unit of work, anything else rolls back.

    Creating a session does no I/O (it connects on first use, in a worker thread); the
    closing rollback only has work to do after a service failed mid-transaction."""
    session = runtime.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.rollback)
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def get_actor(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Actor:
    try:
        if token:
            return auth_service.actor_from_token(session, settings, token)
        if api_key:
            return auth_service.actor_from_api_key(session, api_key)
        raise errors.AuthenticationError("authentication required")
    finally:
        # End the read at once: on SQLite every transaction holds the write lock, and the
        # Actor is a plain value that needs no open transaction.
        session.rollback()


ActorDep = Annotated[Actor, Depends(get_actor)]


async def get_user(actor: ActorDep) -> Actor:
    if actor.kind != "user":
        raise errors.PermissionDeniedError("this endpoint is for signed-in users")
    return actor


UserDep = Annotated[Actor, Depends(get_user)]


def require_roles(*roles: Role):
    """Dependency factory: the signed-in user must hold one of ``roles``."""

    async def check(actor: UserDep) -> Actor:
        if not actor.has_any(*roles):
            raise errors.PermissionDeniedError("your role does not allow this", needs=[r.value for r in roles])
        return actor

    return Depends(check)

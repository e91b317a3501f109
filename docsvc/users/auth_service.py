"""Logging in (password + TOTP, lockout), logging out, and resolving a request's actor."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from docsvc import errors
from docsvc.audit import service as audit
from docsvc.principal import Actor
from docsvc.settings import Settings
from docsvc.users import security
from docsvc.users.models import ApiClient, RevokedToken, User


def actor_for_user(user: User) -> Actor:
    return Actor("user", user.id, user.username, user.organisation_id, frozenset(user.roles))


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_at: datetime
    token_type: str = "bearer"


def login(session: Session, settings: Settings, username: str, password: str, otp: str | None) -> IssuedToken:
    """Check credentials; failures are counted and committed even though the call fails."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        security.dummy_verify(password)
        raise errors.AuthenticationError("incorrect username or password")
    now = datetime.now(UTC)
    locked_until = user.locked_until
    if locked_until and locked_until > now:
        raise errors.AccountLockedError("account is locked after repeated failures",
                                        retry_after=locked_until.isoformat())
    actor = actor_for_user(user)
    if not security.verify_password(user.password_hash, password):
        _fail(session, settings, user, actor, "password")
    if user.totp_enabled:
        if not otp:
            raise errors.OtpRequiredError("a one-time code is required for this account")
        step = security.totp_step(user.totp_secret or "", otp, user.totp_last_step)
        if step is None:
            _fail(session, settings, user, actor, "otp")
        user.totp_last_step = step
    user.failed_logins, user.locked_until = 0, None
    token, claims = security.issue_token(settings.signing_secret(), user.id, settings.auth.access_token_minutes)
    audit.record(session, actor, "auth.login", object_type="user", object_id=user.id)
    session.commit()
    return IssuedToken(token, claims.expires_at)


def _fail(session: Session, settings: Settings, user: User, actor: Actor, factor: str) -> None:
    user.failed_logins += 1
    locked = user.failed_logins >= settings.auth.max_failed_logins
    if locked:
        user.locked_until = datetime.now(UTC) + timedelta(minutes=settings.auth.lockout_minutes)
        user.failed_logins = 0
    audit.record(session, actor, "auth.login_failed", object_type="user", object_id=user.id,
                 factor=factor, locked=locked)
    session.commit()
    if locked:
        raise errors.AccountLockedError("account is locked after repeated failures")
    message = "incorrect username or password" if factor == "password" else "incorrect one-time code"
    raise errors.AuthenticationError(message)


def logout(session: Session, settings: Settings, token: str, actor: Actor) -> None:
    claims = security.decode_token(settings.signing_secret(), token)
    if claims is None:
        raise errors.AuthenticationError("invalid or expired token")
    if session.get(RevokedToken, claims.jti) is None:
        session.add(RevokedToken(jti=claims.jti, expires_at=claims.expires_at))
    audit.record(session, actor, "auth.logout", object_type="user", object_id=claims.user_id)
    session.commit()


def actor_from_token(session: Session, settings: Settings, token: str) -> Actor:
    claims = security.decode_token(settings.signing_secret(), token)
    if claims is None or session.get(RevokedToken, claims.jti) is not None:
        raise errors.AuthenticationError("invalid or expired token")
    user = session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise errors.AuthenticationError("invalid or expired token")
    return actor_for_user(user)


def actor_from_api_key(session: Session, key: str) -> Actor:
    prefix = security.api_key_prefix(key)
    client = session.scalar(select(ApiClient).where(ApiClient.key_prefix == prefix)) if prefix else None
    if client is None or not client.is_active or not hmac.compare_digest(client.key_hash, security.hash_api_key(key)):
        raise errors.AuthenticationError("invalid API key")
    return Actor("system", client.id, client.name, client.organisation_id, frozenset({"system"}))

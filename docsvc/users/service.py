"""Managing people and system clients."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from docsvc import errors
from docsvc.audit import service as audit
from docsvc.db.session import flush_or_raise
from docsvc.organisations import service as orgs
from docsvc.organisations.models import Organisation
from docsvc.principal import SERVICE_ACTOR, Actor, Role
from docsvc.settings import Settings
from docsvc.users import security
from docsvc.users.models import ApiClient, User
from docsvc.users.schemas import ApiClientCreate, UserCreate


def create_user(session: Session, actor: Actor, data: UserCreate) -> tuple[User, str | None]:
    """Create a user; returns the generated password (shown once) when none was given."""
    orgs.require_admin_over(session, actor, data.organisation_id)
    if session.get(Organisation, data.organisation_id) is None:
        raise errors.NotFoundError("organisation not found")
    generated = None if data.password else security.generate_password()
    user = User(
        organisation_id=data.organisation_id,
        username=data.username,
        full_name=data.full_name,
        position=data.position,
        roles=sorted({r.value for r in data.roles}),
        password_hash=security.hash_password(data.password or generated),
    )
    session.add(user)
    flush_or_raise(session, errors.ConflictError("username is taken", username=data.username))
    audit.record(session, actor, "user.created", object_type="user", object_id=user.id,
                 organisation_id=user.organisation_id, roles=user.roles)
    session.commit()
    return user, generated


def list_users(session: Session, actor: Actor, organisation_id: int) -> list[User]:
    orgs.require_admin_over(session, actor, organisation_id)
    return list(session.scalars(select(User).where(User.organisation_id == organisation_id).order_by(User.id)))


def start_totp_enrolment(session: Session, settings: Settings, actor: Actor) -> tuple[str, str]:
    user = session.get(User, actor.id)
    if user.totp_enabled:
        raise errors.InvalidStateError("a second factor is already enrolled")
    user.totp_secret = security.new_totp_secret()
    audit.record(session, actor, "user.totp_enrolment_started", object_type="user", object_id=user.id)
    session.commit()
    return user.totp_secret, security.totp_uri(user.totp_secret, user.username, settings.auth.totp_issuer)


def confirm_totp(session: Session, actor: Actor, code: str) -> None:
    user = session.get(User, actor.id)
    if user.totp_enabled or not user.totp_secret:
        raise errors.InvalidStateError("no enrolment is in progress")
    step = security.totp_step(user.totp_secret, code, user.totp_last_step)
    if step is None:
        raise errors.AuthenticationError("incorrect one-time code")
    user.totp_enabled, user.totp_last_step = True, step
    audit.record(session, actor, "user.totp_enabled", object_type="user", object_id=user.id)
    session.commit()


def create_api_client(session: Session, actor: Actor, data: ApiClientCreate) -> tuple[ApiClient, str]:
    orgs.require_admin_over(session, actor, data.organisation_id)
    key, prefix, digest = security.new_api_key()
    client = ApiClient(organisation_id=data.organisation_id, name=data.name, key_prefix=prefix, key_hash=digest)
    session.add(client)
    session.flush()
    audit.record(session, actor, "api_client.created", object_type="api_client", object_id=client.id,
                 organisation_id=data.organisation_id, name=data.name)
    session.commit()
    return client, key


def ensure_first_admin(session: Session, organisation_id: int, username: str = "admin") -> str | None:
    """Create the first administrator if there is none; return its generated password once."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    data = UserCreate(username=username, full_name="Quản trị hệ thống", organisation_id=organisation_id,
                      roles=[Role.ADMIN])
    _, password = create_user(session, SERVICE_ACTOR, data)
    return password

"""Creating and listing organisations. Admins manage their own organisation's subtree."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from docsvc import errors
from docsvc.audit import service as audit
from docsvc.db.session import flush_or_raise
from docsvc.organisations.identifiers import validate_organ_id
from docsvc.organisations.models import Organisation
from docsvc.organisations.schemas import OrganisationCreate
from docsvc.principal import Actor, Role


def subtree_ids(session: Session, root_id: int) -> set[int]:
    """Ids of ``root_id`` and every organisation below it (a province has a few thousand)."""
    children: dict[int | None, list[int]] = {}
    for org_id, parent_id in session.execute(select(Organisation.id, Organisation.parent_id)):
        children.setdefault(parent_id, []).append(org_id)
    found, todo = set(), [root_id]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(children.get(current, []))
    return found


def require_admin_over(session: Session, actor: Actor, organisation_id: int) -> None:
    """Admins act on their own organisation and those below it; others get 404 (no leak)."""
    if actor.kind == "service":
        return
    if not actor.has_any(Role.ADMIN):
        raise errors.PermissionDeniedError("only an administrator may do this")
    if actor.organisation_id is None or organisation_id not in subtree_ids(session, actor.organisation_id):
        raise errors.NotFoundError("organisation not found")


def create(session: Session, actor: Actor, data: OrganisationCreate) -> Organisation:
    validate_organ_id(data.organ_id)
    if data.parent_id is None:
        if actor.kind != "service":  # roots (the province) are created by the CLI only
            raise errors.ValidationFailedError("parent_id is required", field="parent_id")
    else:
        require_admin_over(session, actor, data.parent_id)
    org = Organisation(**data.model_dump())
    session.add(org)
    flush_or_raise(session, errors.ConflictError("an organisation with this organ_id exists", organ_id=data.organ_id))
    audit.record(session, actor, "organisation.created", object_type="organisation", object_id=org.id,
                 organisation_id=org.id, organ_id=org.organ_id)
    session.commit()
    return org


def get_visible(session: Session, actor: Actor, org_id: int) -> Organisation:
    """Any authenticated actor may read the directory entry of an organisation (like the
    axis's agency list); it holds no records."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise errors.NotFoundError("organisation not found")
    return org


def list_all(session: Session, parent_id: int | None = None) -> list[Organisation]:
    query = select(Organisation).order_by(Organisation.id)
    if parent_id is not None:
        query = query.where(Organisation.parent_id == parent_id)
    return list(session.scalars(query))


def by_organ_id(session: Session, organ_id: str) -> Organisation | None:
    return session.scalar(select(Organisation).where(Organisation.organ_id == organ_id))

from __future__ import annotations

from fastapi import APIRouter

from docsvc.deps import ActorDep, SessionDep, UserDep
from docsvc.organisations import service
from docsvc.organisations.schemas import OrganisationCreate, OrganisationRead

router = APIRouter(prefix="/organisations", tags=["organisations"])


@router.post("", response_model=OrganisationRead, status_code=201)
def create_organisation(session: SessionDep, actor: UserDep, body: OrganisationCreate):
    return service.create(session, actor, body)


@router.get("", response_model=list[OrganisationRead])
def list_organisations(session: SessionDep, actor: ActorDep, parent_id: int | None = None):
    """The directory of agencies (names and identifiers only), as on the interlink axis."""
    return service.list_all(session, parent_id)


@router.get("/{org_id}", response_model=OrganisationRead)
def get_organisation(session: SessionDep, actor: ActorDep, org_id: int):
    return service.get_visible(session, actor, org_id)

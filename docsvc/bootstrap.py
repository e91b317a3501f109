"""First start: schema migrations, the province's root organisation and the first admin."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from archive import S3ObjectStore
from docsvc.db import migrate
from docsvc.organisations import service as orgs
from docsvc.organisations.models import Organisation
from docsvc.organisations.schemas import OrganisationCreate
from docsvc.principal import SERVICE_ACTOR
from docsvc.runtime import Runtime
from docsvc.users import service as users


@dataclass(frozen=True)
class BootstrapResult:
    root: Organisation
    admin_password: str | None
    """Set only on the start that created the admin; shown once, never stored in clear."""


def ensure_root_organisation(runtime: Runtime) -> Organisation:
    s = runtime.settings
    with runtime.sessions() as session:
        root = session.scalar(select(Organisation).where(Organisation.parent_id.is_(None)).order_by(Organisation.id))
        if root is not None:
            return root
        return orgs.create(session, SERVICE_ACTOR, OrganisationCreate(
            organ_id=s.root_organ_id, name=s.root_organisation_name, short_name=s.root_short_name, level="province"))


def bootstrap(runtime: Runtime) -> BootstrapResult:
    migrate.upgrade(runtime.engine)
    if isinstance(runtime.store, S3ObjectStore):  # a fresh MinIO has no bucket yet
        runtime.store.create_bucket_if_missing()
    root = ensure_root_organisation(runtime)
    with runtime.sessions() as session:
        password = users.ensure_first_admin(session, root.id)
    if runtime.settings.signing.use_dev_pki:
        # Development PKI on first start (idempotent): TSA, OCSP and CRLs are then served at /pki.
        from docsvc.pki.defaults import ensure_default_keys
        from docsvc.pki.service import ensure_dev_pki

        ensure_default_keys(runtime.settings, ensure_dev_pki(runtime.settings))
    return BootstrapResult(root, password)

"""Imports every domain's models so ``Base.metadata`` (and Alembic) sees all tables."""

from docsvc.audit.models import AuditEvent
from docsvc.axis.models import AxisExchange, AxisInboxEntry, AxisStatusMessage
from docsvc.documents.models import Document, DocumentFile, DocumentShare, Register
from docsvc.dossiers.models import Dossier, DossierComponent, DossierDocument
from docsvc.jobs.models import JobRun, OutboxMessage
from docsvc.organisations.models import Organisation
from docsvc.signatures.models import SignatureRecord, SigningKey
from docsvc.users.models import ApiClient, RevokedToken, User

__all__ = [
    "ApiClient", "AuditEvent", "AxisExchange", "AxisInboxEntry", "AxisStatusMessage", "Document", "DocumentFile",
    "DocumentShare", "Dossier", "DossierComponent", "DossierDocument", "JobRun", "Organisation", "OutboxMessage",
    "Register", "RevokedToken", "SignatureRecord", "SigningKey", "User",
]

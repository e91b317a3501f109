"""Finding drift between the database and the object store.

*missing*: a row points at an object the store does not have (data loss: must never happen).
*orphans*: an object no row points at (an upload whose transaction never committed)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import ObjectStore
from docsvc.documents.models import DocumentFile
from docsvc.dossiers.models import DossierComponent


@dataclass
class DriftReport:
    checked_rows: int = 0
    checked_objects: int = 0
    missing: list[dict] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    abandoned_uploads_removed: int = 0

    @property
    def clean(self) -> bool:
        return not self.missing and not self.orphans

    def as_dict(self) -> dict:
        return {"clean": self.clean, "checked_rows": self.checked_rows, "checked_objects": self.checked_objects,
                "missing": self.missing, "orphans": self.orphans,
                "abandoned_uploads_removed": self.abandoned_uploads_removed}


def referenced_keys(session: Session) -> dict[str, list[dict]]:
    refs: dict[str, list[dict]] = {}
    for file_id, key in session.execute(select(DocumentFile.id, DocumentFile.object_key)):
        refs.setdefault(key, []).append({"table": "document_files", "id": file_id})
    for comp_id, key in session.execute(select(DossierComponent.id, DossierComponent.object_key)
                                        .where(DossierComponent.object_key.is_not(None))):
        refs.setdefault(key, []).append({"table": "dossier_components", "id": comp_id})
    return refs


def find_drift(session: Session, store: ObjectStore) -> DriftReport:
    refs = referenced_keys(session)
    stored = set(store.list())
    report = DriftReport(checked_rows=sum(len(v) for v in refs.values()), checked_objects=len(stored))
    for key, rows in sorted(refs.items()):
        if key not in stored:
            report.missing.extend({"key": key, **row} for row in rows)
    report.orphans = sorted(stored - refs.keys())
    report.abandoned_uploads_removed = store.discard_abandoned()
    return report

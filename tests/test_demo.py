"""``docsvc demo``: the seeded province is complete, consistent, usable, and seeding twice
changes nothing. Runs on SQLite and PostgreSQL (the ``runtime`` fixture)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import unicodedata
from collections import defaultdict
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from docsvc import demo
from docsvc.app import create_app
from docsvc.audit.models import AuditEvent
from docsvc.audit.service import verify_chain
from docsvc.bootstrap import bootstrap
from docsvc.documents.models import Document, DocumentFile, DocumentShare
from docsvc.documents.types import Direction, format_number
from docsvc.dossiers.models import Dossier, DossierComponent, DossierDocument
from docsvc.organisations.models import Organisation
from docsvc.users.models import User

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PASSWORD_ROW = re.compile(r"^\s+(\S+)\s+(clerk|specialist|leader|archivist|admin)\s+(\S+)\s+(\S+)$")
DEMO_ORGAN_IDS = [f"000.{spec.code}.H41" for spec in demo.ORGS]


def _passwords(lines: list[str]) -> dict[str, str]:
    return {m[1]: m[4] for line in lines if (m := PASSWORD_ROW.match(line))}


def _audit_count(runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


def test_demo_province_is_complete_consistent_and_usable(runtime):
    """One scenario per database backend: seeding costs ~35 password hashes and 6 PDFs, so
    the checks share it instead of seeding again for each."""
    bootstrap(runtime)
    first = list(demo.seed(runtime))
    after_first = _audit_count(runtime)
    second = list(demo.seed(runtime))
    assert _audit_count(runtime) == after_first, "the second run must not change anything"
    check_everything_exists_once(runtime, first, second)
    check_every_organisation_has_every_role(runtime)
    check_registered_numbers_are_consecutive_per_organisation(runtime)
    check_generated_pdfs_read_back_intact_with_their_number(runtime)
    check_a_demo_user_logs_in_over_http(runtime, _passwords(first))
    check_procedure_dossier_carries_a_personal_id(runtime)
    check_audit_chain_verifies(runtime)


def check_everything_exists_once(runtime, first: list[str], second: list[str]) -> None:
    with runtime.sessions() as session:
        orgs = session.scalars(select(Organisation).where(Organisation.organ_id.in_(DEMO_ORGAN_IDS))).all()
        assert sorted(o.organ_id for o in orgs) == sorted(DEMO_ORGAN_IDS)
        assert session.scalar(select(func.count()).select_from(Organisation)) == len(DEMO_ORGAN_IDS) + 1
        assert session.scalar(select(func.count()).select_from(User)) == len(demo.ORGS) * len(demo.ROLE_ACCOUNTS) + 1
        assert session.scalar(select(func.count()).select_from(Document)) == len(demo.DOCUMENTS)
        assert session.scalar(select(func.count()).select_from(Dossier)) == 2
        assert session.scalar(select(func.count()).select_from(DossierComponent)) == len(demo.PROCEDURE_COMPONENTS)
        assert session.scalar(select(func.count()).select_from(DossierDocument)) == 2
        assert session.scalar(select(func.count()).select_from(DocumentShare)) == 3
    assert len(_passwords(first)) == len(demo.ORGS) * len(demo.ROLE_ACCOUNTS)
    assert _passwords(second) == {}, "passwords are shown once, when the user is created"
    assert not set(_passwords(first).values()) & {w for line in second for w in line.split()}


def check_every_organisation_has_every_role(runtime) -> None:
    with runtime.sessions() as session:
        rows = session.execute(select(Organisation.organ_id, User.roles)
                               .join(User, User.organisation_id == Organisation.id)
                               .where(Organisation.organ_id.in_(DEMO_ORGAN_IDS))).all()
    roles = defaultdict(set)
    for organ_id, user_roles in rows:
        roles[organ_id].update(user_roles)
    assert roles == {oid: {r.value for r in demo.ROLE_ACCOUNTS} for oid in DEMO_ORGAN_IDS}


def check_registered_numbers_are_consecutive_per_organisation(runtime) -> None:
    with runtime.sessions() as session:
        docs = session.scalars(select(Document).order_by(Document.id)).all()
    outgoing, arrivals = defaultdict(list), defaultdict(list)
    for doc in docs:
        assert doc.registered_at is not None
        if doc.direction == Direction.OUTGOING:
            outgoing[doc.organisation_id].append(doc.number)
        else:
            arrivals[doc.organisation_id].append(doc.arrival_number)
    for numbers in [*outgoing.values(), *arrivals.values()]:
        assert numbers == list(range(1, len(numbers) + 1))
    assert max(len(n) for n in outgoing.values()) == 2


def check_generated_pdfs_read_back_intact_with_their_number(runtime) -> None:
    with runtime.sessions() as session:
        rows = session.execute(select(DocumentFile, Document).join(Document)).all()
    assert len(rows) == sum(1 for spec in demo.DOCUMENTS if spec.direction == Direction.OUTGOING)
    for file, doc in rows:
        data = b"".join(runtime.store.get(file.object_key, verify=True))
        assert hashlib.sha256(data).hexdigest() == file.sha256
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
        if shutil.which("pdftotext"):
            text = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout
            assert f"Số: {format_number(doc.number, doc.symbol)}" in text.decode()


def check_a_demo_user_logs_in_over_http(runtime, passwords: dict[str, str]) -> None:
    password = passwords["vanthu.stttt"]
    with TestClient(create_app(runtime.settings, relay_outbox=False)) as client:
        response = client.post("/auth/token", data={"username": "vanthu.stttt", "password": password})
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        listed = client.get("/documents", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200, listed.text
    numbers = {d["number_symbol"] for d in listed.json()}
    assert {"01/KH-STTTT", "02/STTTT-CĐS", "131/NQ-CP"} <= numbers


def check_procedure_dossier_carries_a_personal_id(runtime) -> None:
    with runtime.sessions() as session:
        dossier = session.scalar(select(Dossier).where(Dossier.kind == "procedure"))
    assert dossier.applicant_id == demo.APPLICANT_ID and re.fullmatch(r"\d{12}", dossier.applicant_id)
    assert dossier.applicant_id_type == "personal_id"


def check_audit_chain_verifies(runtime) -> None:
    with runtime.sessions() as session:
        report = verify_chain(session)
    assert report.ok, report


def test_a_root_with_another_identifier_layout_is_refused():
    with pytest.raises(demo.DemoError, match="000.00.00.H41"):
        demo.organ_id_for("H41.12", "00.12")
    assert demo.organ_id_for("000.00.00.G01", "46.24") == "000.46.24.G01"


def _squash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared/corpus is not beside the checkout")
def test_document_bodies_are_verbatim_corpus_excerpts():
    corpus = _squash(" ".join(p.read_text(encoding="utf-8") for p in CORPUS.glob("*.txt")))
    for spec in demo.DOCUMENTS:
        for paragraph in spec.paragraphs:
            assert _squash(paragraph) in corpus, paragraph[:80]

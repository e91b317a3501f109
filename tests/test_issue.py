"""Issuing a document: the clerk registers the number and date, they are stamped into the PDF's
form fields, and the organisation's seal signs at B-LTA; the leader's earlier signature stays
valid and the stamping counts as a permitted change."""

from __future__ import annotations

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import func, select

from docsvc.documents.models import Document, DocumentFile, Register
from docsvc.pki.trust import other_certs, trust_roots
from docsvc.signatures.models import SignatureRecord, SigningKey
from docsvc.signatures.stamping import DATE_FIELD, NUMBER_FIELD
from signing.validation import validate_pdf
from tests.support.factories import build_province, enrol_totp
from tests.support.signing import (
    PIN,
    enrol_key,
    fresh_otp,
    new_document_with_version,
    nss_db_trusting,
    pdfsig,
    shared_pki_dir,  # noqa: F401 - fixture
    signing_client,  # noqa: F401 - fixture
    version_bytes,
)


@pytest.fixture
def signed_draft(signing_client):  # noqa: F811
    """A document whose version 2 the leader signed (B-T); the clerk has a key and TOTP."""
    client = signing_client
    province = build_province(client)
    leader, clerk = province["leader"], province["clerk"]
    for person in (leader, clerk):
        enrol_totp(client, person)
        enrol_key(client, person)
    doc = new_document_with_version(client, clerk)
    signed = client.post(f"/documents/{doc}/versions/1/sign", headers=leader.headers,
                         json={"pin": PIN, "otp": fresh_otp(client, leader), "level": "B-T"})
    assert signed.status_code == 201, signed.text
    return client, province, doc


def _fields(pdf: bytes) -> dict[str, str]:
    import io

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    form = reader.root["/AcroForm"]
    return {str(f.get_object()["/T"]): str(f.get_object().get("/V", "")) for f in form["/Fields"]
            if f.get_object().get("/FT") == "/Tx"}


def test_issue_registers_stamps_and_seals_at_b_lta(signed_draft, tmp_path):
    client, province, doc = signed_draft
    clerk = province["clerk"]
    response = client.post(f"/documents/{doc}/issue", headers=clerk.headers,
                           json={"pin": PIN, "otp": fresh_otp(client, clerk), "issued_date": "2026-03-05"})
    assert response.status_code == 201, response.text
    body = response.json()
    document, signature = body["document"], body["signature"]
    assert document["status"] == "issued" and document["number"] == 1
    assert (signature["version"], signature["level"], signature["purpose"]) == (3, "B-LTA", "issue")

    issued = version_bytes(client, clerk, doc, 3)
    fields = _fields(issued)
    assert fields[NUMBER_FIELD] == f"Số: 1/{document['symbol']}"
    assert fields[DATE_FIELD].endswith("ngày 05 tháng 3 năm 2026")
    settings = client.runtime.settings
    report = validate_pdf(issued, trust_roots(settings), other_certs=other_certs(settings))
    leader_sig, seal_sig = report.signatures[0], report.signatures[1]
    assert leader_sig.indication == "TOTAL-PASSED", report.to_dict()
    assert leader_sig.modifications_permitted is True and leader_sig.suspicious_modification is None
    assert leader_sig.modification_level == "FORM_FILLING"
    assert (seal_sig.indication, seal_sig.pades_level) == ("TOTAL-PASSED", "B-LTA")
    assert seal_sig.signer.organisation == "Sở Thông tin và Truyền thông"
    assert report.indication == "TOTAL-PASSED"
    path = tmp_path / "issued.pdf"
    path.write_bytes(issued)
    poppler = pdfsig(path, nss_db_trusting(tmp_path / "nss", settings.pki_path), settings.pki_path)
    first_two = poppler.split("Signature #3")[0]
    assert first_two.count("Signature is Valid.") == 2, poppler
    with client.runtime.sessions() as session:
        seal = session.scalar(select(SigningKey).where(SigningKey.kind == "seal"))
        assert seal.protection == "server" and seal.user_id is None


def test_only_the_clerk_issues_and_a_failed_issue_keeps_the_number(signed_draft):
    client, province, doc = signed_draft
    leader, clerk = province["leader"], province["clerk"]
    refused = client.post(f"/documents/{doc}/issue", headers=leader.headers,
                          json={"pin": PIN, "otp": fresh_otp(client, leader)})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "permission_denied")
    wrong = client.post(f"/documents/{doc}/issue", headers=clerk.headers,
                        json={"pin": "000000", "otp": fresh_otp(client, clerk)})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "invalid_pin")
    with client.runtime.sessions() as session:
        assert session.get(Document, doc).registered_at is None
        assert session.scalar(select(func.count()).select_from(Register)) == 0
        assert session.scalar(select(func.count()).select_from(SignatureRecord)) == 1
        assert session.scalar(select(func.count()).select_from(DocumentFile)) == 2
    again = client.post(f"/documents/{doc}/issue", headers=clerk.headers,
                        json={"pin": PIN, "otp": fresh_otp(client, clerk)})
    assert again.status_code == 201 and again.json()["document"]["number"] == 1
    twice = client.post(f"/documents/{doc}/issue", headers=clerk.headers,
                        json={"pin": PIN, "otp": fresh_otp(client, clerk)})
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "duplicate_registration")


def test_a_version_signed_elsewhere_gets_number_and_date_in_the_seal(signing_client, tmp_path):  # noqa: F811
    """A leader may have signed the PDF outside docsvc, before docsvc could add its number/date
    fields; adding them now would break that signature. Issuing still registers the number and
    shows it, with the date, under the seal image instead of issuing silently without them."""
    import subprocess

    from docsvc.pki.defaults import default_key
    from signing.interfaces import SignatureSpec
    from signing.pades import sign_pdf
    from tests.support.signing import decree30_pdf

    client = signing_client
    settings = client.runtime.settings
    province = build_province(client)
    clerk = province["clerk"]
    enrol_totp(client, clerk)
    enrol_key(client, clerk)
    unsigned, signed = tmp_path / "draft.pdf", tmp_path / "signed-elsewhere.pdf"
    unsigned.write_bytes(decree30_pdf())
    sign_pdf(unsigned, signed, default_key(settings, "personal"), SignatureSpec(level="B-B"))
    doc = new_document_with_version(client, clerk, signed.read_bytes())

    response = client.post(f"/documents/{doc}/issue", headers=clerk.headers,
                           json={"pin": PIN, "otp": fresh_otp(client, clerk), "issued_date": "2026-03-05"})
    assert response.status_code == 201, response.text
    symbol = response.json()["document"]["symbol"]
    issued = tmp_path / "issued.pdf"
    issued.write_bytes(version_bytes(client, clerk, doc, 2))
    assert "/AcroForm" not in str(_fields_or_none(issued.read_bytes()))
    text = subprocess.run(["pdftotext", "-layout", str(issued), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert f"Số: 1/{symbol}" in text, text
    assert "ngày 05 tháng 3 năm 2026" in text, text
    report = validate_pdf(issued, trust_roots(settings), other_certs=other_certs(settings))
    assert [s.indication for s in report.signatures[:2]] == ["TOTAL-PASSED", "TOTAL-PASSED"], report.to_dict()


def _fields_or_none(pdf: bytes):
    try:
        return _fields(pdf)
    except KeyError:
        return None


def test_issuing_can_lock_the_document(signed_draft, tmp_path):
    """``lock_document``: the seal is the last signature; both signatures still pass, the audit
    event says so, and nobody can sign the issued PDF again."""
    from docsvc.audit.models import AuditEvent
    from docsvc.pki.defaults import default_key
    from signing.interfaces import SignatureSpec
    from signing.pades import DocumentLockedError, sign_pdf

    client, province, doc = signed_draft
    clerk = province["clerk"]
    response = client.post(f"/documents/{doc}/issue", headers=clerk.headers,
                           json={"pin": PIN, "otp": fresh_otp(client, clerk), "lock_document": True})
    assert response.status_code == 201, response.text
    settings = client.runtime.settings
    issued = tmp_path / "issued.pdf"
    issued.write_bytes(version_bytes(client, clerk, doc, 3))
    report = validate_pdf(issued, trust_roots(settings), other_certs=other_certs(settings))
    assert report.indication == "TOTAL-PASSED", [
        (s.field_name, s.kind, s.indication, s.sub_indication, s.modification_level, s.suspicious_modification,
         s.messages) for s in report.signatures]
    with pytest.raises(DocumentLockedError):
        sign_pdf(issued, tmp_path / "again.pdf", default_key(settings, "personal"), SignatureSpec(level="B-B"))
    assert not (tmp_path / "again.pdf").exists()
    with client.runtime.sessions() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "document.issued"))
        assert event.detail["locks_document"] is True

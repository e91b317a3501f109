"""Signing a document version over the API: own key under a PIN, confirmed by TOTP, a new
immutable version, a signature record, an audit event; every refusal changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from docsvc.audit.models import AuditEvent
from docsvc.documents.models import Document, DocumentFile
from docsvc.pki import keystore
from docsvc.pki.trust import other_certs, trust_roots
from docsvc.signatures.models import SignatureRecord, SigningKey
from signing.errors import KeyUnavailableError
from signing.keys import FileKeyBackend
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
def setup(signing_client):  # noqa: F811
    province = build_province(signing_client)
    leader = province["leader"]
    enrol_totp(signing_client, leader)
    enrol_key(signing_client, leader)
    return signing_client, province, leader


def _counts(client) -> tuple[int, int]:
    with client.runtime.sessions() as session:
        return (session.scalar(select(func.count()).select_from(DocumentFile)),
                session.scalar(select(func.count()).select_from(SignatureRecord)))


def _sign(client, person, doc, seq=1, **body):
    payload = {"pin": PIN, "otp": fresh_otp(client, person), **body}
    return client.post(f"/documents/{doc}/versions/{seq}/sign", json=payload, headers=person.headers)


def test_enrolled_key_is_only_stored_under_the_pin(setup):
    client, _, leader = setup
    with client.runtime.sessions() as session:
        key = session.scalar(select(SigningKey).where(SigningKey.user_id == leader.id))
        assert key.protection == "pin"
        passphrase = keystore.pin_passphrase(client.runtime.settings, leader.id, PIN)
        cert = FileKeyBackend.from_pkcs12(key.pkcs12, passphrase).certificate
        assert cert.subject.native["common_name"] == "Nguyễn Văn An"
        uid = cert.subject.native["user_id"]
        # Neither the bare PIN nor the pepper alone opens it: a stolen database is not enough.
        for wrong in (PIN, keystore.pin_passphrase(client.runtime.settings, leader.id, "000000")):
            with pytest.raises(KeyUnavailableError):
                FileKeyBackend.from_pkcs12(key.pkcs12, wrong)
        serial = key.serial
    assert uid.startswith("CCCD:") and len(uid) == 17
    # The development PKI's unencrypted copy of the key is gone.
    assert not (client.runtime.settings.pki_path / "issued" / f"{serial}.key.pem").exists()
    assert (client.runtime.settings.pki_path / "issued" / f"{serial}.crt").exists()


def test_sign_at_b_lt_makes_a_valid_new_version(setup, tmp_path):
    client, _, leader = setup
    doc = new_document_with_version(client, leader)
    response = _sign(client, leader, doc, level="B-LT", reason="Phê duyệt")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["version"], body["level"], body["profile"], body["purpose"]) == (2, "B-LT", "personal", "sign")

    signed = version_bytes(client, leader, doc, 2)
    assert version_bytes(client, leader, doc, 1) != signed  # version 1 untouched, a new one added
    settings = client.runtime.settings
    report = validate_pdf(signed, trust_roots(settings), other_certs=other_certs(settings))
    sig = report.signatures[-1]
    assert (sig.indication, sig.pades_level, sig.signer.name) == ("TOTAL-PASSED", "B-LT", "Nguyễn Văn An")
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    poppler = pdfsig(path, nss_db_trusting(tmp_path / "nss", settings.pki_path), settings.pki_path)
    assert "Signature is Valid." in poppler and "Certificate is Trusted." in poppler

    with client.runtime.sessions() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "document.signed"))
        assert event.detail["version"] == 2 and event.detail["level"] == "B-LT"


@pytest.mark.parametrize("case", ["wrong_pin", "wrong_otp", "replayed_otp", "other_org", "unknown_version"])
def test_refusals_change_nothing(setup, case):
    client, province, leader = setup
    doc = new_document_with_version(client, leader)
    if case == "replayed_otp":
        code = fresh_otp(client, leader)
        ok = client.post(f"/documents/{doc}/versions/1/sign", json={"pin": PIN, "otp": code, "level": "B-B"},
                         headers=leader.headers)
        assert ok.status_code == 201
    before = _counts(client)
    payload = {"pin": PIN, "otp": fresh_otp(client, leader), "level": "B-B"}
    headers, seq = leader.headers, 1
    if case == "wrong_pin":
        payload["pin"] = "000000"
    elif case == "wrong_otp":
        payload["otp"] = "000000" if payload["otp"] != "000000" else "111111"
    elif case == "replayed_otp":
        payload["otp"], seq = code, 2  # the latest version: only the replayed code is wrong
    elif case == "other_org":
        other = province["other_clerk"]
        enrol_totp(client, other)
        enrol_key(client, other)
        payload["otp"] = fresh_otp(client, other)
        headers = other.headers
    elif case == "unknown_version":
        seq = 9
    response = client.post(f"/documents/{doc}/versions/{seq}/sign", json=payload, headers=headers)
    expected = {"wrong_pin": (403, "invalid_pin"), "wrong_otp": (403, "invalid_otp"),
                "replayed_otp": (403, "invalid_otp"), "other_org": (404, "not_found"),
                "unknown_version": (404, "not_found")}[case]
    assert (response.status_code, response.json()["error"]["code"]) == expected
    assert _counts(client) == before


@pytest.mark.parametrize("wrong", ["pin", "otp"])
def test_repeated_wrong_pins_or_codes_lock_the_key_and_are_audited(setup, wrong):
    client, _, leader = setup
    doc = new_document_with_version(client, leader)
    bad = {"pin": "999999"} if wrong == "pin" else {"otp": "000000"}
    codes = []
    for _ in range(3):  # pin_max_failures=3 in the test settings
        payload = {"pin": PIN, "otp": "111111", "level": "B-B", **bad}
        response = client.post(f"/documents/{doc}/versions/1/sign", json=payload, headers=leader.headers)
        codes.append(response.json()["error"]["code"])
    assert codes == [f"invalid_{wrong}", f"invalid_{wrong}", "signing_key_locked"]
    locked = _sign(client, leader, doc, level="B-B")  # even the right PIN and code are refused now
    assert (locked.status_code, locked.json()["error"]["code"]) == (423, "signing_key_locked")
    with client.runtime.sessions() as session:
        failures = session.scalars(select(AuditEvent).where(AuditEvent.action == f"signing.{wrong}_failed")).all()
    assert [e.detail["locked"] for e in failures] == [False, False, True]


def test_signing_needs_an_enrolled_key(setup):
    client, province, _ = setup
    specialist = province["specialist"]
    enrol_totp(client, specialist)
    doc = new_document_with_version(client, specialist)
    response = client.post(f"/documents/{doc}/versions/1/sign", json={"pin": PIN, "otp": "123456"},
                           headers=specialist.headers)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "no_signing_key")


def test_short_pin_is_refused_at_enrolment(setup):
    client, province, _ = setup
    response = client.post("/signing/keys", json={"pin": "123"}, headers=province["clerk"].headers)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_failed")


def test_only_the_latest_version_of_an_unissued_document_can_be_signed(setup):
    """Signing an older version would fork the document and the fork would be lost at issue."""
    client, province, leader = setup
    doc = new_document_with_version(client, leader)
    assert _sign(client, leader, doc, seq=1, level="B-B").status_code == 201  # → version 2
    before = _counts(client)
    stale = _sign(client, leader, doc, seq=1, level="B-B")
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "version_conflict")
    assert stale.json()["error"]["detail"]["latest"] == 2
    assert _counts(client) == before
    with client.runtime.sessions() as session:
        session.get(Document, doc).status = "issued"
        session.commit()
    issued = _sign(client, leader, doc, seq=2, level="B-B")
    assert (issued.status_code, issued.json()["error"]["code"]) == (409, "invalid_state")
    assert _counts(client) == before


def test_a_damaged_stored_pdf_is_refused_with_a_stable_code(setup):
    """The upload checks only the header: a damaged body must give 422, not 500, and change nothing."""
    client, _, leader = setup
    damaged = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    doc = new_document_with_version(client, leader, pdf=damaged)
    before = _counts(client)
    response = _sign(client, leader, doc, level="B-B")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "signing_failed")
    assert _counts(client) == before


@pytest.mark.parametrize("profile", ["organisation", "attachment", "copy"])
def test_a_personal_key_makes_no_agency_signature(setup, profile):
    """Seal, attachment and copy appearances are the organisation's signature (Decree 30 Art. 32-33):
    a leader's own key may not produce them, and the refusal changes nothing."""
    client, _, leader = setup
    doc = new_document_with_version(client, leader)
    before = _counts(client)
    response = _sign(client, leader, doc, level="B-B", profile=profile)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["detail"]["reason"]) == ("invalid_signature_request", "use_issue")
    assert _counts(client) == before


def _widget_rects(pdf: bytes) -> list[tuple[float, ...]]:
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    return [tuple(round(float(v), 1) for v in sig.sig_field["/Rect"]) for sig in reader.embedded_signatures]


def test_placement_by_explicit_box_or_anchor_text(setup):
    """A caller may place the signature itself: an explicit box lands exactly there; an anchor text
    that is not on the page is a clear 422 (never silently moved to a fallback corner)."""
    client, _, leader = setup
    doc = new_document_with_version(client, leader)
    missing = _sign(client, leader, doc, level="B-B", anchor_text="Không có trên trang")
    assert missing.status_code == 422, missing.text
    assert missing.json()["error"]["detail"]["reason"] == "anchor_not_found"
    assert _counts(client)[1] == 0

    boxed = _sign(client, leader, doc, level="B-B", box=[100, 200, 260, 280], page=0)
    assert boxed.status_code == 201, boxed.text
    assert _widget_rects(version_bytes(client, leader, doc, 2)) == [(100.0, 200.0, 260.0, 280.0)]

    # A template that prints the name differently from the certificate ("Nguyễn Văn An"): the
    # default finds no name and falls back to a fixed corner; the anchor puts it over that name.
    from docsvc.signatures.specs import FALLBACK_BOXES
    from tests.support.signing import decree30_pdf

    printed = decree30_pdf(signer="Ng. Văn An")
    fallback_doc = new_document_with_version(client, leader, printed)
    assert _sign(client, leader, fallback_doc, level="B-B").status_code == 201
    assert _widget_rects(version_bytes(client, leader, fallback_doc, 2)) == [FALLBACK_BOXES["personal"]]
    anchored_doc = new_document_with_version(client, leader, printed)
    anchored = _sign(client, leader, anchored_doc, level="B-B", anchor_text="Ng. Văn An")
    assert anchored.status_code == 201, anchored.text
    (rect,) = _widget_rects(version_bytes(client, leader, anchored_doc, 2))
    assert rect != FALLBACK_BOXES["personal"] and rect[1] > 150  # up the page, just above the printed name

@pytest.mark.parametrize("box", [[1, 2, 3], ["a", 1, 2, 3], None])
def test_malformed_placement_is_a_validation_error(setup, box):
    client, _, leader = setup
    doc = new_document_with_version(client, leader)
    body = {"box": box} if box is not None else {"page": "last"}
    response = _sign(client, leader, doc, level="B-B", **body)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_failed")
    assert _counts(client)[1] == 0


@pytest.mark.parametrize("raw", ['[0, 0, Infinity, 10]', '[0, 0, NaN, 10]', '[0, 0, 1e9, 10]'])
def test_a_box_beyond_any_page_is_a_validation_error(setup, raw):
    """JSON parsers accept Infinity and NaN: they, and boxes larger than any PDF page, are a 422."""
    client, _, leader = setup
    doc = new_document_with_version(client, leader)
    body = f'{{"pin": "{PIN}", "otp": "{fresh_otp(client, leader)}", "level": "B-B", "box": {raw}}}'
    response = client.post(f"/documents/{doc}/versions/1/sign", content=body,
                           headers={**leader.headers, "Content-Type": "application/json"})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_failed")
    assert _counts(client)[1] == 0

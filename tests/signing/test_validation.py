"""Validation verdicts in EN 319 102-1 terms, for the tampering cases that matter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signing.interfaces import SignatureSpec
from signing.pades import sign_pdf
from signing.validation import validate_pdf
from tests.support.pdfs import append_content_change, tiny_pdf


@pytest.fixture
def signed(tmp_path, rsa_key) -> Path:
    src = tmp_path / "in.pdf"
    src.write_bytes(tiny_pdf("Quyet dinh so 12"))
    out = tmp_path / "signed.pdf"
    sign_pdf(src, out, rsa_key, SignatureSpec(reason="Phê duyệt"))
    return out


def _flip_byte_in_signed_range(path: Path) -> None:
    data = bytearray(path.read_bytes())
    position = data.index(b"Quyet dinh so 12")
    data[position] ^= 0x01  # 'Q' -> 'P': one changed byte inside the first signed range
    path.write_bytes(bytes(data))


def test_report_details_and_json(signed, pki):
    report = validate_pdf(signed, [pki.root.asn1])
    body = json.loads(json.dumps(report.to_dict()))
    assert body["summary"] == {"indication": "TOTAL-PASSED", "sub_indication": None, "signature_count": 1,
                               "revisions": 2, "passed": 1, "failed": 0, "indeterminate": 0}
    sig = body["signatures"][0]
    assert sig["signer"]["name"] == "Nguyễn Văn An"
    assert sig["signer"]["serial"] == format(pki.rsa_signer.cert.serial_number, "x")
    assert "Test Issuing CA Nghệ An" in sig["signer"]["issuer"]
    assert sig["intact"] and sig["valid"] and sig["trusted"]
    assert sig["signing_time"] and sig["timestamp_time"] is None
    assert (sig["modification_level"], sig["modifications_permitted"]) == ("NONE", True)


def test_one_changed_byte_is_a_hash_failure(signed, pki, pdfsig):
    _flip_byte_in_signed_range(signed)
    output = pdfsig(signed)
    assert "Signature is Valid." not in output
    assert "Digest Mismatch" in output or "Invalid" in output
    report = validate_pdf(signed, [pki.root.asn1])
    assert (report.indication, report.sub_indication) == ("TOTAL-FAILED", "HASH_FAILURE")
    assert report.signatures[0].intact is False


def test_content_change_after_signing_is_flagged(signed, pki):
    append_content_change(signed)
    report = validate_pdf(signed, [pki.root.asn1])
    sig = report.signatures[0]
    assert report.indication != "TOTAL-PASSED"
    assert sig.intact and sig.valid  # the signed revision itself is untouched ...
    assert sig.coverage == "ENTIRE_REVISION"
    assert sig.suspicious_modification and sig.modifications_permitted is False  # ... but the update is not


def test_untrusted_root_is_indeterminate(signed, pki, pdfsig, tmp_path):
    report = validate_pdf(signed, [pki.other_root.asn1])
    assert (report.indication, report.sub_indication) == ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")
    assert report.signatures[0].intact and report.signatures[0].valid
    assert report.signatures[0].trusted is False


def test_no_trust_roots_at_all(signed):
    report = validate_pdf(signed, [])
    assert report.indication == "INDETERMINATE"


def test_unsigned_pdf_has_no_signatures(tmp_path, pki):
    path = tmp_path / "plain.pdf"
    path.write_bytes(tiny_pdf())
    report = validate_pdf(path, [pki.root.asn1])
    assert report.signatures == () and report.indication == "INDETERMINATE"
    assert report.to_dict()["summary"]["sub_indication"] == "NO_SIGNATURE_FOUND"


def test_corrupted_cms_is_a_result_not_an_exception(signed, pki):
    data = bytearray(signed.read_bytes())
    start = data.index(b"/Contents <") + len(b"/Contents <")
    data[start:start + 40] = b"0" * 40  # smash the CMS header inside the hole (outside the signed ranges)
    signed.write_bytes(bytes(data))
    report = validate_pdf(signed, [pki.root.asn1])
    assert report.indication == "TOTAL-FAILED"
    assert report.sub_indication in {"FORMAT_FAILURE", "SIG_CRYPTO_FAILURE"}

"""Validation verdicts in EN 319 102-1 terms, for the tampering cases that matter."""

from __future__ import annotations

import io
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
                               "revisions": 2, "passed": 1, "failed": 0, "indeterminate": 0, "chains_trusted": 1,
                               "revocation": {"good": 0, "revoked": 0, "unknown": 1, "not_checked": 0}}
    sig = body["signatures"][0]
    assert sig["signer"]["name"] == "Nguyễn Văn An"
    assert sig["signer"]["serial"] == format(pki.rsa_signer.cert.serial_number, "x")
    assert "Test Issuing CA Nghệ An" in sig["signer"]["issuer"]
    assert sig["intact"] and sig["valid"] and sig["trusted"]
    assert sig["signing_time"] and sig["timestamp_time"] is None
    assert (sig["modification_level"], sig["modifications_permitted"]) == ("NONE", True)
    # The chain and the revocation status are reported apart: this PKI publishes no OCSP or CRL,
    # so the chain is trusted while revocation stays unknown (soft-fail lets it pass).
    assert sig["chain_trusted"] is True and "Test Root CA Việt Nam" in sig["trust_root"]
    assert sig["revocation"]["status"] == "unknown" and sig["revocation"]["source"] == "none"
    assert sig["revocation"]["checked_at"]


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
    assert report.signatures[0].chain_trusted is False and report.signatures[0].trust_root is None
    assert report.signatures[0].revocation.status == "not_checked"


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


# --- signing/speedups.py: the fast readers must give pyHanko's and asn1crypto's own answers ----

HEX_CASES = [b"<48656c6c6f>", b"<3082 01\n0a\r\n\t0b\x0c\x00ff>", b"<ABC>", b"<>", b"<  >",
             b"<4142 % a comment 4344\n4546>", b"<41zz42>", b"<4142", b"<41\x8042>", b"<" + b"0a" * 40000 + b">",
             b"<fe ff 00 4e 1e 6f>"]  # a UTF-16BE text string


def _read_hex_both_ways(data: bytes):
    from pyhanko.pdf_utils.misc import PdfError

    from signing import speedups

    outcomes = []
    for reader in (speedups._pyhanko_read_hex, speedups.read_hex_string_from_stream):
        stream = io.BytesIO(data + b" /Next")
        try:
            value = reader(stream)
            outcomes.append((type(value), value, stream.tell()))
        except PdfError as exc:
            outcomes.append((type(exc), str(exc)))
    return outcomes


@pytest.mark.parametrize("data", HEX_CASES, ids=range(len(HEX_CASES)))
def test_fast_hex_reader_matches_pyhanko(data):
    ours, theirs = _read_hex_both_ways(data)[::-1]
    assert ours == theirs


def test_fast_hex_reader_is_the_one_pyhanko_uses():
    from pyhanko.pdf_utils import generic

    from signing import speedups

    assert generic.read_hex_string_from_stream is speedups.read_hex_string_from_stream
    parsed = generic.read_object(io.BytesIO(b"[<4142> (x) <c3>]"), None)
    assert list(parsed) == ["AB", "x", "Ã"]  # pdf_string decodes PDFDocEncoding, as pyHanko does


@pytest.mark.parametrize("value", ["Nguyễn Văn An", "  Sở  Thông tin\u00a0và Truyền thông ", "ÅNGSTRÖM", "",
                                   "Test Issuing CA Nghệ An"])
def test_memoised_name_preparation_matches_asn1crypto(value):
    from asn1crypto import x509 as asn1_x509

    from signing import speedups

    assert speedups.ldap_string_prep(value) == speedups._asn1crypto_string_prep(None, value)
    a = asn1_x509.Name.build({"common_name": value, "country_name": "VN"})
    b = asn1_x509.Name.build({"common_name": value.upper(), "country_name": "VN"})
    c = asn1_x509.Name.build({"common_name": value + " khác", "country_name": "VN"})
    assert a == b and a.hashable == b.hashable  # caseless, as RFC 5280 wants
    assert a != c and a.hashable != c.hashable


def test_repeated_validations_keep_distinguishing_signers(tmp_path, pki, rsa_key, ec_key):
    """Name preparation is memoised across validations: two signers under one CA must still be
    told apart, and a foreign root must still not be trusted, however often we validate."""
    paths = {}
    for label, key in (("rsa", rsa_key), ("ec", ec_key)):
        src = tmp_path / f"{label}-in.pdf"
        src.write_bytes(tiny_pdf("Quyet dinh so 12"))
        paths[label] = tmp_path / f"{label}.pdf"
        sign_pdf(src, paths[label], key, SignatureSpec(reason="Phê duyệt"))
    for _ in range(3):
        for label, name in (("rsa", "Nguyễn Văn An"), ("ec", "Trần Thị Bích Ngọc")):
            report = validate_pdf(paths[label], [pki.root.asn1])
            assert report.indication == "TOTAL-PASSED" and report.signatures[0].signer.name == name
            assert validate_pdf(paths[label], [pki.other_root.asn1]).sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"

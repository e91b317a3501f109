"""B-B, B-T, B-LT and B-LTA against the development PKI's real TSA, OCSP responder and CRLs served
on loopback; checked by our validator and by pdfsig with an NSS database trusting the dev root."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from signing.devpki import utcnow
from signing.errors import SigningError
from signing.interfaces import PADES_LEVELS, SignatureSpec
from signing.keys import DigestSigningBackend, FileKeyBackend, Pkcs11KeyBackend
from signing.pades import finish_signature, prepare_signature, sign_pdf
from signing.trust import TrustServices, dev_trust
from signing.validation import validate_pdf
from tests.signing.conftest import SOFTHSM_MODULE, run_pdfsig
from tests.support.pdfs import append_content_change, tiny_pdf

ORG = "Sở Tư pháp tỉnh Quảng Bình"


@pytest.fixture(scope="module")
def trust(dev_pki, dev_pki_served, tmp_path_factory) -> TrustServices:
    return TrustServices(dev_trust(dev_pki, tmp_path_factory.mktemp("revinfo-cache")))


@pytest.fixture(scope="module")
def short_lived(dev_pki):
    """A certificate valid for one day only, so validating "three days later" sees it expired."""
    return dev_pki.issue_personal("Hoàng Văn Minh", "001203009001", ORG, valid_days=1,
                                  not_before=utcnow() - timedelta(hours=1))


@pytest.fixture(scope="module")
def signer(short_lived) -> FileKeyBackend:
    return FileKeyBackend(short_lived.private_key, short_lived.certificate, short_lived.chain)


@pytest.fixture(scope="module")
def seal(dev_pki) -> FileKeyBackend:
    """A second signer (another short-lived certificate), who signs after ``signer``."""
    issued = dev_pki.issue_personal("Phạm Thị Lan", "001203009003", ORG, valid_days=1,
                                    not_before=utcnow() - timedelta(hours=1))
    return FileKeyBackend(issued.private_key, issued.certificate, issued.chain)


@pytest.fixture
def doc(tmp_path) -> Path:
    path = tmp_path / "in.pdf"
    path.write_bytes(tiny_pdf("Quyet dinh ve LTV"))
    return path


def _pdfsig_accepts(report: str, level: str) -> None:
    """pdfsig verifies the signature and trusts its chain; it lists a B-LTA document timestamp but
    cannot verify that kind (poppler: "Unable to validate this type of signature")."""
    assert report.count("Signature #") == (2 if level == "B-LTA" else 1), report
    first = report.split("Signature #2")[0]
    assert "Signature is Valid." in first and "Certificate is Trusted." in first, report
    if level == "B-LTA":
        assert "Signer Certificate Common Name: TSA" in report.split("Signature #2")[1]


def _sign(doc: Path, out: Path, key, level: str, trust: TrustServices) -> Path:
    sign_pdf(doc, out, key, SignatureSpec(level=level, reason="Phê duyệt"), timestamper=trust.timestamper(),
             validation_context=trust.signing_validation_context() if level in ("B-LT", "B-LTA") else None)
    return out


@pytest.mark.parametrize("level", PADES_LEVELS)
def test_every_level_passes_pdfsig_and_ours(level, doc, tmp_path, signer, trust, dev_nss):
    out = _sign(doc, tmp_path / "signed.pdf", signer, level, trust)

    pdfsig = run_pdfsig(out, dev_nss)
    _pdfsig_accepts(pdfsig, level)
    report = validate_pdf(out, trust=trust)
    assert report.indication == "TOTAL-PASSED", report.to_dict()
    sig = report.signatures[0]
    assert sig.pades_level == level
    assert sig.timestamp_valid is (None if level == "B-B" else True)
    data = out.read_bytes()
    assert (b"/DSS" in data) is (level in ("B-LT", "B-LTA"))
    kinds = [s.kind for s in report.signatures]
    assert kinds == (["signature", "document-timestamp"] if level == "B-LTA" else ["signature"])


@pytest.mark.parametrize("level, passes", [("B-T", False), ("B-LT", True), ("B-LTA", True)])
def test_expired_certificate_with_earlier_timestamp(level, passes, doc, tmp_path, signer, trust, short_lived,
                                                    dev_server):
    out = _sign(doc, tmp_path / "signed.pdf", signer, level, trust)
    later = short_lived.certificate.not_valid_after_utc + timedelta(days=2)
    hits = len(dev_server.hits)

    report = validate_pdf(out, trust=trust, validation_time=later)

    assert len(dev_server.hits) == hits, "validation in the future must use embedded data only"
    sig = report.signatures[0]
    if passes:
        assert (report.indication, sig.pades_level) == ("TOTAL-PASSED", level)
        assert any("proven by the signature timestamp" in m for m in sig.messages)
    else:  # B-T carries no revocation data: nothing proves the chain was good back then
        assert sig.indication == "INDETERMINATE" and sig.sub_indication == "OUT_OF_BOUNDS_NO_POE"


# --- several signatures: each one's level rests on the validation data added for *it* ------------

def _sign_twice(doc: Path, tmp_path: Path, first, first_level: str, second, second_level: str,
                trust: TrustServices) -> Path:
    once = _sign(doc, tmp_path / "once.pdf", first, first_level, trust)
    return _sign(once, tmp_path / "twice.pdf", second, second_level, trust)


@pytest.mark.parametrize("first_level, second_level, expected", [
    # The B-LTA document timestamp also covers the first signature's DSS data: by EN 319 142-1
    # that makes the first signature B-LTA too (EU DSS reports it so); the second one was read
    # as B-T before, because only the first revision holding a DSS was considered.
    ("B-LT", "B-LTA", ("B-LTA", "B-LTA")),
    ("B-LT", "B-LT", ("B-LT", "B-LT")),
    # The inherited DSS was there before the second signature: it proves nothing about it.
    ("B-LT", "B-T", ("B-LT", "B-T")),
    # A DSS added later for another signer proves nothing about the first signature.
    ("B-T", "B-LT", ("B-T", "B-LT")),
])
def test_each_signature_gets_its_own_level(first_level, second_level, expected, doc, tmp_path, signer, seal,
                                           trust):
    out = _sign_twice(doc, tmp_path, signer, first_level, seal, second_level, trust)

    report = validate_pdf(out, trust=trust)

    assert report.indication == "TOTAL-PASSED", report.to_dict()
    signatures = [s for s in report.signatures if s.kind == "signature"]
    assert [s.signer.name for s in signatures] == ["Hoàng Văn Minh", "Phạm Thị Lan"]
    assert tuple(s.pades_level for s in signatures) == expected
    assert len(report.signatures) == (3 if second_level == "B-LTA" else 2)


def test_later_lta_seal_passes_after_its_certificate_expired(doc, tmp_path, signer, seal, trust, short_lived,
                                                              dev_server):
    """Both certificates have expired; the B-LT signature and the B-LTA seal stand on the
    revocation data the document holds for each, as of the time their timestamps prove."""
    out = _sign_twice(doc, tmp_path, signer, "B-LT", seal, "B-LTA", trust)
    later = max(short_lived.certificate.not_valid_after_utc, seal.certificate.not_valid_after) + timedelta(days=2)
    hits = len(dev_server.hits)

    report = validate_pdf(out, trust=trust, validation_time=later)

    assert len(dev_server.hits) == hits, "validation in the future must use embedded data only"
    assert report.indication == "TOTAL-PASSED", report.to_dict()
    first, second = (s for s in report.signatures if s.kind == "signature")
    assert second.signer.name == "Phạm Thị Lan" and second.pades_level == "B-LTA"
    for sig in (first, second):
        assert any("proven by the signature timestamp" in m for m in sig.messages), sig
        assert (sig.revocation.status, sig.revocation.source) == ("good", "embedded")
        assert sig.revocation.checked_at == sig.timestamp_time


def test_revoked_certificate_fails(dev_pki, doc, tmp_path, trust, dev_nss):
    issued = dev_pki.issue_personal("Lê Thị Thu Hồi", "001203009002", ORG)
    dev_pki.revoke(issued.serial, reason="key_compromise")
    key = FileKeyBackend(issued.private_key, issued.certificate, issued.chain)

    out = _sign(doc, tmp_path / "revoked.pdf", key, "B-T", trust)
    report = validate_pdf(out, trust=trust)
    assert (report.indication, report.sub_indication) == ("TOTAL-FAILED", "REVOKED")
    assert "Certificate has been Revoked." in run_pdfsig(out, dev_nss)  # pdfsig asks our OCSP responder too
    # B-LT needs the signer's certificate to validate now: refused, and no file is left behind.
    with pytest.raises(SigningError, match="could not be validated"):
        _sign(doc, tmp_path / "lt.pdf", key, "B-LT", trust)
    assert not (tmp_path / "lt.pdf").exists()


def test_one_changed_byte_in_lta_is_invalid(doc, tmp_path, signer, trust, dev_nss):
    out = _sign(doc, tmp_path / "lta.pdf", signer, "B-LTA", trust)
    data = bytearray(out.read_bytes())
    data[data.index(b"Quyet dinh ve LTV")] ^= 0x01
    out.write_bytes(bytes(data))
    report = validate_pdf(out, trust=trust)
    assert report.indication == "TOTAL-FAILED"
    assert report.signatures[0].sub_indication == "HASH_FAILURE"
    assert "Signature is Valid." not in run_pdfsig(out, dev_nss)


def test_content_change_after_lta_is_flagged(doc, tmp_path, signer, trust):
    out = _sign(doc, tmp_path / "lta.pdf", signer, "B-LTA", trust)
    append_content_change(out)
    report = validate_pdf(out, trust=trust)
    assert report.indication != "TOTAL-PASSED"
    first = report.signatures[0]
    assert first.intact and first.valid and first.modifications_permitted is False


# --- two-phase signing to B-LT/B-LTA, for every kind of backend --------------------------------

@pytest.fixture(params=["file", "pkcs11", "digest"])
def two_phase_key(request, dev_pki, short_lived, softhsm_token, tmp_path):
    if request.param == "file":
        yield FileKeyBackend(short_lived.private_key, short_lived.certificate, short_lived.chain)
    elif request.param == "digest":
        yield DigestSigningBackend.wrapping(FileKeyBackend(short_lived.private_key, short_lived.certificate,
                                                           short_lived.chain))
    else:
        _import_key(softhsm_token, short_lived, tmp_path)
        with Pkcs11KeyBackend(SOFTHSM_MODULE, softhsm_token.label, softhsm_token.pin, "ltv-signer",
                              cert=_asn1(short_lived.certificate), chain=list(dev_pki.chain[:1])) as hsm:
            yield hsm


def _asn1(cert):
    from asn1crypto import x509

    return x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _import_key(token, issued, tmp_path) -> None:
    import os

    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    lib = pkcs11.lib(SOFTHSM_MODULE)
    with lib.get_token(token_label=token.label).open(user_pin=token.pin) as session:
        if list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: "ltv-signer"})):
            return
    pk8 = tmp_path / "ltv.pk8"
    pk8.write_bytes(issued.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    subprocess.run(["softhsm2-util", "--import", str(pk8), "--token", token.label, "--label", "ltv-signer",
                    "--id", "09", "--pin", token.pin], check=True, capture_output=True,
                   env={**os.environ, **token.env})
    pk8.unlink()


@pytest.mark.parametrize("level", ["B-LT", "B-LTA"])
def test_two_phase_long_term(level, two_phase_key, doc, tmp_path, dev_pki, trust, dev_nss):
    chain = list(dev_pki.chain[:1])
    prepared = prepare_signature(doc, two_phase_key.certificate, chain, SignatureSpec(level=level),
                                 timestamper=trust.timestamper())
    signature = two_phase_key.sign_digest(prepared.to_be_signed_digest, prepared.digest_algorithm)
    out = tmp_path / "two-phase.pdf"
    finish_signature(prepared, signature, out, timestamper=trust.timestamper(),
                     validation_context=trust.signing_validation_context())

    report = validate_pdf(out, trust=trust)
    assert report.indication == "TOTAL-PASSED", report.to_dict()
    assert report.signatures[0].pades_level == level
    _pdfsig_accepts(run_pdfsig(out, dev_nss), level)


def test_two_phase_long_term_needs_a_validation_context(doc, tmp_path, signer, dev_pki, trust):
    prepared = prepare_signature(doc, signer.certificate, list(dev_pki.chain[:1]), SignatureSpec(level="B-LT"),
                                 timestamper=trust.timestamper())
    with pytest.raises(SigningError, match="validation context"):
        finish_signature(prepared, signer.sign_digest(prepared.to_be_signed_digest, "sha256"), tmp_path / "o.pdf",
                         timestamper=trust.timestamper())
    assert not (tmp_path / "o.pdf").exists()

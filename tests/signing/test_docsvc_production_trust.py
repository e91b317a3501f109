"""docsvc with its development PKI switched off, as in production: B-T and B-LTA get their
timestamp from the configured TSA over HTTP, revocation data is fetched online (here: the
loopback PKI server standing in for a real CA) and cached on disk, trust comes only from the
configured root files, and no development PKI is created on the way."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from docsvc import errors
from docsvc.pki.service import signing_trust
from docsvc.pki.trust import other_certs, trust_roots
from docsvc.settings import Settings
from signing.devpki import DevPki
from signing.interfaces import SignatureSpec
from signing.keys import FileKeyBackend
from signing.pades import sign_pdf
from signing.validation import validate_pdf
from tests.support.pdfs import tiny_pdf


def _production_settings(tmp_path, **signing) -> Settings:
    return Settings(data_dir=tmp_path / "data", signing={"use_dev_pki": False, **signing})


def _signer(dev_pki, personal_id: str) -> FileKeyBackend:
    issued = dev_pki.issue_personal("Lê Thị Hoa", personal_id, "Sở Tư pháp")
    return FileKeyBackend(issued.private_key, issued.certificate, issued.chain)


def test_b_lta_with_the_configured_tsa_roots_and_online_revocation(dev_pki, dev_pki_served, dev_server, tmp_path):
    root = tmp_path / "ca-roots.pem"
    root.write_bytes(dev_pki.root.cert.public_bytes(serialization.Encoding.PEM))
    settings = _production_settings(tmp_path, trust_roots=[root], tsa_url=f"{dev_pki_served}/pki/tsa")
    key = _signer(dev_pki, "001203004242")
    (tmp_path / "in.pdf").write_bytes(tiny_pdf("Quyet dinh"))
    hits_before = len(dev_server.hits)

    trust = signing_trust(settings, "B-LTA", key.certificate)
    sign_pdf(tmp_path / "in.pdf", tmp_path / "out.pdf", key, SignatureSpec(level="B-LTA"),
             timestamper=trust.timestamper, validation_context=trust.validation_context)

    asked = dev_server.hits[hits_before:]
    # the signature timestamp and the document timestamp (pyHanko may ask once more to size the token)
    assert asked.count("/pki/tsa") >= 2
    assert any(path.startswith("/pki/ocsp") or path.endswith(".crl") or path == "/pki/crl" for path in asked)
    assert list(settings.revocation_cache_path.glob("*.json")), "fetched answers are cached on disk"
    assert not (settings.pki_path / DevPki.INDEX).exists(), "production never creates a development PKI"
    roots = trust_roots(settings)
    assert [r.sha256 for r in roots] == [dev_pki.trust_root.sha256] and other_certs(settings) == ()
    report = validate_pdf(tmp_path / "out.pdf", roots)
    signature = report.signatures[0]
    assert (report.indication, signature.pades_level) == ("TOTAL-PASSED", "B-LTA"), report.to_dict()


def test_an_untrusted_root_is_not_trusted_by_configuration(dev_pki, dev_pki_served, tmp_path):
    """Only the configured roots count: a signature from the dev PKI is not trusted by a
    production deployment that configured another CA's root."""
    other = DevPki.init(tmp_path / "other-ca", base_url="http://127.0.0.1:9", ca_key_type="p256")
    root = tmp_path / "other-root.pem"
    root.write_bytes(other.root.cert.public_bytes(serialization.Encoding.PEM))
    settings = _production_settings(tmp_path, trust_roots=[root], tsa_url=f"{dev_pki_served}/pki/tsa")
    key = _signer(dev_pki, "001203004243")
    (tmp_path / "in.pdf").write_bytes(tiny_pdf("Quyet dinh"))
    trust = signing_trust(settings, "B-T", key.certificate)
    sign_pdf(tmp_path / "in.pdf", tmp_path / "out.pdf", key, SignatureSpec(level="B-T"),
             timestamper=trust.timestamper)
    report = validate_pdf(tmp_path / "out.pdf", trust_roots(settings))
    assert report.indication != "TOTAL-PASSED", report.to_dict()


@pytest.mark.parametrize("level", ["B-T", "B-LT", "B-LTA"])
def test_no_tsa_configured_is_signing_unavailable(tmp_path, dev_pki, level):
    key = _signer(dev_pki, "001203004244")
    with pytest.raises(errors.SigningUnavailableError, match="tsa_url"):
        signing_trust(_production_settings(tmp_path), level, key.certificate)
    assert signing_trust(_production_settings(tmp_path), "B-B", key.certificate).timestamper is None

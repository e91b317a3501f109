"""Production trust configuration: certificate loading, the TSA, and the on-disk cache of fetched
OCSP/CRL answers, proven by counting requests on the loopback PKI server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from signing.errors import TrustConfigError
from signing.interfaces import SignatureSpec
from signing.keys import FileKeyBackend
from signing.pades import sign_pdf
from signing.trust import TrustConfig, TrustServices, dev_trust, load_certificates
from signing.validation import validate_pdf
from tests.support.pdfs import tiny_pdf

REVINFO_PATHS = ("/pki/ocsp", "/pki/crl", "/pki/root-ca.crl")


def _revinfo_hits(server) -> int:
    return sum(1 for path in server.hits if path in REVINFO_PATHS or path.startswith("/pki/ocsp/"))


@pytest.fixture(scope="module")
def signed_bt(dev_pki, dev_pki_served, tmp_path_factory) -> Path:
    """A B-T signature: it carries no revocation data, so validating it has to fetch some."""
    issued = dev_pki.issue_personal("Phan Thị Lan", "001203009101", "Sở Y tế tỉnh Huế")
    key = FileKeyBackend(issued.private_key, issued.certificate, issued.chain)
    directory = tmp_path_factory.mktemp("trust")
    (directory / "in.pdf").write_bytes(tiny_pdf("Cong van"))
    trust = TrustServices(dev_trust(dev_pki))
    sign_pdf(directory / "in.pdf", directory / "bt.pdf", key, SignatureSpec(level="B-T"),
             timestamper=trust.timestamper())
    return directory / "bt.pdf"


def test_second_validation_is_served_from_the_cache(dev_pki, dev_server, signed_bt, tmp_path):
    config = dev_trust(dev_pki, cache_dir=tmp_path / "cache")
    before = _revinfo_hits(dev_server)
    assert validate_pdf(signed_bt, trust=TrustServices(config)).indication == "TOTAL-PASSED"
    fetched = _revinfo_hits(dev_server) - before
    assert fetched > 0, "the first validation must really fetch"
    assert list((tmp_path / "cache").glob("*.json"))

    # Another process's services over the same directory: not one OCSP/CRL request.
    after_first = _revinfo_hits(dev_server)
    assert validate_pdf(signed_bt, trust=TrustServices(config)).indication == "TOTAL-PASSED"
    assert _revinfo_hits(dev_server) == after_first


def test_expired_cache_entries_are_fetched_again(dev_pki, dev_server, signed_bt, tmp_path):
    from dataclasses import replace

    config = replace(dev_trust(dev_pki, cache_dir=tmp_path / "cache"), cache_seconds=0)
    validate_pdf(signed_bt, trust=TrustServices(config))
    before = _revinfo_hits(dev_server)
    validate_pdf(signed_bt, trust=TrustServices(config))
    assert _revinfo_hits(dev_server) > before


def test_without_fetching_revocation_is_not_checked(dev_pki, dev_server, signed_bt):
    from dataclasses import replace

    before = _revinfo_hits(dev_server)
    report = validate_pdf(signed_bt, trust=TrustServices(replace(dev_trust(dev_pki), fetch_revocation=False)))
    assert report.indication == "TOTAL-PASSED"
    assert _revinfo_hits(dev_server) == before


def test_one_instance_serves_many_threads(dev_pki, signed_bt, tmp_path):
    trust = TrustServices(dev_trust(dev_pki, cache_dir=tmp_path / "cache"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(pool.map(lambda _: validate_pdf(signed_bt, trust=trust), range(8)))
    assert {r.indication for r in reports} == {"TOTAL-PASSED"}


def test_foreign_root_is_not_trusted(pki, signed_bt):
    report = validate_pdf(signed_bt, trust=TrustServices(TrustConfig(trust_roots=(pki.root.asn1,))))
    assert (report.indication, report.sub_indication) == ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")


def test_timestamper_comes_from_the_config(dev_pki):
    assert TrustServices(dev_trust(dev_pki)).timestamper().url == dev_pki.urls.tsa
    assert TrustServices(TrustConfig(trust_roots=(dev_pki.trust_root,))).timestamper() is None


def test_load_certificates_pem_bundle_and_der(dev_pki, tmp_path):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes((dev_pki.directory / "root-ca.pem").read_bytes() + b"\n"
                       + (dev_pki.directory / "issuing-ca.pem").read_bytes())
    der = tmp_path / "root.der"
    der.write_bytes(dev_pki.root.cert.public_bytes(serialization.Encoding.DER))
    certs = load_certificates([bundle, der])
    assert [c.dump() for c in certs] == [dev_pki.trust_root.dump(), dev_pki.chain[0].dump(), dev_pki.trust_root.dump()]


@pytest.mark.parametrize("content", [b"not a certificate", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                                     b"\x30\x03\x02\x01\x01"])
def test_load_certificates_bad_file(tmp_path, content):
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    with pytest.raises(TrustConfigError, match="bad.pem"):
        load_certificates([path])


def test_load_certificates_missing_file(tmp_path):
    with pytest.raises(TrustConfigError, match="cannot read"):
        load_certificates([tmp_path / "missing.pem"])


def test_config_without_roots_is_refused():
    with pytest.raises(TrustConfigError, match="trust root"):
        TrustServices(TrustConfig(trust_roots=()))


def test_revocation_after_a_passing_validation_is_seen(dev_pki, dev_server, dev_pki_served, tmp_path):
    """Nothing kept between validations in one process (memoised name preparation, parsed trust
    roots, the services themselves) may carry a pass over a revocation: without a revocation
    cache the second validation asks the OCSP responder again and fails."""
    from datetime import timedelta

    from signing.devpki import utcnow

    issued = dev_pki.issue_personal("Đỗ Văn Hậu", "001203009102", "Sở Y tế tỉnh Huế",
                                    not_before=utcnow() - timedelta(hours=2))
    key = FileKeyBackend(issued.private_key, issued.certificate, issued.chain)
    (tmp_path / "in.pdf").write_bytes(tiny_pdf("Cong van"))
    trust = TrustServices(dev_trust(dev_pki))
    sign_pdf(tmp_path / "in.pdf", tmp_path / "bt.pdf", key, SignatureSpec(level="B-T"),
             timestamper=trust.timestamper())

    first = validate_pdf(tmp_path / "bt.pdf", trust=trust)
    assert (first.indication, first.signatures[0].trusted) == ("TOTAL-PASSED", True)

    # Revoked before the signature timestamp: no time proven by the document saves it.
    dev_pki.revoke(issued.serial, reason="key_compromise", at=utcnow() - timedelta(hours=1))
    before = _revinfo_hits(dev_server)
    second = validate_pdf(tmp_path / "bt.pdf", trust=trust)
    assert _revinfo_hits(dev_server) > before
    assert (second.indication, second.sub_indication) == ("TOTAL-FAILED", "REVOKED")
    assert second.signatures[0].trusted is False

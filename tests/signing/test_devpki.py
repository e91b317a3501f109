"""The development PKI: files, subjects, extensions, revocation, checked with openssl where we can."""

from __future__ import annotations

import json
import stat
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from signing.devpki import DOCUMENT_SIGNING_EKU, DevPki, utcnow
from signing.errors import PkiError

BASE_URL = "http://127.0.0.1:8765"
FULL_NAME = "Nguyễn Thị Hồng Đào"
PERSONAL_ID = "001203004567"
ORGANISATION = "Ủy ban nhân dân tỉnh Hà Tĩnh"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> DevPki:
    return DevPki.init(tmp_path_factory.mktemp("devpki") / "pki", base_url=BASE_URL)


@pytest.fixture(scope="module")
def personal(pki):
    return pki.issue_personal(
        FULL_NAME, PERSONAL_ID, ORGANISATION, position="Phó Chủ tịch", email="dao@hatinh.gov.vn", province="Hà Tĩnh"
    )


@pytest.fixture(scope="module")
def seal(pki):
    return pki.issue_seal(ORGANISATION, "000.00.00.H42", province="Hà Tĩnh")


def openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, errors="replace", check=False)


def openssl_verify(pki: DevPki, leaf: Path, *extra: str) -> subprocess.CompletedProcess:
    d = pki.directory
    return openssl("verify", *extra, "-CAfile", str(d / "root-ca.pem"), "-untrusted", str(d / "issuing-ca.pem"), str(leaf))


# ------------------------------------------------------------------------------ init / files


def test_init_creates_cas_and_service_certs_with_private_keys_0600(pki):
    for stem in ("root-ca", "issuing-ca", "tsa", "ocsp"):
        assert (pki.directory / f"{stem}.crt").exists()
        assert (pki.directory / f"{stem}.pem").exists()
        assert stat.S_IMODE((pki.directory / f"{stem}.key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(pki.directory.stat().st_mode) == 0o700


def test_issued_keys_are_0600_too(personal):
    assert stat.S_IMODE(personal.key_path.stat().st_mode) == 0o600
    assert personal.cert_pem_path.read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_init_is_idempotent(pki, personal):
    index_before = (pki.directory / "index.json").read_bytes()
    again = DevPki.init(pki.directory, base_url=BASE_URL + "/")
    assert again.root.cert == pki.root.cert
    assert again.issuing.cert == pki.issuing.cert
    assert (pki.directory / "index.json").read_bytes() == index_before


def test_init_refuses_a_different_base_url(pki):
    with pytest.raises(PkiError, match="serves http://127.0.0.1:8765"):
        DevPki.init(pki.directory, base_url="http://127.0.0.1:9999")


def test_open_without_a_pki_says_how_to_create_one(tmp_path):
    with pytest.raises(PkiError, match="docsvc pki init"):
        DevPki.open(tmp_path)


def test_ca_chain_verifies_with_openssl(pki):
    assert openssl_verify(pki, pki.directory / "issuing-ca.pem").returncode == 0
    for stem in ("tsa", "ocsp"):
        result = openssl_verify(pki, pki.directory / f"{stem}.pem")
        assert result.returncode == 0, result.stderr


def test_trust_root_and_chain_are_asn1crypto_from_der(pki):
    assert pki.trust_root.dump() == (pki.directory / "root-ca.crt").read_bytes()
    assert [c.dump() for c in pki.chain] == [
        (pki.directory / "issuing-ca.crt").read_bytes(),
        (pki.directory / "root-ca.crt").read_bytes(),
    ]
    assert pki.trust_root.ca and pki.trust_root.self_signed == "maybe"


# ------------------------------------------------------------------------------ personal


def test_personal_cert_verifies_with_openssl_and_shows_vietnamese_subject(pki, personal):
    result = openssl_verify(pki, personal.cert_pem_path)
    assert result.returncode == 0, result.stderr
    subject = openssl("x509", "-in", str(personal.cert_pem_path), "-noout", "-subject", "-nameopt", "utf8").stdout
    assert f"CN={FULL_NAME}" in subject
    assert f"UID=CCCD:{PERSONAL_ID}" in subject
    assert "C=VN" in subject and "ST=Hà Tĩnh" in subject and f"O={ORGANISATION}" in subject
    assert "title=Phó Chủ tịch" in subject


def test_subject_strings_are_utf8string_except_country(personal):
    subject = asn1_x509.Certificate.load(personal.cert_path.read_bytes()).subject
    tags = {ava["type"].dotted: ava["value"].dump()[0] for rdn in subject.chosen for ava in rdn}
    utf8string, printable = 0x0C, 0x13
    assert tags.pop("2.5.4.6") == printable  # RFC 5280: countryName is PrintableString
    assert set(tags.values()) == {utf8string}
    assert "0.9.2342.19200300.100.1.1" in tags


def test_personal_cert_extensions(pki, personal):
    cert = personal.certificate
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_cert_sign
    ekus = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ekus == {ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH, DOCUMENT_SIGNING_EKU}
    aia = {d.access_method: d.access_location.value for d in cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value}
    assert aia == {
        x509.AuthorityInformationAccessOID.OCSP: f"{BASE_URL}/pki/ocsp",
        x509.AuthorityInformationAccessOID.CA_ISSUERS: f"{BASE_URL}/pki/issuing-ca.crt",
    }
    crl_dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in crl_dp[0].full_name] == [f"{BASE_URL}/pki/crl"]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["dao@hatinh.gov.vn"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.issuer == pki.issuing.cert.subject


def test_personal_id_must_be_12_digits(pki):
    for bad in ("12345", "00120300456A", "0012030045678"):
        with pytest.raises(PkiError, match="12 digits"):
            pki.issue_personal(FULL_NAME, bad, ORGANISATION)


def test_unknown_key_type_is_refused(pki):
    with pytest.raises(PkiError, match="unsupported key type"):
        pki.issue_personal(FULL_NAME, PERSONAL_ID, ORGANISATION, key_type="dsa1024")


def test_p256_personal_cert_verifies(pki):
    issued = pki.issue_personal("Trần Văn Bình", "038095001234", ORGANISATION, key_type="p256")
    assert isinstance(issued.private_key, ec.EllipticCurvePrivateKey)
    assert openssl_verify(pki, issued.cert_pem_path).returncode == 0


def test_expired_cert_verifies_only_at_a_past_time(pki):
    start = utcnow() - timedelta(days=30)
    issued = pki.issue_personal("Lê Văn Cường", "001088009999", ORGANISATION, not_before=start, valid_days=2)
    assert issued.certificate.not_valid_after_utc < utcnow()
    now = openssl_verify(pki, issued.cert_pem_path)
    assert now.returncode != 0 and "expired" in (now.stdout + now.stderr)
    then = int((start + timedelta(days=1)).timestamp())
    assert openssl_verify(pki, issued.cert_pem_path, "-attime", str(then)).returncode == 0


# ------------------------------------------------------------------------------ seal


def test_seal_cert_subject_and_usage(pki, seal):
    assert openssl_verify(pki, seal.cert_pem_path).returncode == 0
    subject = seal.certificate.subject
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ORGANISATION
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ORGANISATION
    assert subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == "000.00.00.H42"
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "VN"
    ekus = set(seal.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ExtendedKeyUsageOID.CLIENT_AUTH not in ekus and DOCUMENT_SIGNING_EKU in ekus
    assert seal.certificate.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment


def test_seal_organ_id_is_checked(pki):
    with pytest.raises(PkiError, match="organ id"):
        pki.issue_seal(ORGANISATION, "H41; DROP")


# ------------------------------------------------------------------------------ service certs


def test_tsa_cert_has_critical_timestamping_eku_only(pki):
    eku = pki.tsa.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_ocsp_cert_has_ocsp_signing_and_nocheck(pki):
    eku = pki.ocsp.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert pki.ocsp.cert.extensions.get_extension_for_oid(ExtensionOID.OCSP_NO_CHECK)


def test_infrastructure_is_backdated_so_tests_can_act_in_the_past(pki):
    assert pki.tsa.cert.not_valid_before_utc < utcnow() - timedelta(days=365)
    assert pki.root.cert.not_valid_after_utc > utcnow() + timedelta(days=17 * 365)


# ------------------------------------------------------------------------------ export


def test_pkcs12_opens_with_openssl_and_cryptography(tmp_path, personal):
    p12 = tmp_path / "dao.p12"
    p12.write_bytes(personal.to_pkcs12("mật khẩu"))
    key, cert, chain = pkcs12.load_key_and_certificates(p12.read_bytes(), "mật khẩu".encode())
    assert cert == personal.certificate and len(chain) == 2
    listed = openssl("pkcs12", "-in", str(p12), "-passin", "pass:mật khẩu", "-nokeys")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("BEGIN CERTIFICATE") == 3


def test_signer_material_is_parsed_from_der(pki, personal):
    material = personal.signer_material()
    assert material.signing_cert.dump() == personal.cert_path.read_bytes()
    assert [c.subject for c in material.chain] == [c.subject for c in pki.chain]
    assert material.private_key is personal.private_key
    assert material.simple_signer().signing_cert.dump() == personal.cert_path.read_bytes()


def test_load_issued_reads_back_the_same_key(pki, seal):
    loaded = pki.load_issued(seal.serial)
    assert loaded.certificate == seal.certificate
    assert loaded.private_key.private_numbers() == seal.private_key.private_numbers()
    with pytest.raises(PkiError):
        pki.load_issued(pki.tsa.cert.serial_number)


# ------------------------------------------------------------------------------ revocation


def test_revoke_records_time_and_reason_and_is_seen_by_other_processes(pki):
    issued = pki.issue_personal("Phạm Thị Én", "001199000001", ORGANISATION)
    other = DevPki.open(pki.directory)
    assert other.record(issued.serial).revoked_at is None
    record = pki.revoke(issued.serial, reason="affiliation_changed")
    assert record.reason == "affiliation_changed" and record.revoked_at is not None
    assert other.record(issued.serial).revoked_at == record.revoked_at
    again = other.revoke(issued.serial, reason="key_compromise")
    assert again == record  # the first revocation stands
    stored = json.loads((pki.directory / "index.json").read_text(encoding="utf-8"))
    assert any(entry["subject"].find("Phạm Thị Én") >= 0 for entry in stored["certs"])


def test_revoke_unknown_serial_or_reason_is_an_error(pki, personal):
    with pytest.raises(PkiError, match="no certificate"):
        pki.revoke(12345)
    with pytest.raises(PkiError, match="unknown revocation reason"):
        pki.revoke(personal.serial, reason="bored")

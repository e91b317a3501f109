"""A throw-away PKI built with ``cryptography``: root → issuing CA → signers (RSA-2048, P-256)
and a TSA, with Vietnamese subject names; plus pdfsig and SoftHSM2 helpers.

Certificates reach pyHanko as asn1crypto objects parsed from DER (pitfall 2)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.keys import FileKeyBackend
from tests.support.tools import require_command, require_file

ORG = "Sở Thông tin và Truyền thông tỉnh Nghệ An"
NOW = dt.datetime.now(dt.UTC)
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def _name(cn: str, org: str = ORG) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


@dataclass
class Issued:
    """A key and its certificate, in every shape the tests need."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def asn1(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.der)

    @property
    def asn1_chain(self) -> list[asn1_x509.Certificate]:
        return [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in self.chain]

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    @property
    def key_pk8_der(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    @property
    def asn1_key(self) -> asn1_keys.PrivateKeyInfo:
        return asn1_keys.PrivateKeyInfo.load(self.key_pk8_der)

    def pkcs12(self, passphrase: bytes) -> bytes:
        return pkcs12.serialize_key_and_certificates(
            b"signer", self.key, self.cert, self.chain,
            serialization.BestAvailableEncryption(passphrase))

    def backend(self) -> FileKeyBackend:
        return FileKeyBackend(self.key, self.asn1, self.asn1_chain)


def _issue(subject: x509.Name, key, issuer: Issued | None, *, ca: bool, eku=None, path_len=None) -> x509.Certificate:
    issuer_name = issuer.cert.subject if issuer else subject
    signing_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=eku is None, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    return builder.sign(signing_key, hashes.SHA256())


@dataclass
class TestPki:
    root: Issued
    ca: Issued
    rsa_signer: Issued
    ec_signer: Issued
    tsa: Issued
    other_root: Issued

    def issue_signer(self, public_key, cn: str) -> asn1_x509.Certificate:
        """A signer certificate for a key held elsewhere (a token)."""
        cert = _issue(_name(cn), _PublicOnly(public_key), self.ca, ca=False)
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    @property
    def root_asn1(self) -> asn1_x509.Certificate:
        return self.root.asn1

    @property
    def chain_asn1(self) -> list[asn1_x509.Certificate]:
        return [self.ca.asn1, self.root.asn1]


class _PublicOnly:
    """Lets ``_issue`` take a bare public key for the subject."""

    def __init__(self, public_key) -> None:
        self._public_key = public_key

    def public_key(self):
        return self._public_key


def _build_pki() -> TestPki:
    root_key = rsa.generate_private_key(65537, 2048)
    root = Issued(root_key, _issue(_name("Test Root CA Việt Nam", "Ban Cơ yếu Chính phủ (thử nghiệm)"),
                                   root_key, None, ca=True))
    ca_key = rsa.generate_private_key(65537, 2048)
    ca = Issued(ca_key, _issue(_name("Test Issuing CA Nghệ An", "Ban Cơ yếu Chính phủ (thử nghiệm)"), ca_key,
                               root, ca=True, path_len=0), [root.cert])
    rsa_key = rsa.generate_private_key(65537, 2048)
    rsa_signer = Issued(rsa_key, _issue(_name("Nguyễn Văn An"), rsa_key, ca, ca=False), [ca.cert, root.cert])
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_signer = Issued(ec_key, _issue(_name("Trần Thị Bích Ngọc"), ec_key, ca, ca=False), [ca.cert, root.cert])
    tsa_key = rsa.generate_private_key(65537, 2048)
    tsa = Issued(tsa_key, _issue(_name("Test TSA Việt Nam"), tsa_key, ca, ca=False,
                                 eku=[ExtendedKeyUsageOID.TIME_STAMPING]), [ca.cert, root.cert])
    other_key = rsa.generate_private_key(65537, 2048)
    other_root = Issued(other_key, _issue(_name("Some Other Root", "Không liên quan"), other_key, None, ca=True))
    return TestPki(root, ca, rsa_signer, ec_signer, tsa, other_root)


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return _build_pki()


@pytest.fixture(scope="session")
def rsa_key(pki) -> FileKeyBackend:
    return pki.rsa_signer.backend()


@pytest.fixture(scope="session")
def ec_key(pki) -> FileKeyBackend:
    return pki.ec_signer.backend()


@pytest.fixture(scope="session")
def timestamper(pki):
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    return DummyTimeStamper(pki.tsa.asn1, pki.tsa.asn1_key,
                            certs_to_embed=SimpleCertificateStore.from_certs(pki.tsa.asn1_chain))


# --- pdfsig -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def nss_db(pki, tmp_path_factory) -> str:
    """An NSS database trusting our test root, for ``pdfsig -nssdir``."""
    require_command("certutil", "libnss3-tools")
    path = tmp_path_factory.mktemp("nssdb")
    subprocess.run(["certutil", "-N", "-d", f"sql:{path}", "--empty-password"], check=True, capture_output=True)
    for nick, issued, trust in (("test-root", pki.root, "CT,C,C"), ("test-ca", pki.ca, ",,")):
        pem = path / f"{nick}.pem"
        pem.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
        subprocess.run(["certutil", "-A", "-d", f"sql:{path}", "-n", nick, "-t", trust, "-i", str(pem)],
                       check=True, capture_output=True)
    return f"sql:{path}"


def run_pdfsig(path: Path, nss_db: str | None = None) -> str:
    """pdfsig's report on ``path`` (poppler): our second opinion on every signature."""
    args = ["pdfsig"]
    if nss_db:
        args += ["-nssdir", nss_db]
    result = subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


@pytest.fixture
def pdfsig(nss_db):
    return lambda path: run_pdfsig(path, nss_db)


# --- the development PKI served on loopback (real TSA, OCSP responder, CRLs) ------------------

@pytest.fixture(scope="session")
def dev_server():
    from tests.support.pki_server import PkiHttpServer

    return PkiHttpServer()


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory, dev_server):
    """A ``signing.devpki`` PKI (P-256 CAs, quick to make) whose certificates point at ``dev_server``."""
    from signing.devpki import DevPki

    return DevPki.init(tmp_path_factory.mktemp("dev-pki") / "pki", base_url=dev_server.base_url,
                       ca_key_type="p256")


@pytest.fixture(scope="session")
def dev_pki_served(dev_server, dev_pki):
    """The base URL while ``dev_server`` serves ``dev_pki`` (for the whole session)."""
    with dev_server.serving(dev_pki) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def dev_nss(dev_pki, tmp_path_factory) -> str:
    """An NSS database trusting the dev root, for ``pdfsig -nssdir``."""
    require_command("certutil", "libnss3-tools")
    path = tmp_path_factory.mktemp("dev-nss")
    subprocess.run(["certutil", "-N", "-d", f"sql:{path}", "--empty-password"], check=True, capture_output=True)
    for nick, cert, flags in (("dev-root", dev_pki.root.cert, "CT,C,C"), ("dev-ca", dev_pki.issuing.cert, ",,")):
        pem = path / f"{nick}.pem"
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        subprocess.run(["certutil", "-A", "-d", f"sql:{path}", "-n", nick, "-t", flags, "-i", str(pem)],
                       check=True, capture_output=True)
    return f"sql:{path}"


# --- SoftHSM2 ---------------------------------------------------------------------------------

@dataclass
class SoftHsmToken:
    label: str
    pin: str
    so_pin: str
    env: dict


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory, pki) -> Iterator[SoftHsmToken]:
    """A fresh SoftHSM2 token in a temp dir, holding an RSA-2048 and a P-256 key with their certs."""
    require_command("softhsm2-util", "softhsm2")
    require_file(SOFTHSM_MODULE, "softhsm2")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    # The PKCS#11 module reads SOFTHSM2_CONF when first loaded in this process, so it must stay
    # set for the session; it is put back afterwards so later tests see the machine's own value.
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    token = SoftHsmToken(label="docsvc-test", pin="1234", so_pin="5678", env={"SOFTHSM2_CONF": str(conf)})
    env = {**os.environ, **token.env}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", token.label, "--pin", token.pin,
                    "--so-pin", token.so_pin], check=True, capture_output=True, env=env)
    for label, key_id, issued in (("rsa-signer", "01", pki.rsa_signer), ("ec-signer", "02", pki.ec_signer)):
        pk8 = root / f"{label}.pk8"
        pk8.write_bytes(issued.key_pem)
        subprocess.run(["softhsm2-util", "--import", str(pk8), "--token", token.label, "--label", label,
                        "--id", key_id, "--pin", token.pin], check=True, capture_output=True, env=env)
        pk8.unlink()
    _store_certs(token, pki)
    yield token
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def _store_certs(token: SoftHsmToken, pki: TestPki) -> None:
    """Put the signer certificates on the token, so a backend can find them by label."""
    import pkcs11
    from pkcs11 import Attribute, CertificateType, ObjectClass

    lib = pkcs11.lib(SOFTHSM_MODULE)
    tok = lib.get_token(token_label=token.label)
    with tok.open(rw=True, user_pin=token.pin) as session:
        for label, issued in (("rsa-signer", pki.rsa_signer), ("ec-signer", pki.ec_signer)):
            session.create_object({
                Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True, Attribute.LABEL: label, Attribute.VALUE: issued.der,
                Attribute.SUBJECT: issued.cert.subject.public_bytes(),
            })

"""Development PKI: root CA → issuing CA → personal, seal, TSA and OCSP-responder certificates.

Everything lives in one directory so ``docsvc pki init`` and ``make run`` can create it once and
every process (web, workers, tests) can open it::

    root-ca.key.pem  root-ca.crt  root-ca.pem          self-signed trust anchor (CA/service certs: <stem>.pem)
    issuing-ca.key.pem  issuing-ca.crt  issuing-ca.pem  issues every end-entity certificate
    tsa.key.pem  tsa.crt  tsa.pem                        RFC 3161 time-stamping unit
    ocsp.key.pem  ocsp.crt  ocsp.pem                     delegated OCSP responder (id-pkix-ocsp-nocheck)
    issued/<serial-hex>.key.pem  .crt  .cert.pem         personal and seal certificates
    index.json                                           issued certificates, revocations, CRL numbers

Keys are unencrypted PKCS#8 PEM files with mode 0600 (development only: production keys live in
an HSM). Certificates are stored as DER (``.crt``, what the HTTP routes serve) and PEM (``.pem``,
what openssl and humans read).

The URLs in the certificates (AIA OCSP and caIssuers, CRL distribution points) are fixed at
issue time from ``base_url``: see :class:`PkiUrls`. Infrastructure certificates start
:data:`INFRA_BACKDATE` before ``init`` so tests can sign and time-stamp "in the past".
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.errors import PkiError

KeyType = Literal["rsa2048", "rsa3072", "p256", "p384"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
CertKind = Literal["personal", "seal", "tsa", "ocsp"]

#: Our private OID arc. 2.25.<uuid> (ITU-T X.667) needs no registration, so a dev PKI can mint
#: OIDs without pretending to belong to anyone's enterprise arc.
DEV_OID_ARC = "2.25.280759929701445017996572993042936454581"
#: TSA policy OID put in every TSTInfo of the development TSA.
DEV_TSA_POLICY_OID = f"{DEV_OID_ARC}.1"
#: id-kp-documentSigning (RFC 9336): says "this key signs documents" without claiming e-mail.
DOCUMENT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")

DEFAULT_ORGANISATION = "Ban Cơ yếu Chính phủ (phát triển)"
#: How far before ``init`` the CA, TSA and OCSP certificates start being valid.
INFRA_BACKDATE = timedelta(days=2 * 365)
#: Clock-skew allowance for end-entity certificates issued "now".
ISSUE_SKEW = timedelta(minutes=5)

_PERSONAL_ID = re.compile(r"^\d{12}$")
_ORGAN_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,63}$")
_SUPPORTED_KEY_TYPES: tuple[str, ...] = ("rsa2048", "rsa3072", "p256", "p384")
_REASONS = {flag.name: flag for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.remove_from_crl}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (every clock in this module is aware)."""
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class PkiUrls:
    """Where docsvc serves the PKI; baked into every certificate at issue time."""

    base_url: str
    """Scheme, host and port (and optional prefix) without a trailing slash."""

    @property
    def ocsp(self) -> str:
        """OCSP responder for certificates of the issuing CA (POST, or GET with base64)."""
        return f"{self.base_url}/pki/ocsp"

    @property
    def tsa(self) -> str:
        """RFC 3161 TSA (POST application/timestamp-query)."""
        return f"{self.base_url}/pki/tsa"

    @property
    def crl(self) -> str:
        """CRL of the issuing CA (DER)."""
        return f"{self.base_url}/pki/crl"

    @property
    def root_crl(self) -> str:
        """CRL of the root CA (DER); covers the issuing CA certificate."""
        return f"{self.base_url}/pki/root-ca.crl"

    @property
    def issuing_ca_cert(self) -> str:
        """Issuing CA certificate (DER), the caIssuers URL of end-entity certificates."""
        return f"{self.base_url}/pki/issuing-ca.crt"

    @property
    def root_ca_cert(self) -> str:
        """Root CA certificate (DER)."""
        return f"{self.base_url}/pki/root-ca.crt"


@dataclass(frozen=True)
class CertRecord:
    """One line of the index: a certificate issued by the issuing CA."""

    serial: int
    """Certificate serial number."""
    kind: CertKind
    """What the certificate is for."""
    subject: str
    """RFC 4514 subject string (UTF-8), for humans and logs."""
    not_before: datetime
    """Start of validity."""
    not_after: datetime
    """End of validity."""
    revoked_at: datetime | None = None
    """Revocation time, or None while not revoked."""
    reason: str | None = None
    """Revocation reason, a :class:`cryptography.x509.ReasonFlags` name (e.g. ``key_compromise``)."""

    def revoked_by(self, moment: datetime) -> bool:
        """True if the certificate had been revoked at ``moment``."""
        return self.revoked_at is not None and self.revoked_at <= moment

    def to_json(self) -> dict:
        """JSON form stored in ``index.json``; serial as hex so JSON tools never round it."""
        return {
            "serial": format(self.serial, "x"),
            "kind": self.kind,
            "subject": self.subject,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict) -> CertRecord:
        """Inverse of :meth:`to_json`."""
        revoked_at = data.get("revoked_at")
        return cls(
            serial=int(data["serial"], 16),
            kind=data["kind"],
            subject=data["subject"],
            not_before=datetime.fromisoformat(data["not_before"]),
            not_after=datetime.fromisoformat(data["not_after"]),
            revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
            reason=data.get("reason"),
        )


@dataclass(frozen=True)
class SignerMaterial:
    """What pyHanko needs to sign: asn1crypto objects parsed from DER (PYHANKO-CSC §3.4 pitfall 2)
    plus the already-parsed ``cryptography`` key, so a fast signer need not re-parse it per call."""

    signing_cert: asn1_x509.Certificate
    """Signer certificate, loaded from DER."""
    signing_key: asn1_keys.PrivateKeyInfo
    """Private key in asn1crypto form, as ``SimpleSigner`` wants it."""
    private_key: PrivateKey
    """The same key as a parsed ``cryptography`` object."""
    chain: tuple[asn1_x509.Certificate, ...]
    """Issuing CA then root CA, loaded from DER."""

    def simple_signer(self):
        """A stock pyHanko ``SimpleSigner`` (convenient, but re-parses the key per signature)."""
        from pyhanko.sign.signers import SimpleSigner
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        return SimpleSigner(
            signing_cert=self.signing_cert,
            signing_key=self.signing_key,
            cert_registry=SimpleCertificateStore.from_certs(self.chain),
        )


@dataclass(frozen=True)
class IssuedKey:
    """A key pair and certificate issued by the development PKI."""

    serial: int
    """Certificate serial number."""
    kind: CertKind
    """What the certificate is for."""
    key_path: Path
    """PEM (PKCS#8, unencrypted, mode 0600) private key file."""
    cert_path: Path
    """DER certificate file (a ``.pem`` sibling holds the PEM form)."""
    private_key: PrivateKey = field(repr=False)
    """Parsed private key."""
    certificate: x509.Certificate
    """Parsed certificate."""
    chain: tuple[x509.Certificate, ...]
    """Issuing CA then root CA."""

    @property
    def cert_pem_path(self) -> Path:
        """PEM form of the certificate."""
        return self.cert_path.with_name(self.cert_path.stem + ".cert.pem")

    def to_pkcs12(self, passphrase: str | bytes, *, friendly_name: str | None = None) -> bytes:
        """PKCS#12 with key, certificate and chain, encrypted with AES-256 (openssl 3 default)."""
        password = passphrase.encode() if isinstance(passphrase, str) else passphrase
        name = (friendly_name or self.certificate.subject.rfc4514_string()).encode()
        return pkcs12.serialize_key_and_certificates(
            name,
            self.private_key,
            self.certificate,
            list(self.chain),
            serialization.BestAvailableEncryption(password),
        )

    def signer_material(self) -> SignerMaterial:
        """The key and certificates as pyHanko wants them (see :class:`SignerMaterial`)."""
        der = serialization.Encoding.DER
        key_der = self.private_key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return SignerMaterial(
            signing_cert=asn1_x509.Certificate.load(self.certificate.public_bytes(der)),
            signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
            private_key=self.private_key,
            chain=tuple(asn1_x509.Certificate.load(c.public_bytes(der)) for c in self.chain),
        )


@dataclass(frozen=True)
class _Authority:
    """A loaded key + certificate (CA, TSA or OCSP responder), parsed once per process."""

    key: PrivateKey = field(repr=False)
    cert: x509.Certificate


# ---------------------------------------------------------------------------------- helpers


def generate_key(key_type: str) -> PrivateKey:
    """A fresh private key of ``key_type`` (rsa2048, rsa3072, p256, p384)."""
    match key_type:
        case "rsa2048":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        case "rsa3072":
            return rsa.generate_private_key(public_exponent=65537, key_size=3072)
        case "p256":
            return ec.generate_private_key(ec.SECP256R1())
        case "p384":
            return ec.generate_private_key(ec.SECP384R1())
    raise PkiError(f"unsupported key type {key_type!r}; use one of {', '.join(_SUPPORTED_KEY_TYPES)}")


def signature_hash(key: PrivateKey) -> hashes.HashAlgorithm:
    """Hash to sign with: SHA-384 for P-384 keys (matching strength), SHA-256 otherwise."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _write_private(path: Path, data: bytes) -> None:
    # Create with 0600 from the start: a chmod after writing would leave a readable window.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply when the file already existed


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(*attributes: tuple[x509.ObjectIdentifier, str | None]) -> x509.Name:
    # cryptography encodes every attribute but C as UTF8String, which is what Vietnamese names need.
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes if value])


def _ski(key: PrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _aki(issuer: _Authority) -> x509.AuthorityKeyIdentifier:
    ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
    return x509.CRLDistributionPoints([point])


def _aia(urls: PkiUrls, *, with_ocsp: bool) -> x509.AuthorityInformationAccess:
    descriptions = [
        x509.AccessDescription(
            x509.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(urls.issuing_ca_cert)
        )
    ]
    if with_ocsp:
        descriptions.insert(
            0,
            x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(urls.ocsp)),
        )
    return x509.AuthorityInformationAccess(descriptions)


def _key_usage(*, cert_sign: bool = False, non_repudiation: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# ---------------------------------------------------------------------------------- DevPki


class DevPki:
    """A development PKI backed by a directory; see the module docstring for the layout.

    Instances parse the CA, TSA and OCSP keys once and keep them (PYHANKO-CSC §3.4 pitfall 1).
    The index is re-read when its file changes, so a revocation made by one process (the CLI)
    is seen by another (the web server answering OCSP)."""

    INDEX = "index.json"

    def __init__(self, directory: Path) -> None:
        """Use :meth:`open` or :meth:`init`; this only reads an existing PKI."""
        self.directory = Path(directory)
        index = self._read_index()
        self.urls = PkiUrls(index["base_url"])
        self.root = self._load_authority("root-ca")
        self.issuing = self._load_authority("issuing-ca")
        self.tsa = self._load_authority("tsa")
        self.ocsp = self._load_authority("ocsp")
        self._index_cache: tuple[int, dict] | None = None
        der = serialization.Encoding.DER
        self.trust_root = asn1_x509.Certificate.load(self.root.cert.public_bytes(der))
        """The root CA as an asn1crypto certificate (parsed from DER), for pyHanko trust roots."""
        self.chain = (asn1_x509.Certificate.load(self.issuing.cert.public_bytes(der)), self.trust_root)
        """Issuing CA then root CA, asn1crypto, for pyHanko ``other_certs`` / signer chains."""

    # -- creation --------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path) -> DevPki:
        """Open an existing PKI; :class:`PkiError` if ``directory`` holds none."""
        return cls(directory)

    @classmethod
    def init(
        cls,
        directory: Path,
        *,
        base_url: str,
        organisation_name: str = DEFAULT_ORGANISATION,
        ca_key_type: KeyType = "rsa3072",
    ) -> DevPki:
        """Create the PKI in ``directory``, or open it if it already exists (idempotent).

        Creates a root CA (20 years), an issuing CA (10 years), a TSA certificate (EKU
        timeStamping, critical) and an OCSP responder certificate (EKU OCSPSigning,
        id-pkix-ocsp-nocheck). ``base_url`` goes into the certificates' URLs; opening an
        existing PKI with a different ``base_url`` raises :class:`PkiError`, because its
        certificates would point at the wrong place."""
        directory = Path(directory)
        base_url = base_url.rstrip("/")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(directory):
            if not (directory / cls.INDEX).exists():
                _create(directory, PkiUrls(base_url), organisation_name, ca_key_type)
        pki = cls(directory)
        if pki.urls.base_url != base_url:
            raise PkiError(
                f"the PKI in {directory} serves {pki.urls.base_url}, not {base_url}; "
                "its certificates embed that URL, so create a new PKI in another directory"
            )
        return pki

    # -- issuing ---------------------------------------------------------------------------

    def issue_personal(
        self,
        full_name: str,
        personal_id: str,
        organisation: str,
        *,
        position: str | None = None,
        email: str | None = None,
        province: str | None = None,
        key_type: KeyType = "rsa2048",
        valid_days: int = 730,
        not_before: datetime | None = None,
    ) -> IssuedKey:
        """Issue a personal (official's) signing certificate.

        Subject: C=VN, ST=province?, O=organisation, T=position?, CN=full_name,
        UID=CCCD:<12-digit personal ID> (Vietnamese CAs carry the citizen ID this way).
        EKU emailProtection (NSS/pdfsig accept signers only with it), clientAuth (login with
        the certificate) and documentSigning. ``not_before`` in the past with a short
        ``valid_days`` gives an already expired certificate, for tests."""
        if not _PERSONAL_ID.match(personal_id):
            raise PkiError(f"personal ID must be 12 digits (số định danh cá nhân), got {personal_id!r}")
        subject = _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.STATE_OR_PROVINCE_NAME, province),
            (NameOID.ORGANIZATION_NAME, organisation),
            (NameOID.TITLE, position),
            (NameOID.COMMON_NAME, full_name),
            (NameOID.USER_ID, f"CCCD:{personal_id}"),
        )
        ekus = [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH, DOCUMENT_SIGNING_EKU]
        return self._issue_end_entity("personal", subject, ekus, key_type, valid_days, not_before, email)

    def issue_seal(
        self,
        organisation_name: str,
        organ_id: str,
        *,
        province: str | None = None,
        email: str | None = None,
        key_type: KeyType = "rsa2048",
        valid_days: int = 1095,
        not_before: datetime | None = None,
    ) -> IssuedKey:
        """Issue an organisation (seal, con dấu) signing certificate.

        Subject: C=VN, ST=province?, O=organisation_name, CN=organisation_name,
        UID=<organ_id> verbatim: the mã định danh cơ quan (e.g. ``000.00.00.H41``) is the key
        docsvc and the national axis identify agencies by, and its dotted form cannot be
        confused with a personal ``CCCD:`` UID. EKU emailProtection + documentSigning (no
        clientAuth: a seal never logs in)."""
        if not _ORGAN_ID.match(organ_id):
            raise PkiError(f"organ id must look like 000.00.00.H41, got {organ_id!r}")
        subject = _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.STATE_OR_PROVINCE_NAME, province),
            (NameOID.ORGANIZATION_NAME, organisation_name),
            (NameOID.COMMON_NAME, organisation_name),
            (NameOID.USER_ID, organ_id),
        )
        ekus = [ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING_EKU]
        return self._issue_end_entity("seal", subject, ekus, key_type, valid_days, not_before, email)

    def _issue_end_entity(
        self,
        kind: CertKind,
        subject: x509.Name,
        ekus: list[x509.ObjectIdentifier],
        key_type: str,
        valid_days: int,
        not_before: datetime | None,
        email: str | None,
    ) -> IssuedKey:
        if valid_days <= 0:
            raise PkiError("valid_days must be positive")
        key = generate_key(key_type)
        start = not_before or utcnow() - ISSUE_SKEW
        builder = (
            _base_builder(subject, key, self.issuing, start, start + timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(non_repudiation=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
            .add_extension(_aia(self.urls, with_ocsp=True), critical=False)
            .add_extension(_crl_dp(self.urls.crl), critical=False)
        )
        if email:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        cert = builder.sign(self.issuing.key, signature_hash(self.issuing.key))
        key_path, cert_path = _store_issued(self.directory / "issued", key, cert)
        self._add_record(_record(kind, cert))
        return IssuedKey(cert.serial_number, kind, key_path, cert_path, key, cert, (self.issuing.cert, self.root.cert))

    def load_issued(self, serial: int) -> IssuedKey:
        """An end-entity key issued earlier (personal or seal), read back from the directory."""
        record = self.record(serial)
        if record is None or record.kind not in ("personal", "seal"):
            raise PkiError(f"no personal or seal certificate with serial {serial:x}")
        stem = self.directory / "issued" / format(serial, "x")
        key_path, cert_path = stem.with_name(stem.name + ".key.pem"), stem.with_name(stem.name + ".crt")
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_der_x509_certificate(cert_path.read_bytes())
        return IssuedKey(serial, record.kind, key_path, cert_path, key, cert, (self.issuing.cert, self.root.cert))

    # -- revocation and index --------------------------------------------------------------

    def revoke(self, serial: int, reason: str = "key_compromise", at: datetime | None = None) -> CertRecord:
        """Revoke a certificate of the issuing CA. Revoking again keeps the first revocation.

        ``reason`` is a :class:`cryptography.x509.ReasonFlags` name; ``at`` defaults to now and
        may lie in the past or the future (OCSP and CRLs honour it relative to their clock)."""
        if reason not in _REASONS:
            raise PkiError(f"unknown revocation reason {reason!r}; use one of {', '.join(_REASONS)}")
        # Whole seconds: CRLs and OCSP carry whole seconds, and a revocation must be visible
        # in a CRL or OCSP answer produced in the same second.
        moment = (at or utcnow()).replace(microsecond=0)
        with _locked(self.directory):
            index = self._read_index()
            for position, raw in enumerate(index["certs"]):
                record = CertRecord.from_json(raw)
                if record.serial != serial:
                    continue
                if record.revoked_at is None:
                    record = dataclasses.replace(record, revoked_at=moment, reason=reason)
                    index["certs"][position] = record.to_json()
                    self._write_index(index)
                return record
        raise PkiError(f"no certificate with serial {serial:x} in this PKI")

    def records(self) -> list[CertRecord]:
        """Every certificate issued by the issuing CA, oldest first."""
        return [CertRecord.from_json(raw) for raw in self._cached_index()["certs"]]

    def record(self, serial: int) -> CertRecord | None:
        """The index entry for ``serial``, or None if the issuing CA never issued it."""
        return next((r for r in self.records() if r.serial == serial), None)

    def next_crl_number(self, authority: str) -> int:
        """Reserve and return the next CRL number for ``authority`` ("issuing" or "root")."""
        with _locked(self.directory):
            index = self._read_index()
            number = index["crl_numbers"].get(authority, 0) + 1
            index["crl_numbers"][authority] = number
            self._write_index(index)
        return number

    def revocation_digest(self) -> str:
        """Changes whenever a revocation is recorded; lets CRL caches notice."""
        revoked = sorted(f"{r.serial:x} {r.revoked_at} {r.reason}" for r in self.records() if r.revoked_at)
        return hashlib.sha256("\n".join(revoked).encode()).hexdigest()

    # -- internals -------------------------------------------------------------------------

    def _add_record(self, record: CertRecord) -> None:
        with _locked(self.directory):
            index = self._read_index()
            index["certs"].append(record.to_json())
            self._write_index(index)

    def _read_index(self) -> dict:
        try:
            return json.loads((self.directory / self.INDEX).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise PkiError(f"no development PKI in {self.directory} (run `docsvc pki init`)") from exc
        except (OSError, ValueError) as exc:
            raise PkiError(f"cannot read {self.directory / self.INDEX}: {exc}") from exc

    def _cached_index(self) -> dict:
        # OCSP answers read the index per request; re-parse only when the file changed.
        mtime = (self.directory / self.INDEX).stat().st_mtime_ns
        if self._index_cache is None or self._index_cache[0] != mtime:
            self._index_cache = (mtime, self._read_index())
        return self._index_cache[1]

    def _write_index(self, index: dict) -> None:
        write_atomic(self.directory / self.INDEX, json.dumps(index, ensure_ascii=False, indent=1).encode())

    def _load_authority(self, stem: str) -> _Authority:
        try:
            key = serialization.load_pem_private_key((self.directory / f"{stem}.key.pem").read_bytes(), password=None)
            cert = x509.load_der_x509_certificate((self.directory / f"{stem}.crt").read_bytes())
        except (OSError, ValueError) as exc:
            raise PkiError(f"cannot load {stem} from {self.directory}: {exc}") from exc
        return _Authority(key, cert)


# ---------------------------------------------------------------------------------- creation


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Several processes (web, workers, CLI) share one PKI directory: serialise index updates.
    with open(directory / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _base_builder(
    subject: x509.Name, key: PrivateKey, issuer: _Authority | None, start: datetime, end: datetime
) -> x509.CertificateBuilder:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(_ski(key), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(_aki(issuer), critical=False)
    return builder


def _create(directory: Path, urls: PkiUrls, organisation: str, ca_key_type: str) -> None:
    start = utcnow() - INFRA_BACKDATE
    root = _make_root(organisation, ca_key_type, start)
    issuing = _make_issuing(organisation, ca_key_type, start, root, urls)
    tsa = _make_service_cert(organisation, "TSA", start, issuing, urls)
    ocsp = _make_service_cert(organisation, "OCSP", start, issuing, urls)
    for stem, authority in (("root-ca", root), ("issuing-ca", issuing), ("tsa", tsa), ("ocsp", ocsp)):
        _store(directory, stem, authority.key, authority.cert)
    index = {
        "base_url": urls.base_url,
        "organisation": organisation,
        "crl_numbers": {},
        "certs": [_record("tsa", tsa.cert).to_json(), _record("ocsp", ocsp.cert).to_json()],
    }
    # The index is written last: its presence is what marks the PKI as complete.
    write_atomic(directory / DevPki.INDEX, json.dumps(index, ensure_ascii=False, indent=1).encode())


def _ca_name(organisation: str, common_name: str) -> x509.Name:
    return _name(
        (NameOID.COUNTRY_NAME, "VN"), (NameOID.ORGANIZATION_NAME, organisation), (NameOID.COMMON_NAME, common_name)
    )


def _make_root(organisation: str, key_type: str, start: datetime) -> _Authority:
    key = generate_key(key_type)
    cert = (
        _base_builder(
            _ca_name(organisation, "Root CA phát triển docsvc"), key, None, start, start + timedelta(days=20 * 365)
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(key, signature_hash(key))
    )
    return _Authority(key, cert)


def _make_issuing(organisation: str, key_type: str, start: datetime, root: _Authority, urls: PkiUrls) -> _Authority:
    key = generate_key(key_type)
    cert = (
        _base_builder(
            _ca_name(organisation, "CA cấp cho cán bộ, cơ quan (phát triển)"),
            key,
            root,
            start,
            start + timedelta(days=10 * 365),
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(_crl_dp(urls.root_crl), critical=False)
        .sign(root.key, signature_hash(root.key))
    )
    return _Authority(key, cert)


def _make_service_cert(
    organisation: str, service: str, start: datetime, issuing: _Authority, urls: PkiUrls
) -> _Authority:
    # RSA-2048: these keys sign on every request, and 2048 is the cheapest widely accepted size.
    key = generate_key("rsa2048")
    builder = (
        _base_builder(
            _ca_name(organisation, f"{service} phát triển docsvc"),
            key,
            issuing,
            start,
            start + timedelta(days=10 * 365),
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(), critical=True)
    )
    if service == "TSA":
        # RFC 3161 §2.3: the TSA certificate has exactly one EKU, timeStamping, marked critical.
        builder = (
            builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .add_extension(_aia(urls, with_ocsp=True), critical=False)
            .add_extension(_crl_dp(urls.crl), critical=False)
        )
    else:
        # nocheck: validators must not ask the responder about itself (RFC 6960 §4.2.2.2.1).
        builder = (
            builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
            .add_extension(x509.OCSPNoCheck(), critical=False)
            .add_extension(_aia(urls, with_ocsp=False), critical=False)
        )
    return _Authority(key, builder.sign(issuing.key, signature_hash(issuing.key)))


def _store(
    directory: Path, stem: str, key: PrivateKey, cert: x509.Certificate, pem_suffix: str = ".pem"
) -> tuple[Path, Path]:
    key_path, cert_path = directory / f"{stem}.key.pem", directory / f"{stem}.crt"
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    (directory / f"{stem}{pem_suffix}").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def _store_issued(directory: Path, key: PrivateKey, cert: x509.Certificate) -> tuple[Path, Path]:
    directory.mkdir(exist_ok=True, mode=0o700)
    # ".cert.pem" so that a "*.pem" glob in issued/ never mixes keys and certificates up
    return _store(directory, format(cert.serial_number, "x"), key, cert, pem_suffix=".cert.pem")


def _record(kind: CertKind, cert: x509.Certificate) -> CertRecord:
    return CertRecord(
        serial=cert.serial_number,
        kind=kind,
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def reason_flag(name: str) -> x509.ReasonFlags:
    """The :class:`cryptography.x509.ReasonFlags` member named ``name``."""
    try:
        return _REASONS[name]
    except KeyError as exc:
        raise PkiError(f"unknown revocation reason {name!r}") from exc

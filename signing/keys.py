"""Key backends: a PKCS#12/PEM file (development), a PKCS#11 token, and remote signing by digest.

Every backend offers a pyHanko ``Signer`` for one-phase signing and ``sign_digest`` for
two-phase flows (``signing.pades.prepare_signature`` / ``finish_signature``)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from asn1crypto import algos, cms, x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing.errors import KeyUnavailableError, SigningError

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _hash(digest_algorithm: str) -> hashes.HashAlgorithm:
    try:
        return _HASHES[digest_algorithm.lower()]()
    except KeyError as exc:
        raise SigningError(f"unsupported digest algorithm {digest_algorithm!r}") from exc


def _asn1_cert(cert: object) -> x509.Certificate:
    """Certificates as asn1crypto objects parsed from DER (pitfall 2: built ones re-serialise)."""
    if isinstance(cert, x509.Certificate):
        return x509.Certificate.load(cert.dump())
    der = cert.public_bytes(serialization.Encoding.DER)  # a cryptography certificate
    return x509.Certificate.load(der)


def _read(source: str | Path | bytes) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise KeyUnavailableError(f"cannot read {source}: {exc.strerror}") from exc


def _load_cert_bytes(data: bytes) -> x509.Certificate:
    if data.lstrip().startswith(b"-----BEGIN"):
        from asn1crypto import pem

        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


def _max_signature_size(key: PrivateKey) -> int:
    if isinstance(key, rsa.RSAPrivateKey):
        return (key.key_size + 7) // 8
    # DER SEQUENCE of two INTEGERs, each at most one byte longer than the order.
    n = (key.curve.key_size + 7) // 8 + 1
    return 2 + 2 * (2 + n) + (1 if 2 * (2 + n) > 127 else 0)


def sign_digest_with_key(key: PrivateKey, digest: bytes, digest_algorithm: str) -> bytes:
    """RSA PKCS#1 v1.5 or DER ECDSA over a precomputed digest, with a parsed ``cryptography`` key."""
    algorithm = Prehashed(_hash(digest_algorithm))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), algorithm)
    return key.sign(digest, ec.ECDSA(algorithm))


class CryptographySigner(Signer):
    """A pyHanko ``Signer`` that keeps the parsed ``cryptography`` key.

    pyHanko's ``SimpleSigner`` re-parses (and, with cryptography ≥ 42, re-validates) the key on
    every signature and ignores ``dry_run``, signing twice per document; this one does neither."""

    def __init__(self, key: PrivateKey, certificate: x509.Certificate,
                 chain: Sequence[x509.Certificate], *, embed_roots: bool = True) -> None:
        self._key = key
        self._placeholder = bytes(_max_signature_size(key))
        self._templates: dict[str, _CmsTemplate] = {}
        super().__init__(
            signing_cert=certificate,
            cert_registry=SimpleCertificateStore.from_certs([certificate, *chain]),
            embed_roots=embed_roots,
        )

    async def async_sign(self, data_digest: bytes, digest_algorithm: str, dry_run=False, use_pades=False,
                         timestamper=None, signed_attr_settings=None, is_pdf_sig=True, encap_content_info=None):
        """PAdES CMS from DER pieces cached per digest algorithm (see :class:`_CmsTemplate`);
        anything unusual (dry runs, extra attributes, non-PDF content) takes pyHanko's path."""
        settings = signed_attr_settings
        usual = (not dry_run and use_pades and is_pdf_sig and encap_content_info is None
                 and (settings is None or (settings.adobe_revinfo_attr is None
                                           and settings.cades_signed_attrs is None))
                 and not self.attribute_certs and self.signed_attr_prov_spec is None
                 and self.unsigned_attr_prov_spec is None)
        if not usual:
            return await super().async_sign(data_digest, digest_algorithm, dry_run, use_pades, timestamper,
                                             signed_attr_settings, is_pdf_sig, encap_content_info)
        template = self._templates.get(digest_algorithm)
        if template is None:
            dummy = await super().async_sign(bytes(len(data_digest)), digest_algorithm, dry_run=True,
                                             use_pades=True)
            template = self._templates[digest_algorithm] = _CmsTemplate(dummy)
        return await template.sign(data_digest, digest_algorithm, self, timestamper)

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            return self._placeholder
        algorithm = _hash(digest_algorithm)
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), algorithm)
        return self._key.sign(data, ec.ECDSA(algorithm))


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + body


_OID_MESSAGE_DIGEST = bytes.fromhex("06092a864886f70d010904")
_OID_TIMESTAMP_TOKEN = bytes.fromhex("060b2a864886f70d010910020e")
_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")


class _CmsTemplate:
    """The parts of a PAdES CMS SignedData that are the same for every signature of one key:
    certificates, algorithm identifiers, the signer identifier and the content-type and
    signing-certificate-v2 attributes, taken as DER from a pyHanko dry run once.

    Per signature only the message-digest attribute, the signature value and (B-T) the timestamp
    token are new, and they are spliced in as bytes: asn1crypto re-serialises a CMS built in
    memory (certificates included) on every ``dump()``, which was most of the signing time."""

    def __init__(self, dry_run: cms.ContentInfo) -> None:
        signed_data = dry_run["content"]
        signer_info = signed_data["signer_infos"][0]
        self.head = b"".join(signed_data[name].dump() for name in ("version", "digest_algorithms",
                                                                   "encap_content_info", "certificates"))
        self.signer_head = signer_info["version"].dump() + signer_info["sid"].dump() + \
            signer_info["digest_algorithm"].dump()
        self.signature_algorithm = signer_info["signature_algorithm"].dump()
        self.fixed_attrs = [attr.dump() for attr in signer_info["signed_attrs"]
                            if attr["type"].native != "message_digest"]

    async def sign(self, data_digest: bytes, digest_algorithm: str, signer: Signer, timestamper) -> cms.ContentInfo:
        digest_attr = _der(0x30, _OID_MESSAGE_DIGEST + _der(0x31, _der(0x04, data_digest)))
        attrs = b"".join(sorted([*self.fixed_attrs, digest_attr]))  # DER: a SET OF is sorted
        signature = await signer.async_sign_raw(_der(0x31, attrs), digest_algorithm)
        unsigned = b""
        if timestamper is not None:
            imprint = hashlib.new(digest_algorithm, signature).digest()
            token = await timestamper.async_timestamp(imprint, digest_algorithm)
            unsigned = _der(0xA1, _der(0x30, _OID_TIMESTAMP_TOKEN + _der(0x31, token.dump())))
        signer_info = _der(0x30, self.signer_head + _der(0xA0, attrs) + self.signature_algorithm
                           + _der(0x04, signature) + unsigned)
        signed_data = _der(0x30, self.head + _der(0x31, signer_info))
        return cms.ContentInfo.load(_der(0x30, _OID_SIGNED_DATA + _der(0xA0, signed_data)))


class _FixedIdentity:
    """``certificate`` and ``chain`` for backends that know both when they are built."""

    _certificate: x509.Certificate
    _chain: list[x509.Certificate]

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def chain(self) -> list[x509.Certificate]:
        return list(self._chain)


class FileKeyBackend(_FixedIdentity):
    """A private key and certificate from a PKCS#12 or PEM file: for development and tests."""

    def __init__(self, key: PrivateKey, certificate: x509.Certificate,
                 chain: Sequence[x509.Certificate] = ()) -> None:
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise KeyUnavailableError(f"unsupported key type {type(key).__name__}")
        self._key = key
        self._certificate = _asn1_cert(certificate)
        self._chain = [_asn1_cert(c) for c in chain]
        self._signer = CryptographySigner(key, self._certificate, self._chain)

    @classmethod
    def from_pkcs12(cls, source: str | Path | bytes, passphrase: str | bytes | None) -> FileKeyBackend:
        """Load a PKCS#12 (.p12/.pfx) file or its bytes; a wrong passphrase is KeyUnavailableError."""
        data = _read(source)
        password = passphrase.encode() if isinstance(passphrase, str) else passphrase
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyUnavailableError("cannot open the PKCS#12 file: wrong passphrase or damaged file") from exc
        if key is None or cert is None:
            raise KeyUnavailableError("the PKCS#12 file holds no private key and certificate")
        return cls(key, cert, extra or ())

    @classmethod
    def from_pem(cls, key: str | Path | bytes, cert: str | Path | bytes,
                 chain: Sequence[str | Path | bytes] = (), passphrase: str | bytes | None = None) -> FileKeyBackend:
        """Load a PEM (or DER) private key, its certificate and the issuing chain."""
        password = passphrase.encode() if isinstance(passphrase, str) else passphrase
        key_bytes = _read(key)
        try:
            if key_bytes.lstrip().startswith(b"-----BEGIN"):
                private_key = serialization.load_pem_private_key(key_bytes, password)
            else:
                private_key = serialization.load_der_private_key(key_bytes, password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyUnavailableError("cannot load the private key: wrong passphrase or damaged file") from exc
        try:
            certificate = _load_cert_bytes(_read(cert))
            chain_certs = [_load_cert_bytes(_read(c)) for c in chain]
            certificate.native  # noqa: B018 - parse now, so a bad file fails here
        except ValueError as exc:
            raise KeyUnavailableError("cannot parse the certificate") from exc
        return cls(private_key, certificate, chain_certs)

    def signer(self) -> Signer:
        return self._signer

    def sign_digest(self, digest: bytes, digest_algorithm: str) -> bytes:
        return sign_digest_with_key(self._key, digest, digest_algorithm)


class _TokenLogins:
    """PKCS#11 logs in per application, not per session: a second ``C_Login`` on the same token
    fails with ``UserAlreadyLoggedIn``, and closing the session that logged in logs every other
    session out. So each token gets one login session, kept while any backend is open; backends
    work in their own sessions beside it and must present the same PIN."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str], list] = {}  # (module, label) -> [login session, PIN digest, users]

    def acquire(self, module_path: str, token_label: str, pin: str):
        import pkcs11
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign.pkcs11 import open_pkcs11_session

        key, digest = (module_path, token_label), hashlib.sha256(pin.encode()).digest()
        criteria = TokenCriteria(label=token_label)
        with self._lock:
            try:
                entry = self._tokens.get(key)
                if entry is None:
                    login = open_pkcs11_session(module_path, token_criteria=criteria, user_pin=pin)
                    entry = self._tokens[key] = [login, digest, 0]
                elif not hmac.compare_digest(entry[1], digest):
                    raise KeyUnavailableError(f"cannot open token {token_label!r}: PinIncorrect")
                session = open_pkcs11_session(module_path, token_criteria=criteria)
            except (pkcs11.PKCS11Error, SigningError, OSError, RuntimeError) as exc:
                if isinstance(exc, KeyUnavailableError):
                    raise
                raise KeyUnavailableError(f"cannot open token {token_label!r}: {type(exc).__name__} {exc}") from exc
            entry[2] += 1
            return session

    def release(self, module_path: str, token_label: str, session) -> None:
        import pkcs11

        with self._lock:
            entry = self._tokens.get((module_path, token_label))
            try:
                session.close()
                if entry is not None:
                    entry[2] -= 1
                    if entry[2] <= 0:
                        del self._tokens[(module_path, token_label)]
                        entry[0].close()  # logs out
            except pkcs11.PKCS11Error as exc:
                raise KeyUnavailableError("closing the PKCS#11 session failed") from exc


_LOGINS = _TokenLogins()


class Pkcs11KeyBackend:
    """A key on a PKCS#11 token (SoftHSM2 in development, an HSM in production).

    Use as a context manager, or call ``open()`` / ``close()``: one session per backend. EC keys
    are signed with raw CKM_ECDSA over a digest we compute, which SoftHSM2 2.6 requires."""

    def __init__(self, module_path: str, token_label: str, pin: str, key_label: str,
                 cert: x509.Certificate | str, chain: Sequence[x509.Certificate] = ()) -> None:
        self._module_path = module_path
        self._token_label = token_label
        self._pin = pin
        self._key_label = key_label
        self._cert_source = cert
        self._chain = [_asn1_cert(c) for c in chain]
        self._session = None
        self._certificate: x509.Certificate | None = (
            _asn1_cert(cert) if isinstance(cert, x509.Certificate) else None)
        self._key = None

    def open(self) -> Pkcs11KeyBackend:
        """Open a session on the logged-in token and find the key (and the certificate if given by
        label). The first backend of a token logs in; see :class:`_TokenLogins`."""
        import pkcs11
        from pkcs11 import Attribute, ObjectClass

        if self._session is not None:
            return self
        session = _LOGINS.acquire(self._module_path, self._token_label, self._pin)
        try:
            self._key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=self._key_label)
            if self._certificate is None:
                found = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE,
                                                  Attribute.LABEL: self._cert_source}))
                if not found:
                    raise KeyUnavailableError(f"no certificate labelled {self._cert_source!r} on the token")
                self._certificate = x509.Certificate.load(found[0][Attribute.VALUE])
        except pkcs11.PKCS11Error as exc:
            _LOGINS.release(self._module_path, self._token_label, session)
            raise KeyUnavailableError(f"no usable key labelled {self._key_label!r}: {type(exc).__name__}") from exc
        except KeyUnavailableError:
            _LOGINS.release(self._module_path, self._token_label, session)
            raise
        self._session = session
        return self

    def close(self) -> None:
        """Close the session (the last one of the token logs out); safe to call twice."""
        session, self._session, self._key = self._session, None, None
        if session is not None:
            _LOGINS.release(self._module_path, self._token_label, session)

    def __enter__(self) -> Pkcs11KeyBackend:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self):
        if self._session is None:
            raise KeyUnavailableError("the PKCS#11 session is not open: call open() or use `with`")
        return self._session

    @property
    def _is_ec(self) -> bool:
        return self.certificate.public_key.algorithm == "ec"

    @property
    def certificate(self) -> x509.Certificate:
        if self._certificate is None:
            raise KeyUnavailableError("the certificate is read from the token: open the backend first")
        return self._certificate

    @property
    def chain(self) -> list[x509.Certificate]:
        return list(self._chain)

    def signer(self) -> Signer:
        from pyhanko.sign.pkcs11 import PKCS11Signer

        return PKCS11Signer(self._require_open(), key_label=self._key_label, signing_cert=self.certificate,
                            ca_chain=self._chain, use_raw_mechanism=self._is_ec)

    def sign_digest(self, digest: bytes, digest_algorithm: str) -> bytes:
        import pkcs11
        from pkcs11 import Mechanism

        self._require_open()
        _hash(digest_algorithm)
        try:
            if self._is_ec:
                raw = self._key.sign(digest, mechanism=Mechanism.ECDSA)
                return algos.DSASignature.from_p1363(raw).dump()
            info = algos.DigestInfo({"digest_algorithm": {"algorithm": digest_algorithm.lower()}, "digest": digest})
            return self._key.sign(info.dump(), mechanism=Mechanism.RSA_PKCS)
        except pkcs11.PKCS11Error as exc:
            raise KeyUnavailableError(f"the token refused to sign: {type(exc).__name__}") from exc


class _DigestCallbackSigner(Signer):
    """Hashes the signed attributes here, and sends only the digest to a callback."""

    def __init__(self, backend: DigestSigningBackend) -> None:
        self._backend = backend
        super().__init__(signing_cert=backend.certificate,
                         cert_registry=SimpleCertificateStore.from_certs([backend.certificate, *backend.chain]))

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            return bytes(self._backend.estimated_signature_size)
        digest = hashlib.new(digest_algorithm, data).digest()
        return await asyncio.to_thread(self._backend.sign_digest, digest, digest_algorithm)


class DigestSigningBackend(_FixedIdentity):
    """Remote signing by digest: the key lives elsewhere (a CSC service, another backend, a
    person's token) and is reached through ``sign_digest_fn(digest, digest_algorithm)``."""

    def __init__(self, certificate: x509.Certificate, chain: Sequence[x509.Certificate],
                 sign_digest_fn: Callable[[bytes, str], bytes], *, estimated_signature_size: int = 512) -> None:
        self._certificate = _asn1_cert(certificate)
        self._chain = [_asn1_cert(c) for c in chain]
        self._sign_digest_fn = sign_digest_fn
        self.estimated_signature_size = estimated_signature_size

    @classmethod
    def wrapping(cls, backend: object) -> DigestSigningBackend:
        """Reach another backend through its ``sign_digest`` only (as a remote service would)."""
        return cls(backend.certificate, backend.chain, backend.sign_digest)

    def signer(self) -> Signer:
        return _DigestCallbackSigner(self)

    def sign_digest(self, digest: bytes, digest_algorithm: str) -> bytes:
        return self._sign_digest_fn(digest, digest_algorithm)

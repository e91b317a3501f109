"""The axis as docsvc reaches it: one ``AxisTransport`` per organisation (each authenticates with its
own secret, see ``AxisSettings``), and the organisation's seal, loaded once, for the edXML signature."""

from __future__ import annotations

import hashlib
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy.orm import Session

from docsvc import errors
from docsvc.organisations.models import Organisation
from docsvc.pki import keystore
from docsvc.pki.trust import other_certs
from docsvc.principal import SERVICE_ACTOR
from docsvc.settings import Settings
from docsvc.signatures import keys_service
from inter_axis.client import HubAxisTransport, HubEndpointSpec
from inter_axis.transport import AxisTransport
from inter_axis.xmldsig import SigningKey, signing_key_of
from signing.keys import Pkcs11KeyBackend

_lock = threading.Lock()
_transports: dict[tuple[str, str, str], HubAxisTransport] = {}
_seals: dict[tuple[str, str], SigningKey] = {}


class _TokenRsaKey:
    """An organisation's seal kept on the HSM, shaped like cryptography's RSA key for the edXML
    signer: the SHA-256 digest goes to the token, the private key never leaves it. The token session
    stays open for the process (opening costs a login) and is used by one thread at a time."""

    def __init__(self, backend: Pkcs11KeyBackend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self.certificates = [x509.load_der_x509_certificate(c.dump())
                             for c in (backend.certificate, *backend.chain)]

    def public_key(self):
        return self.certificates[0].public_key()

    def close(self) -> None:
        self._backend.close()

    def sign(self, data: bytes, pad: padding.AsymmetricPadding, algorithm: hashes.HashAlgorithm) -> bytes:
        if not isinstance(pad, padding.PKCS1v15) or not isinstance(algorithm, hashes.SHA256):
            raise ValueError("the token key signs RSA PKCS#1 v1.5 with SHA-256 only")
        with self._lock:
            return self._backend.sign_digest(hashlib.sha256(data).digest(), "sha256")


def forget_seals() -> None:
    """Drop the cached seals (after a key rotation, or at shutdown): token sessions are closed, so
    the HSM login ends with the last of them."""
    with _lock:
        seals = list(_seals.values())
        _seals.clear()
    for seal in seals:
        close = getattr(seal.key, "close", None)
        if close is not None:
            close()


def enabled(settings: Settings) -> bool:
    return bool(settings.axis.endpoint)


def transport_for(settings: Settings, organ_id: str) -> AxisTransport:
    """The (pooled, thread-safe) transport acting as ``organ_id``; ``AxisUnavailableError`` when the
    axis is not configured or the organisation has no credential."""
    axis = settings.axis
    secret = axis.secret_for(organ_id)
    if not axis.endpoint:
        raise errors.AxisNotConfiguredError("no axis endpoint is configured (axis.endpoint)")
    if secret is None:
        raise errors.AxisNotConfiguredError(f"organisation {organ_id} has no axis credential (axis.credentials)",
                                            organ_id=organ_id)
    key = (axis.endpoint, organ_id, secret)
    with _lock:
        transport = _transports.get(key)
        if transport is None:
            transport = _transports[key] = HubAxisTransport(HubEndpointSpec(
                endpoint=axis.endpoint, agency_id=organ_id, secret=secret,
                max_package_bytes=axis.max_package_bytes))
        return transport


def seal_key(session: Session, settings: Settings, org: Organisation) -> SigningKey | None:
    """The organisation's seal (RSA key + certificate chain) for the edXML signature, created by the
    development PKI on first use; None when no seal can be had (production without the hook): the
    package is then sent unsigned and the receiver sees ``no_signature``.

    Opened once per process and key: the PKCS#12 costs a key derivation and loading an RSA key
    ~40 ms, against ~1 ms for a signature."""
    try:
        key = keys_service.ensure_seal(session, settings, SERVICE_ACTOR, org)
    except errors.SigningUnavailableError:
        return None
    session.flush()
    cache_key = (org.organ_id, key.serial)
    with _lock:
        cached = _seals.get(cache_key)
    if cached is None:
        if key.protection == "pkcs11":
            token_key = _TokenRsaKey(keystore.open_hsm_seal(settings, org.organ_id, other_certs(settings)))
            cached = signing_key_of(token_key, token_key.certificates)
        else:
            private_key, cert, chain = pkcs12.load_key_and_certificates(
                key.pkcs12, keystore.seal_passphrase(settings, org.organ_id).encode())
            cached = signing_key_of(private_key, [cert, *(chain or [])])
        with _lock:
            _seals[cache_key] = cached
    return cached

"""How signing keys are protected at rest, and how they are opened for one signature.

- Personal keys: PKCS#12 encrypted (AES-256, PBKDF2 — cryptography's ``BestAvailableEncryption``)
  under a passphrase derived from the owner's PIN and the service secret (``pin_passphrase``).
  The server keeps no other copy, so it cannot sign without the PIN; and a stolen database
  alone does not allow an offline search of the small PIN space, because the secret is not in it.
- Organisation seal keys: PKCS#12 encrypted under a passphrase derived (HMAC-SHA256) from the
  service secret (``DOCSVC_SECRET_KEY`` / ``<data_dir>/secret_key``) and the organisation's
  mã định danh. Anyone holding that secret and the database could use the seal, which is why
  only the clerk of the organisation may ask for it, confirmed with their own PIN and TOTP.
- Seals on an HSM (``signing.pkcs11_module`` set): the key stays on the PKCS#11 token, labelled
  with the organisation's mã định danh (:func:`open_hsm_seal`); the database keeps only its
  certificate. Personal keys stay PIN-protected PKCS#12 (a per-user token is not wired).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from docsvc import errors
from docsvc.settings import Settings
from signing.errors import KeyUnavailableError
from signing.keys import FileKeyBackend, Pkcs11KeyBackend

MIN_PIN_LENGTH = 6


def check_new_pin(pin: str) -> None:
    """A PIN must be at least six characters; digits-only PINs are fine (smart-card style)."""
    if len(pin) < MIN_PIN_LENGTH:
        raise errors.ValidationFailedError(f"the PIN must have at least {MIN_PIN_LENGTH} characters")


def pin_passphrase(settings: Settings, user_id: int, pin: str) -> str:
    """The passphrase of a personal PKCS#12: the PIN peppered with the service secret (HMAC-SHA256).

    A 6-digit PIN has only 10^6 values; with the pepper, guessing needs the secret too, and online
    guesses are counted and locked out."""
    message = f"docsvc-pin-v1:{user_id}:{pin}".encode()
    digest = hmac.new(settings.signing_secret().encode(), message, hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode()


def seal_passphrase(settings: Settings, organ_id: str) -> str:
    """The server-held passphrase protecting one organisation's seal PKCS#12."""
    digest = hmac.new(settings.signing_secret().encode(), f"docsvc-seal-v1:{organ_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode()


def pack(private_key, certificate: x509.Certificate, chain: list[x509.Certificate], passphrase: str,
         name: str) -> bytes:
    """PKCS#12 of key, certificate and chain encrypted under ``passphrase``."""
    return pkcs12.serialize_key_and_certificates(
        name.encode(), private_key, certificate, chain,
        serialization.BestAvailableEncryption(passphrase.encode()))


def unlock(pkcs12_bytes: bytes, passphrase: str) -> FileKeyBackend | None:
    """The key backend, or None when ``passphrase`` does not open the PKCS#12."""
    try:
        return FileKeyBackend.from_pkcs12(pkcs12_bytes, passphrase)
    except KeyUnavailableError:
        return None


def open_hsm_seal(settings: Settings, organ_id: str, chain) -> Pkcs11KeyBackend:
    """An organisation's seal on the configured PKCS#11 token: its private key and certificate are
    both labelled with the organisation's mã định danh. ``signing_unavailable`` when the token or
    the key cannot be opened (the caller has changed nothing yet)."""
    signing = settings.signing
    if not (signing.pkcs11_module and signing.pkcs11_token_label and signing.pkcs11_pin):
        raise errors.SigningUnavailableError("the HSM needs signing.pkcs11_module, pkcs11_token_label and pkcs11_pin")
    backend = Pkcs11KeyBackend(signing.pkcs11_module, signing.pkcs11_token_label,
                               signing.pkcs11_pin.get_secret_value(), organ_id, cert=organ_id, chain=chain)
    try:
        return backend.open()
    except KeyUnavailableError as exc:
        raise errors.SigningUnavailableError(f"the seal of {organ_id} cannot be used on the HSM: {exc}") from exc

"""Enrolling signing keys and opening them for one signature (PIN, lockout, audit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from docsvc import errors
from docsvc.audit import service as audit
from docsvc.organisations.models import Organisation
from docsvc.pki import keystore
from docsvc.pki.service import require_dev_pki
from docsvc.pki.trust import other_certs
from docsvc.principal import Actor
from docsvc.settings import Settings
from docsvc.signatures.models import SigningKey
from docsvc.users import security
from docsvc.users.models import User
from signing.devpki import IssuedKey
from signing.keys import FileKeyBackend


def default_personal_id(user: User) -> str:
    """Development only: a stable 12-digit stand-in for the user's CCCD."""
    return f"{990000000000 + user.id:012d}"


def _store_issued(session: Session, issued: IssuedKey, *, kind: str, organisation_id: int, user_id: int | None,
                  passphrase: str, protection: str) -> SigningKey:
    p12 = keystore.pack(issued.private_key, issued.certificate, list(issued.chain), passphrase,
                        issued.certificate.subject.rfc4514_string())
    # The dev PKI keeps an unencrypted copy; the PIN-protected PKCS#12 must be the only one.
    issued.key_path.unlink(missing_ok=True)
    session.execute(update(SigningKey).where(*_owned_by(kind, organisation_id, user_id)).values(is_active=False))
    key = SigningKey(kind=kind, organisation_id=organisation_id, user_id=user_id,
                     certificate=issued.certificate.public_bytes(serialization.Encoding.DER),
                     serial=format(issued.serial, "x"), subject=issued.certificate.subject.rfc4514_string(),
                     not_after=issued.certificate.not_valid_after_utc, pkcs12=p12, protection=protection)
    session.add(key)
    session.flush()
    return key


def enrol_personal(session: Session, settings: Settings, actor: Actor, pin: str,
                   personal_id: str | None = None) -> SigningKey:
    """Issue a personal certificate from the development PKI and keep its key under ``pin``."""
    keystore.check_new_pin(pin)
    pki = require_dev_pki(settings)
    user = session.get(User, actor.id)
    if user is None:
        raise errors.NotFoundError("user not found")
    org = session.get(Organisation, user.organisation_id)
    issued = pki.issue_personal(user.full_name, personal_id or default_personal_id(user), org.name,
                                position=user.position)
    key = _store_issued(session, issued, kind="personal", organisation_id=org.id, user_id=user.id,
                        passphrase=keystore.pin_passphrase(settings, user.id, pin), protection="pin")
    audit.record(session, actor, "signing_key.enrolled", object_type="signing_key", object_id=key.id,
                 kind="personal", serial=key.serial)
    session.commit()
    return key


def ensure_seal(session: Session, settings: Settings, actor: Actor, organisation: Organisation) -> SigningKey:
    """The organisation's active seal key: on the HSM when one is configured, else issued by the
    development PKI on first use."""
    if settings.signing.pkcs11_module:
        return _hsm_seal(session, settings, actor, organisation)
    key = active_key(session, "seal", organisation.id, None)
    if key is not None:
        return key
    pki = require_dev_pki(settings)
    issued = pki.issue_seal(organisation.name, organisation.organ_id)
    key = _store_issued(session, issued, kind="seal", organisation_id=organisation.id, user_id=None,
                        passphrase=keystore.seal_passphrase(settings, organisation.organ_id), protection="server")
    audit.record(session, actor, "signing_key.enrolled", object_type="signing_key", object_id=key.id,
                 organisation_id=organisation.id, kind="seal", serial=key.serial)
    return key


def _owned_by(kind: str, organisation_id: int, user_id: int | None):
    owner = SigningKey.user_id.is_(None) if user_id is None else SigningKey.user_id == user_id
    return (SigningKey.kind == kind, SigningKey.organisation_id == organisation_id, owner,
            SigningKey.is_active.is_(True))


def active_key(session: Session, kind: str, organisation_id: int, user_id: int | None) -> SigningKey | None:
    """The newest active key of that owner (a personal key: user_id; a seal: user_id None)."""
    return session.scalar(select(SigningKey).where(*_owned_by(kind, organisation_id, user_id))
                          .order_by(SigningKey.id.desc()))


def list_keys(session: Session, actor: Actor) -> list[SigningKey]:
    return list(session.scalars(select(SigningKey).where(SigningKey.user_id == actor.id).order_by(SigningKey.id)))


def require_personal_key(session: Session, actor: Actor) -> SigningKey:
    key = active_key(session, "personal", actor.organisation_id, actor.id)
    if key is None:
        raise errors.NoSigningKeyError("enrol a signing key first (POST /signing/keys)")
    return key


def confirm(session: Session, settings: Settings, actor: Actor, key: SigningKey, pin: str, otp: str,
            *, purpose: str) -> FileKeyBackend:
    """Open the actor's personal ``key`` with ``pin`` and check their TOTP ``otp``.

    Failures are counted, audited and committed before the error is raised (like logins);
    the TOTP step is consumed only when both factors pass, so a code cannot be replayed."""
    now = datetime.now(UTC)
    if key.locked_until and key.locked_until > now:
        raise errors.SigningKeyLockedError("the signing key is locked after repeated wrong PINs",
                                           retry_after=key.locked_until.isoformat())
    user = session.get(User, actor.id)
    if not user.totp_enabled or not user.totp_secret:
        raise errors.TotpNotEnrolledError("signing needs a confirmed TOTP enrolment (POST /auth/totp/enrol)")
    backend = keystore.unlock(key.pkcs12, keystore.pin_passphrase(settings, key.user_id, pin))
    if backend is None:
        _count_failure(session, settings, actor, key, now, "signing.pin_failed", purpose)
        raise errors.InvalidPinError("incorrect PIN")
    step = security.totp_step(user.totp_secret, otp, user.totp_last_step)
    if step is None:
        # Counted like a wrong PIN: whoever knows the PIN must not get unlimited guesses at the code.
        _count_failure(session, settings, actor, key, now, "signing.otp_failed", purpose)
        raise errors.InvalidOtpError("incorrect or already used one-time code")
    user.totp_last_step, key.failed_pins = step, 0
    session.commit()
    return backend


def _count_failure(session: Session, settings: Settings, actor: Actor, key: SigningKey, now: datetime,
                   action: str, purpose: str) -> None:
    """Count one failed confirmation (wrong PIN or code), lock the key after too many, audit and
    commit it; raises ``SigningKeyLockedError`` when this failure locked the key."""
    key.failed_pins += 1
    locked = key.failed_pins >= settings.signing.pin_max_failures
    if locked:
        key.locked_until, key.failed_pins = now + timedelta(minutes=settings.signing.pin_lockout_minutes), 0
    audit.record(session, actor, action, object_type="signing_key", object_id=key.id, purpose=purpose, locked=locked)
    session.commit()
    if locked:
        raise errors.SigningKeyLockedError("the signing key is locked after repeated wrong PINs or codes")


def _hsm_seal(session: Session, settings: Settings, actor: Actor, organisation: Organisation) -> SigningKey:
    """The key row standing for the seal on the HSM: its certificate, no key material. A new
    certificate on the token (renewal) replaces the row, as re-enrolment does."""
    with keystore.open_hsm_seal(settings, organisation.organ_id, other_certs(settings)) as hsm:
        cert = x509.load_der_x509_certificate(hsm.certificate.dump())
    serial = format(cert.serial_number, "x")
    key = active_key(session, "seal", organisation.id, None)
    if key is not None and key.protection == "pkcs11" and key.serial == serial:
        return key
    session.execute(update(SigningKey).where(*_owned_by("seal", organisation.id, None)).values(is_active=False))
    key = SigningKey(kind="seal", organisation_id=organisation.id, user_id=None,
                     certificate=cert.public_bytes(serialization.Encoding.DER), serial=serial,
                     subject=cert.subject.rfc4514_string(), not_after=cert.not_valid_after_utc, pkcs12=b"",
                     protection="pkcs11")
    session.add(key)
    session.flush()
    audit.record(session, actor, "signing_key.enrolled", object_type="signing_key", object_id=key.id,
                 organisation_id=organisation.id, kind="seal", serial=serial, protection="pkcs11")
    return key


def open_seal(settings: Settings, organisation: Organisation, key: SigningKey):
    """The seal key, from the HSM or opened with the server-held passphrase (callers check who
    asks). An HSM backend holds a token session: close it (it is a context manager)."""
    if key.protection == "pkcs11":
        return keystore.open_hsm_seal(settings, organisation.organ_id, other_certs(settings))
    backend = keystore.unlock(key.pkcs12, keystore.seal_passphrase(settings, organisation.organ_id))
    if backend is None:
        raise errors.SigningUnavailableError("the seal key cannot be opened with this server's secret")
    return backend


def certificate_of(key: SigningKey) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(key.certificate)

"""Domain errors. Services raise these; ``docsvc.http_errors`` maps each class to one HTTP
status and a stable machine-readable ``code`` in one table."""

from __future__ import annotations

from typing import Any


class DocsvcError(Exception):
    """Root of docsvc's domain errors. ``code`` is stable and documented for API clients."""

    code = "error"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFoundError(DocsvcError):
    """Unknown id, or a record of another organisation (indistinguishable on purpose)."""

    code = "not_found"


class ValidationFailedError(DocsvcError):
    code = "validation_failed"


class InvalidIdentifierError(ValidationFailedError):
    code = "invalid_identifier"


class ConflictError(DocsvcError):
    code = "conflict"


class DuplicateRegistrationError(ConflictError):
    code = "duplicate_registration"


class InvalidStateError(ConflictError):
    code = "invalid_state"


class AuthenticationError(DocsvcError):
    code = "authentication_failed"


class OtpRequiredError(AuthenticationError):
    code = "otp_required"


class AccountLockedError(AuthenticationError):
    code = "account_locked"


class PermissionDeniedError(DocsvcError):
    code = "permission_denied"


class PayloadTooLargeError(DocsvcError):
    code = "payload_too_large"


class UnsupportedMediaError(DocsvcError):
    code = "unsupported_media_type"


class NotAPdfError(UnsupportedMediaError):
    code = "not_a_pdf"


class IntegrityFailedError(DocsvcError):
    """Stored bytes no longer match the SHA-256 recorded at upload."""

    code = "file_integrity_failed"


class StorageUnavailableError(DocsvcError):
    code = "storage_unavailable"


class RateLimitedError(DocsvcError):
    """Too many requests from one client in the current window."""

    code = "rate_limited"


class UpstreamUnavailableError(DocsvcError):
    """A service we depend on (timestamp authority, OCSP responder, the interlink axis) failed."""

    code = "upstream_unavailable"


class SigningUnavailableError(DocsvcError):
    """Signing cannot run here: no development PKI, no TSA configured, no key backend."""

    code = "signing_unavailable"


class InvalidPinError(PermissionDeniedError):
    """The signing key's PIN is wrong (counted; repeated failures lock the key)."""

    code = "invalid_pin"


class InvalidOtpError(PermissionDeniedError):
    """The one-time code confirming a signature is wrong or was already used."""

    code = "invalid_otp"


class SigningKeyLockedError(AccountLockedError):
    """Too many wrong PINs: the signing key is locked for a while."""

    code = "signing_key_locked"


class NoSigningKeyError(InvalidStateError):
    """The user (or organisation) has no enrolled signing key."""

    code = "no_signing_key"


class TotpNotEnrolledError(InvalidStateError):
    """Signing needs a confirmed TOTP enrolment."""

    code = "totp_not_enrolled"


class SigningFailedError(ValidationFailedError):
    """The stored version could not be signed (not a usable PDF, or the signing engine refused)."""

    code = "signing_failed"


class PdfUnreadableError(ValidationFailedError):
    """A PDF given for validation is malformed or truncated (``invalid_pdf``, 422)."""

    code = "invalid_pdf"


class PdfEncryptedError(PdfUnreadableError):
    """A PDF given for validation is encrypted; its signatures cannot be read without the password."""

    code = "encrypted_pdf"


class InvalidSignatureRequestError(ValidationFailedError):
    """The requested signature profile cannot be applied (``detail.reason`` says which rule)."""

    code = "invalid_signature_request"


class AxisNotConfiguredError(InvalidStateError):
    """The interlink axis is not configured, or this organisation has no axis credential."""

    code = "axis_not_configured"


class NotExchangedError(InvalidStateError):
    """The document was not exchanged over the interlink axis (in the direction the action needs)."""

    code = "not_exchanged_over_axis"


class AxisStatusNotAllowedError(InvalidStateError):
    """This edXML status code cannot be sent now (wrong side, wrong order, or a recall not pending)."""

    code = "axis_status_not_allowed"


class VersionConflictError(ConflictError):
    """The version to sign is no longer the document's latest (someone signed or uploaded since)."""

    code = "version_conflict"

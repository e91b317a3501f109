"""Errors of the signing library. "Could not evaluate" is an exception; "the signature is bad"
is a result (see ``signing.validation``), as in pyHanko."""


class SigningError(Exception):
    """Root of every error raised by the signing library."""


class InvalidPdfError(SigningError):
    """The input is not a PDF pyHanko can read (malformed, truncated, not a PDF)."""


class EncryptedPdfError(InvalidPdfError):
    """The PDF is encrypted; it must be decrypted before it can be signed or validated."""


class KeyUnavailableError(SigningError):
    """The key cannot be used: wrong PIN or passphrase, missing token or file, unknown label."""


class PkiError(SigningError):
    """The development PKI could not be created, read or used."""


class TrustConfigError(SigningError):
    """The trust configuration is unusable: no trust roots, an unreadable certificate file, a bad cache directory."""

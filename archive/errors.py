"""Errors raised by object stores. Vendor errors (OSError, minio's S3Error) are translated
into these so that callers never depend on one backend's exception types."""


class ArchiveError(Exception):
    """Root of every error raised by the archive library."""


class ObjectNotFoundError(ArchiveError):
    """No object is stored under the requested key."""


class ObjectTooLargeError(ArchiveError):
    """The stream exceeded the caller's size limit; nothing was stored."""


class ObjectIntegrityError(ArchiveError):
    """The bytes read back do not hash to the SHA-256 the object is addressed by."""


class ObjectStoreUnavailableError(ArchiveError):
    """The backend could not be reached or refused the operation (credentials, network)."""

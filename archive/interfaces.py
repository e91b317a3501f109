"""The ``ObjectStore`` role: a small, content-addressed blob store.

Keys are derived from content: ``sha256/<first two hex digits>/<64 hex digits>``. Writing the
same bytes twice stores them once. A ``put`` either makes the whole object visible under its
final key or leaves nothing visible at all (a failed or oversized upload leaves no partial
object), so a database row written *after* ``put`` returns can never point at a missing object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

#: Size of the chunks implementations read and yield; large enough for throughput, small
#: enough that a 1 GB object never sits in memory.
CHUNK_SIZE = 1024 * 1024


def key_for_digest(sha256_hex: str) -> str:
    """Return the storage key for an object whose SHA-256 (lower-case hex) is given."""
    return f"sha256/{sha256_hex[:2]}/{sha256_hex}"


def digest_from_key(key: str) -> str:
    """Return the SHA-256 hex digest a content-addressed key names (its last segment)."""
    return key.rsplit("/", 1)[-1]


_KEY = re.compile(r"sha256/([0-9a-f]{2})/\1[0-9a-f]{62}")
_METADATA_KEY = re.compile(r"[a-z0-9][a-z0-9_-]*")


def is_valid_key(key: str) -> bool:
    """Whether ``key`` has the content-addressed form; anything else names no object.

    Stores check this before touching a backend, so a key from a URL can never reach
    outside the store (``../``) or name an S3 staging object.
    """
    return _KEY.fullmatch(key) is not None


def normalize_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Return ``metadata`` with lower-cased keys, refusing keys S3 could not carry.

    S3 sends metadata as HTTP headers, whose names are case-insensitive ASCII; every store
    normalises the same way so that all backends give back the same dictionary. Values may be
    any text (stores encode what headers cannot carry). Raises ``ValueError`` for a bad key or
    a non-string value.
    """
    normalized: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        lowered = name.lower() if isinstance(name, str) else ""
        if _METADATA_KEY.fullmatch(lowered) is None:
            raise ValueError(f"metadata key {name!r} must match [a-z0-9][a-z0-9_-]*")
        if not isinstance(value, str):
            raise ValueError(f"metadata value for {name!r} must be a string")
        if lowered in normalized:
            raise ValueError(f"metadata key {name!r} given twice (keys ignore case)")
        normalized[lowered] = value
    return normalized


@dataclass(frozen=True)
class StoredObject:
    """What a store knows about one object."""

    key: str
    """Content-addressed key, ``sha256/ab/abcd…``."""
    size: int
    """Length in bytes."""
    sha256: str
    """Lower-case hex SHA-256 of the content; equal to the key's last segment."""
    content_type: str = "application/octet-stream"
    """MIME type given by the first writer of this content."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Free-form string metadata given by the first writer of this content."""


@runtime_checkable
class ObjectStore(Protocol):
    """A content-addressed object store. Every implementation passes tests/archive/contract."""

    def put(
        self,
        chunks: Iterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        max_size: int | None = None,
    ) -> StoredObject:
        """Stream ``chunks`` into the store and return the stored object.

        Memory use is bounded by a chunk (or one multipart part), never the object size.
        Raises ``ObjectTooLargeError`` as soon as more than ``max_size`` bytes arrive; on that
        or any other failure nothing is left visible under any key.
        """
        ...

    def get(self, key: str, *, verify: bool = True) -> Iterator[bytes]:
        """Yield the object's bytes in chunks.

        With ``verify`` the bytes are hashed while streaming and ``ObjectIntegrityError`` is
        raised after the last chunk if they do not match the key. Raises
        ``ObjectNotFoundError`` (before yielding anything) for an unknown key.
        """
        ...

    def stat(self, key: str) -> StoredObject:
        """Return the object's description; ``ObjectNotFoundError`` if absent."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; ``ObjectNotFoundError`` if absent."""
        ...

    def list(self, prefix: str = "sha256/") -> Iterator[str]:
        """Yield the keys of all stored objects under ``prefix``, in no particular order."""
        ...

    def discard_abandoned(self, older_than_seconds: float = 24 * 3600) -> int:
        """Remove partial uploads left by a killed process (never visible as objects) that
        are older than ``older_than_seconds``; return how many were removed."""
        ...

    def verify(self, key: str) -> bool:
        """Read the whole object back and say whether it still hashes to its key (fixity)."""
        ...

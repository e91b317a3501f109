"""Object stores for docsvc's documents and archive: content-addressed, streamed, verified.

This library never imports docsvc, FastAPI or the database layer.
"""

from archive.errors import (
    ArchiveError,
    ObjectIntegrityError,
    ObjectNotFoundError,
    ObjectStoreUnavailableError,
    ObjectTooLargeError,
)
from archive.factory import ObjectStoreSpec, make_object_store
from archive.filesystem import FilesystemObjectStore
from archive.interfaces import ObjectStore, StoredObject
from archive.s3 import S3ObjectStore

__all__ = [
    "ArchiveError",
    "FilesystemObjectStore",
    "ObjectIntegrityError",
    "ObjectNotFoundError",
    "ObjectStore",
    "ObjectStoreSpec",
    "ObjectStoreUnavailableError",
    "ObjectTooLargeError",
    "S3ObjectStore",
    "StoredObject",
    "make_object_store",
]

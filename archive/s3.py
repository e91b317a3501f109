"""``S3ObjectStore``: objects in an S3 bucket (MinIO, SeaweedFS, AWS, …) through ``minio``.

S3 needs an object's name before the upload starts, but our name is the hash of the content.
So ``put`` streams the content to a private staging name (``staging/<uuid4>``) as a multipart
upload, hashing on the way, then copies it server-side to ``sha256/ab/<hash>`` with its
metadata and deletes the staging object. Only the copy makes the object visible, and it is
complete when it appears. ``list`` shows ``sha256/`` only, so staging objects are never listed;
``discard_abandoned`` removes those left by a killed process.

Costs and limits:

- Memory: minio copies each part twice while splitting off a look-ahead byte, so an upload
  holds about three parts at once (~48 MiB of Python objects with 16 MiB parts; a 1 GB upload
  peaked at ~114 MB RSS, interpreter included). Parts go one at a time, see ``_upload``.
- The server-side copy rewrites the data once more on most servers (SeaweedFS, MinIO).
- S3 allows 10,000 parts, so the largest object is ``10,000 × part_size`` (156 GiB with the
  16 MiB default). Objects over 5 GiB cannot be copied in one request; minio's
  ``copy_object`` then switches to a multipart ``compose_object`` by itself.
- S3 user metadata totals at most 2 KB (values are percent-encoded, so non-ASCII costs more).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.datatypes import Upload
from minio.error import MinioException, S3Error

from archive.errors import (
    ObjectIntegrityError,
    ObjectNotFoundError,
    ObjectStoreUnavailableError,
    ObjectTooLargeError,
)
from archive.interfaces import (
    CHUNK_SIZE,
    StoredObject,
    digest_from_key,
    is_valid_key,
    key_for_digest,
    normalize_metadata,
)

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's smallest allowed multipart part (except the last)."""

STAGING_PREFIX = "staging/"
"""Where uploads wait while their hash is computed; never listed, never addressed by key."""

_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_META_PREFIX = "x-amz-meta-"
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})


class S3ObjectStore:
    """An ``ObjectStore`` in one S3 bucket; memory per upload is bounded by a few parts."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str | None = None,
        part_size: int = 16 * 1024 * 1024,
    ) -> None:
        """``endpoint`` is ``host:port``; an ``http://`` or ``https://`` URL also works and
        then decides ``secure``."""
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3 minimum)")
        if "://" in endpoint:
            url = urlsplit(endpoint)
            endpoint, secure = url.netloc, url.scheme == "https"
        self._bucket = bucket
        self._part_size = part_size
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=_http_client(),
        )

    @property
    def bucket(self) -> str:
        """The bucket holding the objects."""
        return self._bucket

    def create_bucket_if_missing(self) -> None:
        """Create the bucket unless it exists (for development setups and tests)."""
        with _s3_errors():
            if self._client.bucket_exists(self._bucket):
                return
            try:
                self._client.make_bucket(self._bucket)
            except S3Error as exc:
                # Another process created it between our check and our request.
                if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

    def put(
        self,
        chunks: Iterable[bytes],
        *,
        content_type: str = _DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
        max_size: int | None = None,
    ) -> StoredObject:
        """Upload to a staging name, then copy to the content address (unless present)."""
        metadata = normalize_metadata(metadata)
        staging = f"{STAGING_PREFIX}{uuid.uuid4()}"
        reader = _HashingReader(chunks, max_size)
        try:
            self._upload(staging, reader)
            stored = StoredObject(
                key_for_digest(reader.hexdigest()),
                reader.size,
                reader.hexdigest(),
                content_type,
                metadata,
            )
            if self.exists(stored.key):
                return self.stat(stored.key)  # first writer's content type and metadata win
            with _s3_errors():
                self._client.copy_object(
                    self._bucket,
                    stored.key,
                    CopySource(self._bucket, staging),
                    metadata=_to_headers(content_type, metadata),
                    metadata_directive=REPLACE,
                )
            return stored
        finally:
            self._remove_staging(staging)

    def get(self, key: str, *, verify: bool = True) -> Iterator[bytes]:
        """Send the GET now (so a missing key fails at the call) and stream the body."""
        if not is_valid_key(key):
            raise ObjectNotFoundError(key)
        with _s3_errors(key):
            response = self._client.get_object(self._bucket, key)
        return _stream_body(response, key, verify)

    def stat(self, key: str) -> StoredObject:
        """Describe the object from a HEAD request."""
        if not is_valid_key(key):
            raise ObjectNotFoundError(key)
        with _s3_errors(key):
            info = self._client.stat_object(self._bucket, key)
        return StoredObject(
            key=key,
            size=info.size or 0,
            sha256=digest_from_key(key),
            content_type=info.content_type or _DEFAULT_CONTENT_TYPE,
            metadata=_from_headers(info.metadata or {}),
        )

    def exists(self, key: str) -> bool:
        """Whether a HEAD request finds the object."""
        try:
            self.stat(key)
        except ObjectNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        """Remove the object; S3 deletes succeed for absent keys, so look first."""
        self.stat(key)
        with _s3_errors(key):
            self._client.remove_object(self._bucket, key)

    def list(self, prefix: str = "sha256/") -> Iterator[str]:
        """List content-addressed keys under ``prefix``; staging objects never match."""
        with _s3_errors():
            for item in self._client.list_objects(self._bucket, prefix=prefix, recursive=True):
                if item.object_name and is_valid_key(item.object_name):
                    yield item.object_name

    def verify(self, key: str) -> bool:
        """Download and re-hash the whole object; ``False`` if it no longer matches."""
        try:
            for _ in self.get(key, verify=True):
                pass
        except ObjectIntegrityError:
            return False
        return True

    def discard_abandoned(self, older_than_seconds: float = 24 * 3600) -> int:
        """Remove staging objects and abort multipart uploads left by a killed process.

        Returns how many were removed. Only those older than ``older_than_seconds`` go, so
        live uploads are untouched. (A bucket lifecycle rule expiring ``staging/`` and
        aborting incomplete uploads does the same job server-side, where supported.)
        """
        cutoff = datetime.now(UTC).timestamp() - older_than_seconds
        removed = 0
        with _s3_errors():
            for item in self._client.list_objects(self._bucket, prefix=STAGING_PREFIX):
                if item.last_modified and item.last_modified.timestamp() < cutoff:
                    self._client.remove_object(self._bucket, item.object_name)
                    removed += 1
            for upload in self.incomplete_uploads():
                started = upload.initiated_time
                if started is None or started.timestamp() < cutoff:
                    self._client._abort_multipart_upload(
                        self._bucket, upload.object_name, upload.upload_id
                    )
                    removed += 1
        return removed

    def incomplete_uploads(self) -> list[Upload]:
        """Multipart uploads under ``staging/`` not yet completed or aborted (first 1,000).

        minio 7.2 only offers this as a private method; the version is pinned.
        """
        with _s3_errors():
            result = self._client._list_multipart_uploads(
                self._bucket, prefix=STAGING_PREFIX
            )
        return list(result.uploads)

    def _upload(self, staging: str, reader: _HashingReader) -> None:
        """Stream ``reader`` to ``staging``; minio aborts the multipart upload on failure."""
        try:
            with _s3_errors():
                self._client.put_object(
                    self._bucket,
                    staging,
                    reader,
                    length=-1,
                    part_size=self._part_size,
                    # minio's parallel parts leak their threads and can race the abort
                    # when the stream fails, and each keeps a part in memory.
                    num_parallel_uploads=1,
                )
        except _ChunksFailed as exc:
            # Re-raise the caller's own exception, keeping whatever it was chained to.
            raise exc.original from exc.original.__cause__

    def _remove_staging(self, staging: str) -> None:
        """Delete the staging object if the upload got that far; never mask another error."""
        try:
            self._client.remove_object(self._bucket, staging)
        except (MinioException, urllib3.exceptions.HTTPError):
            # Harmless: staging objects are invisible, and discard_abandoned collects them.
            log.warning("could not remove staging object %s", staging, exc_info=True)


class _ChunksFailed(Exception):
    """Carries an exception raised by the caller's chunks through minio.

    minio aborts its multipart upload only for ``Exception`` subclasses, so a
    ``GeneratorExit`` or ``KeyboardInterrupt`` from the chunks would leave the upload
    dangling; wrapping makes minio clean up, and ``put`` unwraps it again.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original


class _HashingReader:
    """File-like view of the caller's chunks for ``put_object``: hashes, counts, limits."""

    def __init__(self, chunks: Iterable[bytes], max_size: int | None) -> None:
        self._chunks = iter(chunks)
        self._max_size = max_size
        self._sha256 = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._exhausted = False
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        """Return up to ``size`` bytes, gathered into one piece.

        minio asks for a whole part at once and appends what each ``read`` returns to a
        ``bytes`` object; answering with the whole part avoids copying it over and over.
        """
        while not self._exhausted and (size < 0 or self._pending_size < size):
            self._pull()
        if size < 0 or self._pending_size <= size:
            taken, self._pending, self._pending_size = self._pending, [], 0
            return b"".join(taken)
        # Split only the last chunk that straddles ``size``: copying a whole part twice
        # more would double the memory an upload needs.
        taken, used = [], 0
        while used + len(self._pending[0]) <= size:
            used += len(self._pending[0])
            taken.append(self._pending.pop(0))
        head = self._pending[0]
        taken.append(head[: size - used])
        self._pending[0] = head[size - used :]
        self._pending_size -= size
        return b"".join(taken)

    def hexdigest(self) -> str:
        """SHA-256 of everything read so far."""
        return self._sha256.hexdigest()

    def _pull(self) -> None:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._exhausted = True
            return
        except BaseException as exc:
            raise _ChunksFailed(exc) from None
        self.size += len(chunk)
        if self._max_size is not None and self.size > self._max_size:
            raise ObjectTooLargeError(f"object exceeds the limit of {self._max_size} bytes")
        self._sha256.update(chunk)
        self._pending.append(bytes(chunk))
        self._pending_size += len(chunk)


def _stream_body(response, key: str, verify: bool) -> Iterator[bytes]:
    """Yield the response body in ``CHUNK_SIZE`` pieces, checking the hash at the end."""
    sha256 = hashlib.sha256()
    try:
        with _s3_errors(key):
            for chunk in response.stream(CHUNK_SIZE):
                if verify:
                    sha256.update(chunk)
                yield chunk
    finally:
        response.close()
        response.release_conn()
    if verify and sha256.hexdigest() != digest_from_key(key):
        raise ObjectIntegrityError(f"{key} no longer matches its SHA-256")


def _to_headers(content_type: str, metadata: Mapping[str, str]) -> dict[str, str]:
    """Build copy headers; values are percent-encoded because headers carry only ASCII
    (and S3 servers trim surrounding spaces)."""
    headers = {f"{_META_PREFIX}{name}": quote(value, safe="") for name, value in metadata.items()}
    headers["Content-Type"] = content_type
    return headers


def _from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Recover user metadata from response headers (whose name case servers vary)."""
    return {
        name.lower()[len(_META_PREFIX) :]: unquote(value)
        for name, value in headers.items()
        if name.lower().startswith(_META_PREFIX)
    }


def _http_client() -> urllib3.PoolManager:
    """minio's default client, but giving up on an unreachable server in seconds.

    minio waits up to five minutes to connect and retries five times, which would hang a
    request thread for half an hour while S3 is down.
    """
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=300),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
        ),
    )


@contextmanager
def _s3_errors(key: str | None = None) -> Iterator[None]:
    """Translate minio and urllib3 errors into archive errors."""
    try:
        yield
    except S3Error as exc:
        if key is not None and exc.code in _NOT_FOUND_CODES:
            raise ObjectNotFoundError(key) from exc
        raise ObjectStoreUnavailableError(f"S3 refused the request: {exc.code}") from exc
    except (MinioException, urllib3.exceptions.HTTPError) as exc:
        raise ObjectStoreUnavailableError(f"S3 unreachable: {exc}") from exc

"""Fixtures for the object store contract: one ``store`` fixture, every implementation.

The S3 store runs against a real SeaweedFS started once per session; every test gets a
fresh bucket (or a fresh directory for the filesystem store).
"""

from __future__ import annotations

import io
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from minio import Minio

from archive import FilesystemObjectStore, ObjectStore, ObjectStoreSpec, S3ObjectStore, make_object_store
from archive.interfaces import is_valid_key
from archive.s3 import MIN_PART_SIZE
from tests.support.seaweed import S3Endpoint, run_seaweedfs


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A SeaweedFS S3 server for the whole session; its data is deleted afterwards."""
    directory = tmp_path_factory.mktemp("seaweedfs")
    with run_seaweedfs(directory) as endpoint:
        yield endpoint
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def s3_bucket(seaweedfs: S3Endpoint) -> Iterator[str]:
    """Name of a bucket that does not exist yet, removed with its contents afterwards."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    yield name
    client = seaweedfs.client()
    if client.bucket_exists(name):
        # SeaweedFS deletes non-empty buckets (and frees their volumes) in one call.
        client.remove_bucket(name)


def make_s3_store(endpoint: S3Endpoint, bucket: str) -> S3ObjectStore:
    """An S3 store whose parts are S3's minimum, so a few MiB already span several parts."""
    store = S3ObjectStore(
        endpoint.endpoint,
        endpoint.access_key,
        endpoint.secret_key,
        bucket,
        part_size=MIN_PART_SIZE,
    )
    store.create_bucket_if_missing()
    return store


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """A fresh, empty store of each kind."""
    if request.param == "filesystem":
        return make_object_store(ObjectStoreSpec(kind="filesystem", path=tmp_path / "objects"))
    return make_s3_store(
        request.getfixturevalue("seaweedfs"), request.getfixturevalue("s3_bucket")
    )


class Backdoor(Protocol):
    """Reaches behind a store's API, as a failing disk or a stray process would."""

    def corrupt(self, key: str) -> None:
        """Change the stored bytes of ``key`` without the store knowing."""

    def leftovers(self) -> list[str]:
        """Everything the backend holds besides complete, visible objects."""


class FilesystemBackdoor:
    """Flips bytes in object files; finds temp files and orphaned sidecars."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def corrupt(self, key: str) -> None:
        path = self._root / key
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    def leftovers(self) -> list[str]:
        found = [str(path) for path in (self._root / "tmp").iterdir()]
        for sidecar in (self._root / "meta").rglob("*"):
            key = str(sidecar.relative_to(self._root / "meta"))
            if sidecar.is_file() and not (self._root / key).is_file():
                found.append(f"orphan sidecar {key}")
        return found


class S3Backdoor:
    """Overwrites objects with a raw client; finds staging objects and open uploads."""

    def __init__(self, client: Minio, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def corrupt(self, key: str) -> None:
        data = self._client.get_object(self._bucket, key).read()
        tampered = bytes([data[0] ^ 0xFF]) + data[1:]
        self._client.put_object(self._bucket, key, io.BytesIO(tampered), len(tampered))

    def leftovers(self) -> list[str]:
        found = [
            item.object_name
            for item in self._client.list_objects(self._bucket, recursive=True)
            if not is_valid_key(item.object_name or "")
        ]
        uploads = self._client._list_multipart_uploads(self._bucket).uploads
        found += [f"incomplete upload {upload.object_name}" for upload in uploads]
        return found


@pytest.fixture
def backdoor(store: ObjectStore, request: pytest.FixtureRequest) -> Backdoor:
    """The backdoor matching the ``store`` under test."""
    if isinstance(store, FilesystemObjectStore):
        return FilesystemBackdoor(store.root)
    assert isinstance(store, S3ObjectStore)
    return S3Backdoor(request.getfixturevalue("seaweedfs").client(), store.bucket)

"""The ``ObjectStore`` contract: every test runs against every implementation.

A few backend-specific checks (S3 credentials, cleanup of abandoned uploads, the factory)
follow at the end.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from archive import (
    FilesystemObjectStore,
    ObjectIntegrityError,
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreSpec,
    ObjectStoreUnavailableError,
    ObjectTooLargeError,
    S3ObjectStore,
    make_object_store,
)
from archive.interfaces import CHUNK_SIZE
from archive.s3 import MIN_PART_SIZE
from tests.archive.conftest import Backdoor, make_s3_store
from tests.support.seaweed import S3Endpoint

MiB = 1024 * 1024
KEY_FORMAT = re.compile(r"sha256/[0-9a-f]{2}/[0-9a-f]{64}")
UNKNOWN_KEY = "sha256/00/" + "0" * 64


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in chunks of ``size`` bytes, as an upload would arrive."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read_all(store: ObjectStore, key: str, *, verify: bool = True) -> bytes:
    return b"".join(store.get(key, verify=verify))


class ClientDisconnected(BaseException):
    """Like ``GeneratorExit`` or ``KeyboardInterrupt``: not an ``Exception``."""


def failing_upload(data: bytes, error: BaseException) -> Iterator[bytes]:
    yield from pieces(data, MiB)
    raise error


# --- writing and reading ------------------------------------------------------------------


def test_put_then_get_returns_the_same_bytes(store: ObjectStore) -> None:
    data = os.urandom(300_000)

    stored = store.put(pieces(data, 65_536), content_type="application/pdf")

    digest = hashlib.sha256(data).hexdigest()
    assert KEY_FORMAT.fullmatch(stored.key)
    assert stored.key == f"sha256/{digest[:2]}/{digest}"
    assert (stored.sha256, stored.size) == (digest, len(data))
    assert read_all(store, stored.key) == data
    assert store.exists(stored.key)
    assert store.verify(stored.key)


def test_empty_object_round_trips(store: ObjectStore) -> None:
    stored = store.put([])

    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert stored.size == 0
    assert read_all(store, stored.key) == b""
    assert store.stat(stored.key).size == 0


def test_empty_chunks_in_the_stream_are_harmless(store: ObjectStore) -> None:
    stored = store.put([b"", b"ab", b"", b"c", b""])

    assert read_all(store, stored.key) == b"abc"


def test_object_spanning_several_chunks_and_parts(store: ObjectStore) -> None:
    # Three S3 parts at the 5 MiB minimum, arriving in chunks that do not line up with them.
    data = os.urandom(2 * MIN_PART_SIZE + 3)

    stored = store.put(pieces(data, 700_001))

    chunks = list(store.get(stored.key))
    assert b"".join(chunks) == data
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)
    assert store.stat(stored.key).size == len(data)


def test_same_content_is_stored_once_and_keeps_first_description(store: ObjectStore) -> None:
    data = os.urandom(50_000)

    first = store.put([data], content_type="application/pdf", metadata={"by": "first"})
    second = store.put(pieces(data, 999), content_type="text/plain", metadata={"by": "second"})

    assert second.key == first.key
    assert list(store.list()) == [first.key]
    assert second.content_type == "application/pdf"
    assert dict(second.metadata) == {"by": "first"}


def test_concurrent_uploads_of_the_same_content_leave_one_object(store: ObjectStore) -> None:
    data = os.urandom(3 * MiB)

    with ThreadPoolExecutor(max_workers=4) as pool:
        keys = set(pool.map(lambda _: store.put(pieces(data, MiB)).key, range(4)))

    assert len(keys) == 1
    assert list(store.list()) == list(keys)
    assert read_all(store, keys.pop()) == data


def test_concurrent_uploads_of_different_content_with_one_description_all_arrive(store: ObjectStore) -> None:
    # Received packages are stored from several threads at once, every PDF with the same content
    # type: each put must succeed and keep its own bytes and description.
    blobs = [os.urandom(2_000) for _ in range(160)]

    def put(data: bytes):
        return store.put(pieces(data, 4096), content_type="application/pdf", metadata={"source": "axis"})

    with ThreadPoolExecutor(max_workers=6) as pool:
        stored = list(pool.map(put, blobs))

    assert len({s.key for s in stored}) == len(blobs)
    for data, obj in zip(blobs, stored, strict=True):
        assert read_all(store, obj.key) == data
        found = store.stat(obj.key)
        assert (found.content_type, dict(found.metadata)) == ("application/pdf", {"source": "axis"})
    store.delete(stored[0].key)  # one object's removal leaves the others described
    assert store.stat(stored[1].key).content_type == "application/pdf"


# --- description ----------------------------------------------------------------------------


def test_content_type_and_metadata_survive_stat(store: ObjectStore) -> None:
    metadata = {
        "document-id": "12/CT-UBND",
        "subject": "  Quyết định về việc đ/Đ  ",  # Vietnamese, spaces and a slash
        "org_code": "000.00.00.H41",
    }

    stored = store.put([b"%PDF-1.7 ..."], content_type="application/pdf", metadata=metadata)
    described = store.stat(stored.key)

    assert described.content_type == "application/pdf"
    assert dict(described.metadata) == metadata
    assert (described.key, described.size, described.sha256) == (
        stored.key,
        stored.size,
        stored.sha256,
    )


def test_default_content_type_and_no_metadata(store: ObjectStore) -> None:
    described = store.stat(store.put([b"x"]).key)

    assert described.content_type == "application/octet-stream"
    assert dict(described.metadata) == {}


def test_metadata_keys_ignore_case(store: ObjectStore) -> None:
    stored = store.put([b"x"], metadata={"Document-ID": "42"})

    assert dict(store.stat(stored.key).metadata) == {"document-id": "42"}


@pytest.mark.parametrize("metadata", [{"bad key": "v"}, {"": "v"}, {"khóa": "v"}, {"k": 1}])
def test_bad_metadata_is_refused_before_storing(store: ObjectStore, metadata: dict) -> None:
    with pytest.raises(ValueError):
        store.put([b"x"], metadata=metadata)

    assert list(store.list()) == []


# --- unknown keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", [UNKNOWN_KEY, "../../etc/passwd", "staging/abc", "sha256/"])
def test_unknown_key_is_reported_as_not_found(store: ObjectStore, key: str) -> None:
    assert not store.exists(key)
    with pytest.raises(ObjectNotFoundError):
        store.stat(key)
    with pytest.raises(ObjectNotFoundError):
        store.get(key)  # fails at the call, before a response could start streaming
    with pytest.raises(ObjectNotFoundError):
        store.delete(key)
    with pytest.raises(ObjectNotFoundError):
        store.verify(key)


def test_delete_removes_the_object(store: ObjectStore) -> None:
    keep = store.put([b"keep"]).key
    gone = store.put([b"gone"]).key

    store.delete(gone)

    assert not store.exists(gone)
    assert list(store.list()) == [keep]
    with pytest.raises(ObjectNotFoundError):
        store.get(gone)
    with pytest.raises(ObjectNotFoundError):
        store.delete(gone)


# --- failed uploads leave nothing -----------------------------------------------------------


@pytest.mark.parametrize("size", [11, 2 * MIN_PART_SIZE + 1], ids=["small", "multipart"])
def test_too_large_upload_is_refused_and_leaves_nothing(
    store: ObjectStore, backdoor: Backdoor, size: int
) -> None:
    limit = size - 1

    with pytest.raises(ObjectTooLargeError):
        store.put(pieces(b"x" * size, MiB), max_size=limit)

    assert list(store.list()) == []
    assert backdoor.leftovers() == []


def test_upload_exactly_at_the_limit_is_accepted(store: ObjectStore) -> None:
    stored = store.put([b"x" * 10], max_size=10)

    assert stored.size == 10


def test_too_large_is_raised_before_the_whole_stream_is_read(store: ObjectStore) -> None:
    consumed = 0

    def endless() -> Iterator[bytes]:
        nonlocal consumed
        while True:
            consumed += 1
            yield b"x" * MiB

    with pytest.raises(ObjectTooLargeError):
        store.put(endless(), max_size=3 * MiB)

    assert consumed == 4


@pytest.mark.parametrize(
    "error", [RuntimeError("upload broke"), ClientDisconnected()], ids=["exception", "base"]
)
@pytest.mark.parametrize("size", [MiB, 2 * MIN_PART_SIZE], ids=["small", "multipart"])
def test_failing_stream_propagates_its_error_and_leaves_nothing(
    store: ObjectStore, backdoor: Backdoor, error: BaseException, size: int
) -> None:
    with pytest.raises(type(error)) as raised:
        store.put(failing_upload(os.urandom(size), error))

    assert raised.value is error
    assert list(store.list()) == []
    assert backdoor.leftovers() == []


def test_successful_upload_leaves_no_temporary_data(store: ObjectStore, backdoor: Backdoor) -> None:
    store.put(pieces(os.urandom(2 * MIN_PART_SIZE), MiB))

    assert backdoor.leftovers() == []


# --- fixity ---------------------------------------------------------------------------------


def test_corrupted_object_is_detected(store: ObjectStore, backdoor: Backdoor) -> None:
    data = os.urandom(2 * MiB + 5)
    key = store.put(pieces(data, MiB)).key

    backdoor.corrupt(key)

    assert not store.verify(key)
    with pytest.raises(ObjectIntegrityError):
        read_all(store, key)
    assert len(read_all(store, key, verify=False)) == len(data)  # still readable on purpose


# --- listing --------------------------------------------------------------------------------


def test_list_returns_every_object_and_filters_by_prefix(store: ObjectStore) -> None:
    keys = {store.put([f"object {n}".encode()]).key for n in range(40)}

    assert set(store.list()) == keys
    some = sorted(keys)[0]
    fan_out = some[: len("sha256/ab")]
    assert set(store.list(fan_out)) == {key for key in keys if key.startswith(fan_out)}
    assert list(store.list(some)) == [some]
    assert list(store.list("sha256/zz")) == []


def test_empty_store_lists_nothing(store: ObjectStore) -> None:
    assert list(store.list()) == []


# --- S3 only --------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_wrong_credentials_make_the_store_unavailable(
    seaweedfs: S3Endpoint, s3_bucket: str
) -> None:
    good = make_s3_store(seaweedfs, s3_bucket)
    key = good.put([b"secret"]).key
    bad = S3ObjectStore(seaweedfs.endpoint, seaweedfs.access_key, "wrong-secret", s3_bucket)

    for operation in (
        lambda: bad.put([b"x"]),
        lambda: bad.get(key),
        lambda: bad.stat(key),
        lambda: bad.exists(key),  # not "False": a refusal is not an absence
        lambda: list(bad.list()),
    ):
        with pytest.raises(ObjectStoreUnavailableError):
            operation()


@pytest.mark.s3
def test_s3_unreachable_server_fails_fast() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    store = S3ObjectStore(f"127.0.0.1:{port}", "key", "secret", "bucket", region="us-east-1")

    started = time.monotonic()
    with pytest.raises(ObjectStoreUnavailableError):
        store.stat(UNKNOWN_KEY)
    assert time.monotonic() - started < 10


@pytest.mark.s3
def test_s3_missing_bucket_is_unavailable_not_not_found(seaweedfs: S3Endpoint) -> None:
    store = S3ObjectStore(
        seaweedfs.endpoint, seaweedfs.access_key, seaweedfs.secret_key, "no-such-bucket-x1"
    )

    with pytest.raises(ObjectStoreUnavailableError):
        store.stat(UNKNOWN_KEY)


@pytest.mark.s3
def test_s3_discard_abandoned_removes_abandoned_uploads(
    seaweedfs: S3Endpoint, s3_bucket: str
) -> None:
    store = make_s3_store(seaweedfs, s3_bucket)
    client = seaweedfs.client()
    client.put_object(s3_bucket, "staging/left-by-a-killed-process", io.BytesIO(b"x"), 1)
    client._create_multipart_upload(s3_bucket, "staging/never-completed", {})
    visible = store.put([b"keep me"]).key

    assert store.discard_abandoned(older_than_seconds=3600) == 0  # too recent to be abandoned
    assert store.discard_abandoned(older_than_seconds=-60) == 2

    assert store.incomplete_uploads() == []
    assert [item.object_name for item in client.list_objects(s3_bucket, recursive=True)] == [
        visible
    ]


# --- filesystem only ------------------------------------------------------------------------


def test_filesystem_discard_abandoned_removes_only_stale_files(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path)
    stale, fresh = tmp_path / "tmp" / "put-stale", tmp_path / "tmp" / "put-fresh"
    stale.write_bytes(b"half an upload")
    fresh.write_bytes(b"an upload in progress")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))

    assert store.discard_abandoned(older_than_seconds=600) == 1

    assert not stale.exists() and fresh.exists()


def test_filesystem_object_keeps_its_metadata_across_instances(tmp_path: Path) -> None:
    key = FilesystemObjectStore(tmp_path).put([b"x"], metadata={"a": "b"}).key

    assert dict(FilesystemObjectStore(tmp_path).stat(key).metadata) == {"a": "b"}


# --- factory --------------------------------------------------------------------------------


def test_factory_builds_each_kind(tmp_path: Path) -> None:
    filesystem = make_object_store(ObjectStoreSpec(kind="filesystem", path=tmp_path))
    s3 = make_object_store(
        ObjectStoreSpec(
            kind="s3", endpoint="http://127.0.0.1:1", access_key="a", secret_key="b", bucket="c"
        )
    )

    assert isinstance(filesystem, FilesystemObjectStore)
    assert isinstance(s3, S3ObjectStore)
    assert isinstance(filesystem, ObjectStore) and isinstance(s3, ObjectStore)


@pytest.mark.parametrize(
    "spec",
    [
        ObjectStoreSpec(kind="filesystem"),
        ObjectStoreSpec(kind="s3", endpoint="127.0.0.1:1", access_key="a", secret_key="b"),
        ObjectStoreSpec(kind="ftp"),  # type: ignore[arg-type]
    ],
)
def test_factory_refuses_incomplete_specs(spec: ObjectStoreSpec) -> None:
    with pytest.raises(ValueError):
        make_object_store(spec)

"""Build the configured ``ObjectStore`` from a plain spec (the service maps its settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from archive.filesystem import FilesystemObjectStore
from archive.interfaces import ObjectStore
from archive.s3 import S3ObjectStore


@dataclass(frozen=True)
class ObjectStoreSpec:
    """Which object store to use and how to reach it."""

    kind: Literal["filesystem", "s3"]
    """``filesystem`` (embedded default) or ``s3`` (MinIO, SeaweedFS, AWS …)."""
    path: Path | None = None
    """Root directory of a filesystem store."""
    endpoint: str | None = None
    """S3 ``host:port`` (or an ``http(s)://`` URL)."""
    access_key: str | None = None
    """S3 access key."""
    secret_key: str | None = None
    """S3 secret key."""
    bucket: str | None = None
    """S3 bucket holding the objects."""
    secure: bool = False
    """Use HTTPS for S3 (ignored when ``endpoint`` is a URL, whose scheme decides)."""
    region: str | None = None
    """S3 region; ``None`` asks the server."""


def make_object_store(spec: ObjectStoreSpec) -> ObjectStore:
    """Return the store ``spec`` describes; ``ValueError`` names a missing field."""
    if spec.kind == "filesystem":
        return FilesystemObjectStore(_required(spec, "path"))
    if spec.kind == "s3":
        return S3ObjectStore(
            _required(spec, "endpoint"),
            _required(spec, "access_key"),
            _required(spec, "secret_key"),
            _required(spec, "bucket"),
            secure=spec.secure,
            region=spec.region,
        )
    raise ValueError(f"unknown object store kind {spec.kind!r}")


def _required(spec: ObjectStoreSpec, name: str) -> Any:
    value = getattr(spec, name)
    if value is None or value == "":
        raise ValueError(f"object store kind {spec.kind!r} needs {name}")
    return value

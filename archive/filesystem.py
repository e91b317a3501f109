"""``FilesystemObjectStore``: the embedded default, objects as files under one directory.

Layout under ``root``::

    sha256/ab/abcd…        the objects, one file each, path = key
    meta/sha256/ab/abcd…   a JSON sidecar per object: content type and metadata
    tmp/                   uploads in progress (same filesystem, so renames are atomic)

An upload is written to ``tmp/``, fsynced, and renamed into place only once complete, so a
reader never sees a partial object; its sidecar is renamed into place first, so a visible
object always has its metadata.

Sidecars are never changed in place, only replaced whole, so objects with the same description
(every PDF without metadata, say) can share one sidecar file: a new object's sidecar is another
name (a hard link) of an identical one this store wrote before, which spares creating, writing
and fsyncing a file per object. Each object still has its own sidecar name; deleting an object
removes that name only.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

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

_DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: Distinct sidecar contents whose file is remembered for linking; beyond, the memory starts over.
_SHARED_SIDECARS = 256


class FilesystemObjectStore:
    """An ``ObjectStore`` keeping objects as files under ``root``; one host, no server."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        self._tmp = self._root / "tmp"
        # Sidecar bytes → (path, device, inode) of a sidecar file with those bytes this store wrote.
        self._sidecars: dict[bytes, tuple[str, int, int]] = {}
        # Temp names for links: itertools.count's next() is atomic, a generator's is not (two
        # threads putting at once would get "generator already executing").
        self._link_prefix, self._link_numbers = f"link-{secrets.token_hex(6)}", itertools.count()
        with _os_errors():
            for directory in (self._root / "sha256", self._root / "meta", self._tmp):
                directory.mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        """The directory holding the objects, their sidecars and uploads in progress."""
        return self._root

    def put(
        self,
        chunks: Iterable[bytes],
        *,
        content_type: str = _DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
        max_size: int | None = None,
    ) -> StoredObject:
        """Stream ``chunks`` to a temp file, then rename it to its content address."""
        metadata = normalize_metadata(metadata)
        with _os_errors():
            fd, name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        temp, published = Path(name), False
        try:
            with os.fdopen(fd, "wb") as out:
                sha256, size = _write_hashing(chunks, out, max_size)
            key = key_for_digest(sha256)
            if self.exists(key):
                return self.stat(key)  # first writer's content type and metadata win
            stored = StoredObject(key, size, sha256, content_type, metadata)
            self._publish(temp, stored)
            published = True  # the temp name is gone: renamed into place
            return stored
        finally:
            # Runs on every exit, including GeneratorExit or KeyboardInterrupt raised while
            # reading ``chunks``.
            if not published:
                temp.unlink(missing_ok=True)

    def get(self, key: str, *, verify: bool = True) -> Iterator[bytes]:
        """Open the object now (so a missing key fails at the call) and stream it."""
        with _os_errors(key):
            if not is_valid_key(key):
                raise ObjectNotFoundError(key)
            handle = self._object_path(key).open("rb")
        return _read_chunks(handle, key, verify)

    def stat(self, key: str) -> StoredObject:
        """Describe the object from its file size and its sidecar."""
        with _os_errors(key):
            if not is_valid_key(key):
                raise ObjectNotFoundError(key)
            size = self._object_path(key).stat().st_size
            sidecar = self._read_sidecar(key)
        return StoredObject(
            key=key,
            size=size,
            sha256=digest_from_key(key),
            content_type=sidecar.get("content_type", _DEFAULT_CONTENT_TYPE),
            metadata=sidecar.get("metadata", {}),
        )

    def exists(self, key: str) -> bool:
        """Whether the object's file is in place."""
        return is_valid_key(key) and self._object_path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the object, then its sidecar (never the other way round)."""
        with _os_errors(key):
            if not is_valid_key(key):
                raise ObjectNotFoundError(key)
            self._object_path(key).unlink()
            self._sidecar_path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "sha256/") -> Iterator[str]:
        """Walk ``sha256/``; temp files and sidecars live elsewhere and never show up."""
        with _os_errors():
            for fan_out in os.scandir(self._root / "sha256"):
                if not fan_out.is_dir():
                    continue
                for entry in os.scandir(fan_out.path):
                    key = f"sha256/{fan_out.name}/{entry.name}"
                    if key.startswith(prefix) and is_valid_key(key):
                        yield key

    def verify(self, key: str) -> bool:
        """Re-hash the whole file; ``False`` if it no longer matches its key."""
        try:
            for _ in self.get(key, verify=True):
                pass
        except ObjectIntegrityError:
            return False
        return True

    def discard_abandoned(self, older_than_seconds: float = 24 * 3600) -> int:
        """Remove uploads abandoned by a killed process; return how many were removed.

        Only files untouched for ``older_than_seconds`` go: a live upload keeps writing, so
        its modification time stays recent.
        """
        cutoff = time.time() - older_than_seconds
        removed = 0
        with _os_errors():
            for entry in os.scandir(self._tmp):
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
        return removed

    def _publish(self, temp: Path, stored: StoredObject) -> None:
        """Make the object visible: sidecar first, then the object, each atomically."""
        sidecar = {"content_type": stored.content_type, "metadata": dict(stored.metadata)}
        with _os_errors():
            self._write_sidecar(self._sidecar_path(stored.key), json.dumps(sidecar).encode())
            target = self._object_path(stored.key)
            _ensure_directory(target.parent)
            os.replace(temp, target)
            _fsync_directory(target.parent)

    def _write_sidecar(self, target: Path, data: bytes) -> None:
        """Put ``data`` at ``target`` atomically and durably: as another name of a sidecar file with
        the same bytes this store wrote, when there is one, else as a new file."""
        _ensure_directory(target.parent)
        shared = self._sidecars.get(data)  # one lookup: another thread may drop the entry meanwhile
        if shared is not None:
            if self._link_sidecar(shared, target):
                return
            self._sidecars.pop(data, None)  # deleted with its object, too many links, …: a new one
        self._write_atomically(target, data)
        found = os.stat(target)
        if len(self._sidecars) >= _SHARED_SIDECARS:
            self._sidecars.clear()
        self._sidecars[data] = (str(target), found.st_dev, found.st_ino)

    def _link_sidecar(self, shared: tuple[str, int, int], target: Path) -> bool:
        """Make ``target`` a hard link of ``shared`` (path, device, inode) if that path still names
        the very file this store wrote (which was fsynced then); False if it no longer can."""
        link = f"{self._tmp}/{self._link_prefix}-{next(self._link_numbers)}"
        try:
            os.link(shared[0], link)
        except OSError:
            return False
        try:
            found = os.stat(link)
            if (found.st_dev, found.st_ino) == shared[1:]:  # else replaced since: its bytes are not known
                os.replace(link, target)
                _fsync_directory(target.parent)  # the file's bytes are durable: only the new entry is left
                return True
        except OSError:
            pass  # the fallback (a new file) follows
        Path(link).unlink(missing_ok=True)
        return False

    def _write_atomically(self, target: Path, data: bytes) -> None:
        """Write ``data`` to ``target`` through a temp file so readers see all or nothing."""
        _ensure_directory(target.parent)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="meta-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(name, target)
        finally:
            Path(name).unlink(missing_ok=True)
        _fsync_directory(target.parent)

    def _read_sidecar(self, key: str) -> dict:
        try:
            return json.loads(self._sidecar_path(key).read_bytes())
        except FileNotFoundError:
            # Objects written by hand (e.g. restored from a backup without sidecars).
            return {}

    def _object_path(self, key: str) -> Path:
        return self._root / key

    def _sidecar_path(self, key: str) -> Path:
        return self._root / "meta" / key


def _write_hashing(
    chunks: Iterable[bytes], out: BinaryIO, max_size: int | None
) -> tuple[str, int]:
    """Copy ``chunks`` to ``out`` and fsync it; return (sha256 hex, size).

    Errors raised by ``chunks`` itself propagate untouched: they are the caller's.
    """
    sha256 = hashlib.sha256()
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if max_size is not None and size > max_size:
            raise ObjectTooLargeError(f"object exceeds the limit of {max_size} bytes")
        sha256.update(chunk)
        with _os_errors():
            out.write(chunk)
    with _os_errors():
        out.flush()
        os.fsync(out.fileno())
    return sha256.hexdigest(), size


def _read_chunks(handle: BinaryIO, key: str, verify: bool) -> Iterator[bytes]:
    """Yield the file in ``CHUNK_SIZE`` pieces, checking the hash at the end if asked."""
    sha256 = hashlib.sha256()
    with handle:
        while True:
            with _os_errors(key):
                chunk = handle.read(CHUNK_SIZE)
            if not chunk:
                break
            if verify:
                sha256.update(chunk)
            yield chunk
    if verify and sha256.hexdigest() != digest_from_key(key):
        raise ObjectIntegrityError(f"{key} no longer matches its SHA-256")


def _ensure_directory(directory: Path) -> None:
    """Create ``directory`` (and parents) durably: a new entry needs its parent fsynced."""
    if directory.is_dir():
        return
    _ensure_directory(directory.parent)
    directory.mkdir(exist_ok=True)
    _fsync_directory(directory.parent)


def _fsync_directory(directory: Path) -> None:
    """Persist a rename: the new directory entry is only durable once the directory is."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _os_errors(key: str | None = None) -> Iterator[None]:
    """Translate ``OSError`` into archive errors: a missing file is a missing object."""
    try:
        yield
    except FileNotFoundError as exc:
        if key is None:
            raise ObjectStoreUnavailableError(f"store directory missing: {exc}") from exc
        raise ObjectNotFoundError(key) from exc
    except OSError as exc:
        raise ObjectStoreUnavailableError(f"filesystem store failed: {exc}") from exc

"""Package bytes on the hub's disk.

An upload is written to ``incoming/<random>.part`` while it streams in, fsynced, then renamed
to ``packages/<ab>/<message_id>.edxml`` (directory fsynced) *before* the database row that
points at it is committed. So a committed row never points at a missing file; a crash can only
leave a file without a row, which ``sweep`` removes at start-up.

A batch (``place_many``) renames all its files first and fsyncs each directory they went to once;
the hub gives the message ids of one batch the same first two characters, so that is one
directory fsync per batch.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: Seconds of clock adjustment tolerated between the last sweep and files written after it.
SWEEP_CLOCK_MARGIN = 3600


@dataclass
class PartialUpload:
    """An upload being received: bytes so far, their SHA-256, the file they go to."""

    path: Path
    size: int = 0
    _digest: object = None
    _fh: object = None

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


class PackageStorage:
    """Package files under ``root`` (``incoming/`` for uploads, ``packages/`` for accepted ones)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / "incoming"
        self.packages = root / "packages"
        self.incoming.mkdir(parents=True, exist_ok=True)
        self.packages.mkdir(parents=True, exist_ok=True)

    def begin(self) -> PartialUpload:
        path = self.incoming / f"{uuid.uuid4().hex}.part"
        upload = PartialUpload(path=path, _digest=hashlib.sha256())
        upload._fh = open(path, "xb")  # noqa: SIM115 - closed by finish/discard
        return upload

    @staticmethod
    def write(upload: PartialUpload, chunk: bytes) -> None:
        upload._fh.write(chunk)
        upload._digest.update(chunk)
        upload.size += len(chunk)

    @staticmethod
    def finish(upload: PartialUpload) -> None:
        """Make the received bytes durable (still under ``incoming/``); once is enough."""
        if upload._fh.closed:
            return
        upload._fh.flush()
        os.fsync(upload._fh.fileno())
        upload._fh.close()

    @staticmethod
    def discard(upload: PartialUpload) -> None:
        if upload._fh is not None and not upload._fh.closed:
            upload._fh.close()
        upload.path.unlink(missing_ok=True)

    def key_for(self, message_id: str) -> str:
        return f"{message_id[:2]}/{message_id}.edxml"

    def path_of(self, storage_key: str) -> Path:
        return self.packages / storage_key

    def place(self, upload: PartialUpload, storage_key: str) -> Path:
        """Move a finished upload to its final name, durably (rename + directory fsync)."""
        return self.place_many([(upload, storage_key)])[0]

    def place_many(self, moves: list[tuple[PartialUpload, str]]) -> list[Path]:
        """``place`` for several finished uploads: every rename first, then one fsync for each
        directory they went to (and for ``packages/`` when one of those was created)."""
        targets, directories, created = [], {}, False
        for upload, storage_key in moves:
            target = self.path_of(storage_key)
            if target.parent not in directories:
                try:
                    target.parent.mkdir()
                    created = True
                except FileExistsError:
                    pass
                directories[target.parent] = None
            os.replace(upload.path, target)
            targets.append(target)
        if created:  # the new directory's own entry must be durable too
            _fsync_dir(self.packages)
        for directory in directories:
            _fsync_dir(directory)
        return targets

    def remove(self, storage_key: str) -> None:
        self.path_of(storage_key).unlink(missing_ok=True)

    def sweep(self, is_referenced: Callable[[str], bool]) -> list[str]:
        """Delete interrupted uploads and package files no committed row points at (left by a
        crash between placing a file and committing its row). Run before serving.

        Such a file can only have been written since the previous sweep (every start sweeps),
        so only files younger than the last start are looked up; older ones cost one ``stat``."""
        removed = []
        for part in self.incoming.glob("*.part"):
            part.unlink(missing_ok=True)
            removed.append(str(part.relative_to(self.root)))
        marker = self.root / "last-sweep"
        since = marker.stat().st_mtime - SWEEP_CLOCK_MARGIN if marker.exists() else None
        for path in self.packages.glob("*/*.edxml"):
            if since is not None and path.stat().st_mtime < since:
                continue
            if not is_referenced(str(path.relative_to(self.packages))):
                path.unlink(missing_ok=True)
                removed.append(str(path.relative_to(self.root)))
        marker.touch()
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Serving stored files: the integrity check before any byte is sent, and the response."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from archive import ObjectIntegrityError, ObjectNotFoundError, ObjectStore
from archive.interfaces import key_for_digest
from docsvc import errors
from docsvc.audit import service as audit
from docsvc.principal import Actor


def is_intact(store: ObjectStore, key: str | None, sha256: str) -> bool:
    """Whether ``key`` still holds bytes that hash to the SHA-256 recorded at upload."""
    if key != key_for_digest(sha256):
        return False
    try:
        return store.verify(key)
    except (ObjectNotFoundError, ObjectIntegrityError):
        return False


def require_intact(session: Session, store: ObjectStore, actor: Actor, key: str | None, sha256: str, *,
                   object_type: str, object_id: int, **detail) -> None:
    """Refuse to serve a file whose bytes changed since upload, and record the alarm."""
    if is_intact(store, key, sha256):
        return
    audit.record(session, actor, "file.integrity_failed", object_type=object_type, object_id=object_id,
                 sha256=sha256, **detail)
    session.commit()
    raise errors.IntegrityFailedError("the stored file no longer matches its recorded SHA-256", **detail)


def file_response(chunks: Iterator[bytes], *, filename: str, content_type: str, size: int,
                  sha256: str) -> StreamingResponse:
    """A streamed download; the SHA-256 travels along so clients can check what they got."""
    headers = {
        "Content-Length": str(size),
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
        "ETag": f'"{sha256}"',
        "X-Content-SHA256": sha256,
    }
    return StreamingResponse(chunks, media_type=content_type, headers=headers)

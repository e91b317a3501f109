"""Streaming an HTTP request body into the object store without holding it in memory.

Two request shapes are accepted: a raw body (``Content-Type: application/pdf``, the file name
in ``?filename=``), streamed chunk by chunk from the socket to the store; and
``multipart/form-data`` with one ``file`` part, which Starlette spools to disk first."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import Request

from archive import ObjectStore, ObjectStoreUnavailableError, ObjectTooLargeError, StoredObject
from docsvc import errors

_PDF_MAGIC = b"%PDF-"
_PDF_EOF = b"%%EOF"
_WINDOW = 1024  # PDF readers accept the header and %%EOF within 1024 bytes of each end


@dataclass(frozen=True)
class Upload:
    stored: StoredObject
    filename: str
    content_type: str


def openapi_body(raw_type: str) -> dict:
    """OpenAPI description of an upload route's body: a raw ``raw_type`` body or multipart."""
    return {"requestBody": {"content": {
        raw_type: {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object",
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
    }}}


def clean_filename(name: str | None, default: str) -> str:
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip().strip(".")
    return name[:255] or default


def _pdf_checked(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pass chunks through, raising ``NotAPdfError`` if the stream is not PDF-shaped.

    Raising from inside the stream makes the store discard what it received."""
    head, tail, checked_head = b"", b"", False
    for chunk in chunks:
        if not checked_head:
            head += chunk[: _WINDOW - len(head)]
            if len(head) >= _WINDOW:
                _check_head(head)
                checked_head = True
        tail = (tail + chunk)[-_WINDOW:]
        yield chunk
    if not checked_head:
        _check_head(head)
    if _PDF_EOF not in tail:
        raise errors.NotAPdfError("the file is not a complete PDF (no %%EOF marker at its end)")


def _check_head(head: bytes) -> None:
    if _PDF_MAGIC not in head:
        raise errors.NotAPdfError("the file is not a PDF (no %PDF- header)")


async def _coalesced(stream: AsyncIterator[bytes], size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """Join the socket's small chunks (~64 KiB) into ~1 MiB ones, so the worker thread that
    writes them crosses over to the event loop a few times per MiB instead of once per read."""
    pending, length = [], 0
    async for chunk in stream:
        pending.append(chunk)
        length += len(chunk)
        if length >= size:
            yield b"".join(pending)
            pending, length = [], 0
    if pending:
        yield b"".join(pending)


class _BlockingChunks:
    """Iterate an async byte stream from a worker thread, one chunk at a time."""

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        self._stream = _coalesced(stream)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = anyio.from_thread.run(self._stream.__anext__)
            except StopAsyncIteration:
                return
            if chunk:
                yield chunk


def _file_chunks(fileobj, size: int = 1024 * 1024) -> Iterator[bytes]:
    while chunk := fileobj.read(size):
        yield chunk


async def receive(request: Request, store: ObjectStore, *, max_bytes: int, require_pdf: bool,
                  default_name: str) -> Upload:
    """Stream the request's file into ``store``. Oversized → 413, non-PDF → 415; in both cases
    nothing is stored."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise errors.PayloadTooLargeError("upload exceeds the size limit", limit=max_bytes)
    content_type = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        part = form.get("file")
        if part is None or isinstance(part, str):
            raise errors.ValidationFailedError("multipart upload needs one part named 'file'", field="file")
        filename, content_type = part.filename, (part.content_type or "application/octet-stream")
        chunks: Iterator[bytes] = _file_chunks(part.file)
    else:
        filename = request.query_params.get("filename")
        chunks = iter(_BlockingChunks(request.stream()))
    if require_pdf:
        if content_type not in ("application/pdf", "application/octet-stream"):
            raise errors.NotAPdfError("a PDF is required here", content_type=content_type)
        content_type = "application/pdf"
        chunks = _pdf_checked(chunks)
    stored = await anyio.to_thread.run_sync(_put, store, chunks, content_type, max_bytes)
    return Upload(stored, clean_filename(filename, default_name), content_type)


def _put(store: ObjectStore, chunks: Iterator[bytes], content_type: str, max_bytes: int) -> StoredObject:
    try:
        return store.put(chunks, content_type=content_type, max_size=max_bytes)
    except ObjectTooLargeError as exc:
        raise errors.PayloadTooLargeError("upload exceeds the size limit", limit=max_bytes) from exc
    except ObjectStoreUnavailableError as exc:
        raise errors.StorageUnavailableError("the object store is unavailable") from exc

"""Receiving a PDF for public validation: into a temporary file, never into the object store
(anonymous uploads are not kept), with the size limit enforced while the body arrives.

A declared ``Content-Length`` over the limit is refused before any byte is read; a chunked or
lying body is cut off as soon as it passes the limit. Multipart bodies go through Starlette's
parser fed by the same limited stream, so they cannot be spooled whole first."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import BinaryIO

import anyio.to_thread
from fastapi import Request
from starlette.formparsers import MultiPartException, MultiPartParser

from docsvc import errors
from docsvc.uploads import clean_filename
from docsvc.validation.service import check_pdf_header

_MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file
_CHUNK = 1024 * 1024
_RAW_TYPES = ("application/pdf", "application/octet-stream", "")


def _too_large(max_bytes: int) -> errors.PayloadTooLargeError:
    return errors.PayloadTooLargeError("the PDF exceeds the validation size limit", limit=max_bytes)


async def _limited(stream: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(max_bytes)
        yield chunk


async def _raw_to_file(request: Request, max_bytes: int, target: BinaryIO) -> None:
    pending, length, checked = [], 0, False
    async for chunk in _limited(request.stream(), max_bytes):
        pending.append(chunk)
        length += len(chunk)
        if not checked and length >= 1024:
            check_pdf_header(b"".join(pending))  # stop reading a non-PDF after its first KiB
            checked = True
        if length >= _CHUNK:  # one thread hop per MiB, not per socket read
            await anyio.to_thread.run_sync(target.write, b"".join(pending))
            pending, length = [], 0
    if pending:
        await anyio.to_thread.run_sync(target.write, b"".join(pending))


async def _multipart_file(request: Request, max_bytes: int):
    parser = MultiPartParser(request.headers, _limited(request.stream(), max_bytes + _MULTIPART_OVERHEAD),
                             max_files=1, max_fields=5)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise errors.ValidationFailedError(f"malformed multipart body: {exc.message}") from exc
    part = form.get("file")
    if part is None or isinstance(part, str):
        await form.close()
        raise errors.ValidationFailedError("multipart upload needs one part named 'file'", field="file")
    if part.size is not None and part.size > max_bytes:
        await form.close()
        raise _too_large(max_bytes)
    return form, part


@asynccontextmanager
async def received_pdf(request: Request, max_bytes: int) -> AsyncIterator[tuple[BinaryIO, str]]:
    """The request's PDF as a seekable temporary file and its cleaned name; deleted afterwards.

    Oversized → 413 ``payload_too_large``; not a PDF (or another media type) → 415 ``not_a_pdf``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + _MULTIPART_OVERHEAD:
        raise _too_large(max_bytes)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form, part = await _multipart_file(request, max_bytes)
        try:
            yield part.file, clean_filename(part.filename, "document.pdf")
        finally:
            await form.close()
        return
    if content_type not in _RAW_TYPES:
        raise errors.NotAPdfError("a PDF is required here", content_type=content_type)
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    with tempfile.TemporaryFile() as target:
        await _raw_to_file(request, max_bytes, target)
        yield target, clean_filename(request.query_params.get("filename"), "document.pdf")

"""Reading a whole package leniently: header into the model, attachments decoded by an incremental
base64 decoder into temporary files (each with size and SHA-256), every problem a warning.

Memory stays near the header size whatever the attachment size (see :mod:`inter_axis.stream`)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from inter_axis.base64_stream import Base64Sink
from inter_axis.errors import EdxmlError, MissingAttachmentError
from inter_axis.header_reader import locate, read_business, read_manifest, read_message_header, read_status, read_traces
from inter_axis.lenient import LenientReader
from inter_axis.model import DocumentPackage, Kind, ManifestEntry, ParsedAttachment, StatusMessage
from inter_axis.names import DSIG_NS, namespace_of
from inter_axis.stream import DEFAULT_MAX_BYTES, BlobSink, StreamedTree, read_tree


@dataclass
class ParsedPackage:
    """A package read by :func:`read_package`. The attachment files are temporary: call :meth:`cleanup`
    (or use the object as a context manager) once they are stored elsewhere."""

    kind: Kind
    document: DocumentPackage | None
    """Header, traces and Bussiness of a document message (its ``attachments`` field is empty)."""
    status: StatusMessage | None
    manifest: tuple[ManifestEntry, ...]
    attachments: tuple[ParsedAttachment, ...]
    warnings: tuple[str, ...]
    signature: str
    """``"absent"``, ``"xmldsig"`` (present, check with :func:`inter_axis.xmldsig.verify_package`) or
    ``"not_xmldsig"`` (a VNPT-style block in the edXML namespace, which cannot be verified)."""
    _files: list[Path] = field(default_factory=list, repr=False)

    def cleanup(self) -> None:
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files.clear()

    def __enter__(self) -> ParsedPackage:
        return self

    def __exit__(self, *exc_info) -> None:
        self.cleanup()


class _DecodingSink(BlobSink):
    def __init__(self, spool_dir: str | None) -> None:
        handle, name = tempfile.mkstemp(prefix="edxml-att-", dir=spool_dir)
        self.path = Path(name)
        self._file = os.fdopen(handle, "wb")
        self.decoder = Base64Sink(self._file)

    def write(self, text: bytes) -> None:
        self.decoder.feed(text)

    def close(self) -> None:
        self.decoder.finish()
        self._file.close()


def _attachments(
    tree: StreamedTree, attachment_encoded, reader: LenientReader
) -> tuple[list[ParsedAttachment], set[int]]:
    found: list[ParsedAttachment] = []
    used: set[int] = set()
    where = "AttachmentEncoded/Attachment"
    for element in reader.children(attachment_encoded, "Attachment"):
        content_id = reader.text(element, "ContentId", where)
        encoded = reader.child(element, "ContentTransferEncoded")
        index = tree.blob_index(encoded) if encoded is not None else None
        if index is None:
            reader.warn(f"attachment {content_id or '?'} has no ContentTransferEncoded content")
            continue
        used.add(index)
        sink: _DecodingSink = tree.sinks[index]
        for problem in sink.decoder.problems:
            reader.warn(f"attachment {content_id}: {problem}")
        with open(sink.path, "rb") as stream:
            is_zip = stream.read(4) == b"PK\x03\x04"
        found.append(
            ParsedAttachment(
                content_id=content_id,
                name=reader.text(element, "AttachmentName", where),
                content_type=reader.text(element, "ContentType", where),
                description=reader.text(element, "Description", where),
                path=sink.path,
                size=sink.decoder.size,
                sha256=sink.decoder.sha256,
                is_zip=is_zip,
            )
        )
    return found, used


def _cross_check(manifest: tuple[ManifestEntry, ...], attachments: list[ParsedAttachment], reader) -> None:
    carried = {a.content_id for a in attachments}
    missing = [entry.content_id for entry in manifest if entry.content_id not in carried]
    if missing:
        raise MissingAttachmentError(f"the manifest names attachments the package does not carry: {missing}")
    named = {entry.content_id for entry in manifest}
    for attachment in attachments:
        if attachment.content_id not in named:
            reader.warn(f"attachment {attachment.content_id} is not listed in the manifest")


def _signature_kind(signature: etree._Element | None) -> str:
    if signature is None:
        return "absent"
    return "xmldsig" if namespace_of(signature.tag) == DSIG_NS else "not_xmldsig"


def read_package(
    source: str | os.PathLike | BinaryIO | bytes,
    *,
    spool_dir: str | os.PathLike | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ParsedPackage:
    """Read ``source`` completely; attachments go to temporary files in ``spool_dir``.

    Raises :class:`~inter_axis.errors.EdxmlError` for unusable input (``malformed_xml``, ``hostile_xml``,
    ``oversize``, ``wrong_namespace``, ``missing_field``, ``unknown_status_code``, ``missing_attachment``);
    every other problem is in ``warnings``. On error no temporary file is left behind."""
    sinks: list[_DecodingSink] = []

    def new_sink(_index: int) -> _DecodingSink:
        sink = _DecodingSink(os.fspath(spool_dir) if spool_dir is not None else None)
        sinks.append(sink)
        return sink

    try:
        return _read(read_tree(source, max_bytes=max_bytes, new_sink=new_sink))
    except BaseException:
        for sink in sinks:
            sink.path.unlink(missing_ok=True)
        raise


def _read(tree: StreamedTree) -> ParsedPackage:
    reader = LenientReader()
    envelope = locate(tree.root, reader)
    document = status = None
    if envelope.kind == "status":
        status = read_status(envelope.message, envelope.trace_list, reader)
    else:
        document = DocumentPackage(
            header=read_message_header(envelope.message, reader),
            traces=read_traces(envelope.trace_list, reader),
            business=read_business(envelope.trace_list, reader),
        )
    manifest = read_manifest(envelope.manifest, reader)
    attachments, used = _attachments(tree, envelope.attachment_encoded, reader)
    for index, sink in enumerate(tree.sinks):
        if index not in used:  # e.g. a ContentTransferEncoded somewhere unexpected
            sink.path.unlink(missing_ok=True)
    try:
        _cross_check(manifest, attachments, reader)
    except EdxmlError:
        for attachment in attachments:
            attachment.path.unlink(missing_ok=True)
        raise
    return ParsedPackage(
        kind=envelope.kind,
        document=document,
        status=status,
        manifest=manifest,
        attachments=tuple(attachments),
        warnings=tuple(reader.warnings),
        signature=_signature_kind(envelope.signature),
        _files=[a.path for a in attachments],
    )

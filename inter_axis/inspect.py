"""Cheap look at a package: a streaming parse of the header only (attachments are skipped, never
decoded or stored), hostile input refused. For routing in the transport and the hub."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from inter_axis.header_reader import locate, read_business, read_message_header, read_status, read_traces
from inter_axis.lenient import LenientReader
from inter_axis.model import Kind
from inter_axis.stream import DEFAULT_MAX_BYTES, StreamedTree, read_tree


@dataclass(frozen=True)
class PackageSummary:
    """What a router needs to know about a package."""

    kind: Kind
    document_id: str
    """``OrganId,yyyy/MM/dd,Number/Notation``; for a status, the DocumentId it is about."""
    from_organ_id: str
    to_organ_ids: tuple[str, ...]
    """Documents: the To list. Status: the organisation of ``ResponseFor`` (the original sender)."""
    status_code: str | None
    """``"01"``..``"16"`` for status packages, else None."""
    business_type: int | None
    """``BussinessDocType`` of documents (0 new, 1 revoke, 2 update, 3 replace); None for status packages."""
    warnings: tuple[str, ...]


def inspect_package(
    source: str | os.PathLike | BinaryIO | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> PackageSummary:
    """Summarise ``source`` (a path, bytes or a readable binary stream) from its header.

    Raises :class:`~inter_axis.errors.EdxmlError` (``malformed_xml``, ``hostile_xml``, ``oversize``,
    ``wrong_namespace``, ``missing_field``, ``unknown_status_code``). Stops reading after ``edXMLHeader``,
    so the size cap is enforced on what was read (and on the file size for paths and bytes)."""
    return summarise(read_tree(source, max_bytes=max_bytes, header_only=True))


def summarise(tree: StreamedTree) -> PackageSummary:
    """The summary of a package already parsed with ``read_tree`` (whole or ``header_only``): a hub
    that must read the whole package anyway need not parse its header a second time. Raises like
    ``inspect_package`` for a header that lacks what routing needs."""
    reader = LenientReader()
    envelope = locate(tree.root, reader)
    if envelope.kind == "status":
        status = read_status(envelope.message, envelope.trace_list, reader)
        return PackageSummary(
            kind="status",
            document_id=status.response_for.document_id,
            from_organ_id=status.from_org.organ_id,
            to_organ_ids=(status.response_for.organ_id or status.response_for.document_id.split(",")[0],),
            status_code=status.status_code,
            business_type=None,
            warnings=tuple(reader.warnings),
        )
    header = read_message_header(envelope.message, reader)
    read_traces(envelope.trace_list, reader)  # only for its warnings (e.g. an impossible date)
    business = read_business(envelope.trace_list, reader)
    seen: dict[str, None] = {}
    for org in header.to:
        if org.organ_id in seen:
            reader.warn(f"MessageHeader/To {org.organ_id} is listed twice")
        elif org.organ_id:
            seen[org.organ_id] = None
    return PackageSummary(
        kind="document",
        document_id=header.effective_document_id,
        from_organ_id=header.from_org.organ_id,
        to_organ_ids=tuple(seen),
        status_code=None,
        business_type=int(business.doc_type) if business is not None else None,
        warnings=tuple(reader.warnings),
    )

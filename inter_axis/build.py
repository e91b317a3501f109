"""Building edXML packages byte-compatible with the VNPT/Bkav builder (VN-STANDARDS §1.2-§1.8, §1.12):
root ``edXML`` with the QCVN namespace as default, envelope children with the literal ``edXML:``
prefix, ``Bussiness`` spelling, the builder's element order, empty optional organisation fields written
as empty elements, and ``AttachmentEncoded`` after the envelope. Attachments are streamed: read and
base64-encoded in chunks straight into ``out``."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from typing import BinaryIO

from lxml import etree

from inter_axis.errors import InvalidPackageError
from inter_axis.model import (
    AttachmentSource,
    Business,
    BusinessDocType,
    DocumentPackage,
    Organization,
    ResponseFor,
    StaffInfo,
    TraceHeader,
)
from inter_axis.names import NS, PREFIX, q
from inter_axis.serialize import BlobWriter, serialize_tree, write_with_blobs
from inter_axis.validate import validate_document

_READ = 3 * (1 << 16)  # a multiple of 3, so chunks encode to base64 without padding in between


def _sub(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, q(local))
    if text:
        element.text = text
    return element


def _date(value) -> str:
    return f"{value:%Y/%m/%d}" if value else ""


def _timestamp(value) -> str:
    return f"{value:%Y/%m/%d %H:%M:%S}" if value else ""


def add_organization(parent: etree._Element, local: str, org: Organization) -> None:
    element = _sub(parent, local)
    for name, value in (
        ("OrganId", org.organ_id),
        ("OrganizationInCharge", org.organization_in_charge),
        ("OrganName", org.organ_name),
        ("OrganAdd", org.organ_add),
        ("Email", org.email),
        ("Telephone", org.telephone),
        ("Fax", org.fax),
        ("Website", org.website),
    ):
        _sub(element, name, value)


def add_response_for(parent: etree._Element, response: ResponseFor) -> None:
    element = _sub(parent, "ResponseFor")
    _sub(element, "OrganId", response.organ_id)
    _sub(element, "Code", response.code)
    _sub(element, "PromulgationDate", _date(response.promulgation_date))
    _sub(element, "DocumentId", response.document_id)


def add_staff(parent: etree._Element, staff: StaffInfo, *, status_order: bool = False) -> None:
    """Trace order is Department, Staff, Email, Mobile; the status message puts Mobile before Email."""
    element = _sub(parent, "StaffInfo")
    _sub(element, "Department", staff.department)
    _sub(element, "Staff", staff.staff)
    pair = (("Mobile", staff.mobile), ("Email", staff.email))
    for name, value in pair if status_order else reversed(pair):
        _sub(element, name, value)


def add_traces(parent: etree._Element, traces: tuple[TraceHeader, ...]) -> None:
    for trace in traces:
        element = _sub(parent, "TraceHeader")
        _sub(element, "OrganId", trace.organ_id)
        _sub(element, "Timestamp", _timestamp(trace.timestamp))


def _add_business(parent: etree._Element, business: Business) -> None:
    element = _sub(parent, "Bussiness")
    if business.doc_type != BusinessDocType.NEW or business.document_id:
        _sub(element, "DocumentId", business.document_id)
    _sub(element, "BussinessDocType", str(int(business.doc_type)))
    _sub(element, "BussinessDocReason", business.reason)
    _sub(element, "Paper", str(business.paper))
    if business.document_info_changed is not None or business.receivers_changed is not None or business.receivers:
        info = _sub(element, "BussinessDocumentInfo")
        _sub(info, "DocumentInfo", "1" if business.document_info_changed else "0")
        _sub(info, "DocumentReceiver", "1" if business.receivers_changed else "0")
        receivers = _sub(info, "ReceiverList")
        for receiver in business.receivers:
            item = _sub(receivers, "Receiver")
            _sub(item, "OrganId", receiver.organ_id)
            _sub(item, "ReceiverType", str(receiver.receiver_type))
    if business.replacements:
        replacements = _sub(element, "ReplacementInfoList")
        for replacement in business.replacements:
            item = _sub(replacements, "ReplacementInfo")
            _sub(item, "DocumentId", replacement.document_id)
            organs = _sub(item, "OrganIdList")
            for organ_id in replacement.organ_ids:
                _sub(organs, "OrganId", organ_id)
    if business.staff is not None:
        add_staff(element, business.staff)


def _add_message_header(parent: etree._Element, package: DocumentPackage) -> None:
    header = package.header
    element = _sub(parent, "MessageHeader")
    add_organization(element, "From", header.from_org)
    for org in header.to:
        add_organization(element, "To", org)
    _sub(element, "DocumentId", header.effective_document_id)
    code = _sub(element, "Code")
    _sub(code, "CodeNumber", header.code.number)
    _sub(code, "CodeNotation", header.code.notation)
    promulgation = _sub(element, "PromulgationInfo")
    _sub(promulgation, "Place", header.promulgation_place)
    _sub(promulgation, "PromulgationDate", _date(header.promulgation_date))
    doc_type = _sub(element, "DocumentType")
    _sub(doc_type, "Type", str(header.document_type.type))
    _sub(doc_type, "TypeDetail", str(header.document_type.type_detail))
    _sub(doc_type, "TypeName", header.document_type.type_name)
    _sub(element, "Subject", header.subject)
    _sub(element, "Content", header.content)
    signer = _sub(element, "SignerInfo")
    _sub(signer, "Competence", header.signer.competence)
    _sub(signer, "Position", header.signer.position)
    _sub(signer, "FullName", header.signer.full_name)
    _sub(element, "DueDate", _date(header.due_date))
    other = _sub(element, "OtherInfo")
    info = header.other_info
    _sub(other, "Priority", str(info.priority))
    _sub(other, "SphereOfPromulgation", info.sphere_of_promulgation)
    _sub(other, "TyperNotation", info.typer_notation)
    _sub(other, "PromulgationAmount", str(info.promulgation_amount))
    _sub(other, "PageAmount", str(info.page_amount))
    _sub(other, "Direction", "true" if info.direction else "false")
    appendixes = _sub(other, "Appendixes")
    for appendix in info.appendixes:
        _sub(appendixes, "Appendix", appendix)
    for response in header.response_for:
        add_response_for(element, response)
    _sub(element, "SteeringType", str(header.steering_type))
    if header.to_places:
        places = _sub(element, "ToPlaces")
        for place in header.to_places:
            _sub(places, "Place", place)


def new_root() -> tuple[etree._Element, etree._Element, etree._Element]:
    """``edXML`` root (default namespace), the ``edXML:edXMLEnvelope`` (declares the prefix) and its header."""
    root = etree.Element(q("edXML"), nsmap={None: NS})
    envelope = etree.SubElement(root, q("edXMLEnvelope"), nsmap={PREFIX: NS})
    return root, envelope, _sub(envelope, "edXMLHeader")


def _content_id(value: str) -> str:
    return value if value.startswith("cid:") else f"cid:{value}"


def _stream_base64(source: str | os.PathLike | BinaryIO) -> Iterator[bytes]:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as stream:
            yield from _stream_base64(stream)
        return
    while chunk := source.read(_READ):
        while len(chunk) % 3 and (more := source.read(3 - len(chunk) % 3)):
            chunk += more  # short reads from pipes must not put padding in the middle
        yield base64.b64encode(chunk)


def build_document_tree(package: DocumentPackage) -> tuple[etree._Element, dict[str, BlobWriter]]:
    """The package as a small tree whose attachment texts are markers, and the marker → writer map."""
    root, envelope, header = new_root()
    _add_message_header(header, package)
    trace_list = _sub(header, "TraceHeaderList")
    add_traces(trace_list, package.traces)
    if package.business is not None:
        _add_business(trace_list, package.business)
    manifest = _sub(_sub(envelope, "edXMLBody"), "edXMLManifest")
    manifest.set("version", "1.0")
    blobs: dict[str, BlobWriter] = {}
    if package.attachments:
        encoded = _sub(root, "AttachmentEncoded")
    for attachment in package.attachments:
        _add_attachment(manifest, encoded, attachment, blobs)
    etree.indent(root, "  ")
    return root, blobs


def _add_attachment(manifest, encoded, attachment: AttachmentSource, blobs: dict[str, BlobWriter]) -> None:
    cid = _content_id(attachment.content_id)
    reference = _sub(manifest, "Reference")
    _sub(reference, "ContentId", cid)
    _sub(reference, "ContentType", attachment.content_type)
    _sub(reference, "Description", attachment.description)
    _sub(reference, "AttachmentName", attachment.name)
    item = _sub(encoded, "Attachment")
    _sub(item, "ContentId", cid)
    _sub(item, "AttachmentName", attachment.name)
    _sub(item, "Description", attachment.description)
    _sub(item, "ContentType", attachment.content_type)
    marker = f"AXISBLOB{secrets.token_hex(8)}N{len(blobs)}E"
    etree.SubElement(item, q("ContentTransferEncoded"), nsmap={PREFIX: NS}).text = marker
    blobs[marker] = lambda source=attachment.source: _stream_base64(source)


def write_package(package: DocumentPackage, out: BinaryIO) -> int:
    """Validate ``package`` and write it to ``out``; attachments are streamed from their sources.

    Returns the number of bytes written. Raises :class:`InvalidPackageError` listing every problem
    :func:`inter_axis.validate.validate_document` finds (nothing is written then)."""
    problems = validate_document(package)
    if problems:
        raise InvalidPackageError("; ".join(problems))
    root, blobs = build_document_tree(package)
    return write_with_blobs(serialize_tree(root), blobs, out)

"""Turning the small tree of a package into the model, leniently (problems become warnings).

Only a missing field without which the package cannot be routed at all raises
:class:`~inter_axis.errors.MissingFieldError`: the sender's OrganId, a usable DocumentId (documents)
and StatusCode / ResponseFor/DocumentId (status messages). A StatusCode that is not one of the known
codes raises :class:`~inter_axis.errors.UnknownStatusCodeError` (a single digit is read as 0N, with a
warning)."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from inter_axis.errors import MalformedXmlError, MissingFieldError, UnknownStatusCodeError
from inter_axis.lenient import LenientReader
from inter_axis.model import (
    STATUS_CODES,
    Business,
    BusinessDocType,
    DocumentCode,
    DocumentType,
    Kind,
    ManifestEntry,
    MessageHeader,
    Organization,
    OtherInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusMessage,
    TraceHeader,
    make_document_id,
)

_DOCUMENT_ID_PARTS = 3


@dataclass
class Envelope:
    """The located parts of a package tree."""

    root: etree._Element
    header: etree._Element
    message: etree._Element
    kind: Kind
    trace_list: etree._Element | None
    signature: etree._Element | None
    manifest: etree._Element | None
    attachment_encoded: etree._Element | None


def locate(root: etree._Element, reader: LenientReader) -> Envelope:
    """Find envelope, header and message block; tolerate missing optional parts."""
    envelope = reader.child(root, "edXMLEnvelope")
    if envelope is None:
        raise MalformedXmlError("no edXMLEnvelope under the edXML root")
    header = reader.child(envelope, "edXMLHeader")
    if header is None:
        raise MalformedXmlError("no edXMLHeader in the envelope")
    status_wrapper = reader.child(header, "Status")
    message = status_wrapper if status_wrapper is not None else reader.child(header, "MessageHeader")
    if message is None:
        raise MissingFieldError("the header has neither MessageHeader nor Status")
    is_status = status_wrapper is not None or reader.child(message, "StatusCode") is not None
    signature = reader.child(header, "Signature")
    if signature is None and reader.child(header, "DigitalSignature") is not None:
        reader.warn("edXMLHeader carries an empty DigitalSignature (.NET SDK variant), no Signature")
    body = reader.child(envelope, "edXMLBody")
    return Envelope(
        root=root,
        header=header,
        message=message,
        kind="status" if is_status else "document",
        trace_list=reader.child(header, "TraceHeaderList"),
        signature=signature,
        manifest=reader.child(body, "edXMLManifest"),
        attachment_encoded=reader.child(root, "AttachmentEncoded"),
    )


def read_organization(element: etree._Element | None, where: str, reader: LenientReader) -> Organization:
    return Organization(
        organ_id=reader.text(element, "OrganId", where, required=True),
        organization_in_charge=reader.text(element, "OrganizationInCharge", where),
        organ_name=reader.text(element, "OrganName", where),
        organ_add=reader.text(element, "OrganAdd", where),
        email=reader.text(element, "Email", where),
        telephone=reader.text(element, "Telephone", where),
        fax=reader.text(element, "Fax", where),
        website=reader.text(element, "Website", where),
    )


def read_response_for(element: etree._Element, where: str, reader: LenientReader) -> ResponseFor:
    return ResponseFor(
        organ_id=reader.text(element, "OrganId", where),
        code=reader.text(element, "Code", where),
        promulgation_date=reader.date(element, "PromulgationDate", where),
        document_id=reader.text(element, "DocumentId", where),
    )


def read_staff(element: etree._Element | None, where: str, reader: LenientReader) -> StaffInfo | None:
    if element is None:
        return None
    return StaffInfo(
        department=reader.text(element, "Department", where),
        staff=reader.text(element, "Staff", where),
        email=reader.text(element, "Email", where),
        mobile=reader.text(element, "Mobile", where),
    )


def _document_id(message: etree._Element, from_org: Organization, code: DocumentCode, promulgated, reader) -> str:
    document_id = reader.text(message, "DocumentId", "MessageHeader")
    if document_id:
        parts = document_id.split(",")
        if len(parts) != _DOCUMENT_ID_PARTS:
            reader.warn(f"MessageHeader/DocumentId {document_id!r} is not OrganId,yyyy/MM/dd,Number/Notation")
        else:
            reader.parse_date(parts[1], "MessageHeader/DocumentId date")
        return document_id
    if from_org.organ_id and promulgated and code.number:
        derived = make_document_id(from_org.organ_id, promulgated, code)
        reader.warn(f"MessageHeader/DocumentId is missing; derived {derived!r} from From, date and Code")
        return derived
    raise MissingFieldError("MessageHeader/DocumentId is missing and cannot be derived")


def _entries(parent: etree._Element | None, name: str, where: str, reader: LenientReader) -> tuple[str, ...]:
    """The non-empty ``name`` entries of a list element (ToPlaces/Place, Appendixes/Appendix); an
    empty entry is left out with a warning."""
    values = []
    for element in reader.children(parent, name):
        value = (element.text or "").strip()
        if value:
            values.append(value)
        else:
            reader.warn(f"empty optional element {where}/{name}; left out")
    return tuple(values)


def read_message_header(message: etree._Element, reader: LenientReader) -> MessageHeader:
    """The document ``MessageHeader``."""
    where = "MessageHeader"
    from_org = read_organization(reader.child(message, "From"), f"{where}/From", reader)
    if not from_org.organ_id:
        raise MissingFieldError("MessageHeader/From/OrganId is missing")
    to = tuple(read_organization(el, f"{where}/To", reader) for el in reader.children(message, "To"))
    if not to:
        reader.warn("MessageHeader has no To organisation")
    code_el = reader.child(message, "Code")
    code = DocumentCode(
        reader.text(code_el, "CodeNumber", f"{where}/Code", required=True),
        reader.text(code_el, "CodeNotation", f"{where}/Code", required=True),
    )
    promulgation = reader.child(message, "PromulgationInfo")
    promulgated = reader.date(promulgation, "PromulgationDate", f"{where}/PromulgationInfo", required=True)
    doc_type = reader.child(message, "DocumentType")
    signer = reader.child(message, "SignerInfo")
    other = reader.child(message, "OtherInfo")
    return MessageHeader(
        from_org=from_org,
        to=to,
        document_id=_document_id(message, from_org, code, promulgated, reader),
        code=code,
        promulgation_place=reader.text(promulgation, "Place", f"{where}/PromulgationInfo"),
        promulgation_date=promulgated,
        document_type=DocumentType(
            type=reader.integer(doc_type, "Type", f"{where}/DocumentType", 0),
            type_detail=reader.integer(doc_type, "TypeDetail", f"{where}/DocumentType", 0),
            type_name=reader.text(doc_type, "TypeName", f"{where}/DocumentType", required=True),
        ),
        subject=reader.text(message, "Subject", where, required=True),
        content=reader.text(message, "Content", where),
        signer=SignerInfo(
            competence=reader.text(signer, "Competence", f"{where}/SignerInfo"),
            position=reader.text(signer, "Position", f"{where}/SignerInfo"),
            full_name=reader.text(signer, "FullName", f"{where}/SignerInfo"),
        ),
        due_date=reader.date(message, "DueDate", where, may_be_empty=True),
        other_info=OtherInfo(
            priority=reader.integer(other, "Priority", f"{where}/OtherInfo", 0),
            sphere_of_promulgation=reader.text(other, "SphereOfPromulgation", f"{where}/OtherInfo"),
            typer_notation=reader.text(other, "TyperNotation", f"{where}/OtherInfo"),
            promulgation_amount=reader.integer(other, "PromulgationAmount", f"{where}/OtherInfo", 0),
            page_amount=reader.integer(other, "PageAmount", f"{where}/OtherInfo", 0),
            direction=bool(reader.boolean(other, "Direction", f"{where}/OtherInfo")),
            appendixes=_entries(reader.child(other, "Appendixes"), "Appendix", f"{where}/OtherInfo/Appendixes",
                                reader),
        ),
        response_for=tuple(
            read_response_for(el, f"{where}/ResponseFor", reader) for el in reader.children(message, "ResponseFor")
        ),
        steering_type=reader.integer(message, "SteeringType", where, 1),
        to_places=_entries(reader.child(message, "ToPlaces"), "Place", f"{where}/ToPlaces", reader),
    )


def read_traces(trace_list: etree._Element | None, reader: LenientReader) -> tuple[TraceHeader, ...]:
    where = "TraceHeaderList/TraceHeader"
    return tuple(
        TraceHeader(reader.text(el, "OrganId", where), reader.timestamp(el, "Timestamp", where))
        for el in reader.children(trace_list, "TraceHeader")
    )


def read_business(trace_list: etree._Element | None, reader: LenientReader) -> Business | None:
    block = reader.child(trace_list, "Bussiness")
    if block is None:
        return None
    where = "TraceHeaderList/Bussiness"
    raw_type = reader.integer(block, "BussinessDocType", where, 0)
    try:
        doc_type = BusinessDocType(raw_type)
    except ValueError:
        reader.warn(f"{where}/BussinessDocType {raw_type} is not 0-3; read as 0 (new)")
        doc_type = BusinessDocType.NEW
    info = reader.child(block, "BussinessDocumentInfo")
    receivers = tuple(
        Receiver(reader.text(el, "OrganId", f"{where}/Receiver"), reader.integer(el, "ReceiverType", where, 1))
        for el in reader.children(reader.child(info, "ReceiverList"), "Receiver")
    )
    replacements = tuple(
        ReplacementInfo(
            document_id=reader.text(el, "DocumentId", f"{where}/ReplacementInfo"),
            organ_ids=tuple(
                (o.text or "").strip() for o in reader.children(reader.child(el, "OrganIdList"), "OrganId")
            ),
        )
        for el in reader.children(reader.child(block, "ReplacementInfoList"), "ReplacementInfo")
    )
    business = Business(
        doc_type=doc_type,
        reason=reader.text(block, "BussinessDocReason", where),
        paper=reader.integer(block, "Paper", where, 0),
        document_id=reader.text(block, "DocumentId", where),
        document_info_changed=reader.boolean(info, "DocumentInfo", f"{where}/BussinessDocumentInfo"),
        receivers_changed=reader.boolean(info, "DocumentReceiver", f"{where}/BussinessDocumentInfo"),
        receivers=receivers,
        replacements=replacements,
        staff=read_staff(reader.child(block, "StaffInfo"), f"{where}/StaffInfo", reader),
    )
    if doc_type != BusinessDocType.NEW and not business.document_id:
        reader.warn(f"{where}: BussinessDocType {int(doc_type)} without the DocumentId it applies to")
    return business


def read_status(message: etree._Element, trace_list, reader: LenientReader) -> StatusMessage:
    """A status message, from either the ``MessageHeader`` or the ``Status`` wrapper."""
    where = local_name_of(message)
    from_org = read_organization(reader.child(message, "From"), f"{where}/From", reader)
    if not from_org.organ_id:
        raise MissingFieldError(f"{where}/From/OrganId is missing")
    code = reader.text(message, "StatusCode", where)
    if not code:
        raise MissingFieldError(f"{where}/StatusCode is missing")
    if len(code) == 1 and code in "0123456789":  # ASCII only: str.isdigit() also takes "٣"
        reader.warn(f"{where}/StatusCode {code!r} is not two digits; read as 0{code}")
        code = f"0{code}"
    if code not in STATUS_CODES:
        raise UnknownStatusCodeError(
            f"{where}/StatusCode {code[:20]!r} is not one of {', '.join(STATUS_CODES)}"
        )
    response_el = reader.child(message, "ResponseFor")
    if response_el is None:
        raise MissingFieldError(f"{where}/ResponseFor is missing")
    response_for = read_response_for(response_el, f"{where}/ResponseFor", reader)
    if not response_for.document_id:
        raise MissingFieldError(f"{where}/ResponseFor/DocumentId is missing")
    return StatusMessage(
        from_org=from_org,
        response_for=response_for,
        status_code=code,
        description=reader.text(message, "Description", where),
        timestamp=reader.timestamp(message, "Timestamp", where),
        staff=read_staff(reader.child(message, "StaffInfo"), f"{where}/StaffInfo", reader),
        traces=read_traces(trace_list, reader),
    )


def local_name_of(element: etree._Element) -> str:
    return etree.QName(element).localname


def read_manifest(manifest: etree._Element | None, reader: LenientReader) -> tuple[ManifestEntry, ...]:
    where = "edXMLManifest/Reference"
    entries = []
    for el in reader.children(manifest, "Reference"):
        content_id = reader.text(el, "ContentId", where)
        if not content_id:
            # .NET SDK variant: xlink:href="cid:…" on the Reference itself.
            content_id = el.get("{http://www.w3.org/1999/xlink}href", "").strip()
        if not content_id:
            reader.warn(f"{where} without a ContentId is ignored")
            continue
        entries.append(
            ManifestEntry(
                content_id=content_id,
                content_type=reader.text(el, "ContentType", where),
                description=reader.text(el, "Description", where),
                attachment_name=reader.text(el, "AttachmentName", where),
            )
        )
    return tuple(entries)

"""The edXML package as plain frozen dataclasses (VN-STANDARDS §1.3-§1.9), field names in English,
element names noted where they differ. Dates are :class:`datetime.date`, timestamps naive local
:class:`datetime.datetime` (the format carries no zone)."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO, Literal


class BusinessDocType(enum.IntEnum):
    """``Bussiness/BussinessDocType``."""

    NEW = 0
    REVOKE = 1
    UPDATE = 2
    REPLACE = 3


#: StatusCode → meaning (VN-STANDARDS §1.9); 07-12 and 14 are reserved.
STATUS_CODES: dict[str, str] = {
    "01": "Đã đến",
    "02": "Từ chối tiếp nhận",
    "03": "Đã tiếp nhận",
    "04": "Đã phân công",
    "05": "Đang xử lý",
    "06": "Đã hoàn thành",
    "13": "Thu hồi",
    "15": "Đồng ý thu hồi/cập nhật",
    "16": "Từ chối thu hồi/cập nhật",
}


@dataclass(frozen=True)
class Organization:
    """``From`` / ``To`` (§1.4); all eight children are always written, empty ones as ``<edXML:Email/>``."""

    organ_id: str
    organ_name: str = ""
    organization_in_charge: str = ""
    organ_add: str = ""
    email: str = ""
    telephone: str = ""
    fax: str = ""
    website: str = ""


@dataclass(frozen=True)
class DocumentCode:
    """``Code``: number and notation (``12`` / ``CT-UBND``)."""

    number: str
    notation: str

    def __str__(self) -> str:
        return f"{self.number}/{self.notation}"


@dataclass(frozen=True)
class DocumentType:
    """``DocumentType``; the numeric codes are not public (§1.3), ``type_name`` is the ND30 name."""

    type: int
    type_name: str
    type_detail: int = 0


@dataclass(frozen=True)
class SignerInfo:
    """``SignerInfo``: ``Competence`` (TL., KT., …), ``Position``, ``FullName``."""

    competence: str = ""
    position: str = ""
    full_name: str = ""


@dataclass(frozen=True)
class OtherInfo:
    """``OtherInfo``."""

    priority: int = 0
    sphere_of_promulgation: str = ""
    typer_notation: str = ""
    promulgation_amount: int = 0
    page_amount: int = 0
    direction: bool = False
    appendixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResponseFor:
    """``ResponseFor``: the document replied to (or, in a status message, reported on)."""

    organ_id: str
    code: str
    promulgation_date: date | None
    document_id: str


@dataclass(frozen=True)
class StaffInfo:
    """``StaffInfo`` of a trace ``Bussiness`` block or of a status message."""

    department: str = ""
    staff: str = ""
    email: str = ""
    mobile: str = ""


@dataclass(frozen=True)
class MessageHeader:
    """``MessageHeader`` of a document message, in the order the VNPT/Bkav builder writes it."""

    from_org: Organization
    to: tuple[Organization, ...]
    code: DocumentCode
    promulgation_place: str
    promulgation_date: date
    document_type: DocumentType
    subject: str
    content: str = ""
    signer: SignerInfo = SignerInfo()
    due_date: date | None = None
    other_info: OtherInfo = OtherInfo()
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: int = 1
    to_places: tuple[str, ...] = ()
    document_id: str = ""
    """Empty: derived as ``OrganId,yyyy/MM/dd,Number/Notation`` (see :func:`make_document_id`)."""

    @property
    def effective_document_id(self) -> str:
        return self.document_id or make_document_id(self.from_org.organ_id, self.promulgation_date, self.code)


def make_document_id(organ_id: str, promulgation_date: date, code: DocumentCode) -> str:
    """``000.00.00.H41,2025/03/14,12/CT-UBND``."""
    return f"{organ_id},{promulgation_date:%Y/%m/%d},{code}"


@dataclass(frozen=True)
class TraceHeader:
    """One routing hop: ``OrganId`` and ``Timestamp`` (None when unreadable)."""

    organ_id: str
    timestamp: datetime | None


@dataclass(frozen=True)
class Receiver:
    """``ReceiverList/Receiver`` of an update: ``receiver_type`` 0 removed, 1 added."""

    organ_id: str
    receiver_type: int


@dataclass(frozen=True)
class ReplacementInfo:
    """``ReplacementInfoList/ReplacementInfo`` of a replace."""

    document_id: str
    organ_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Business:
    """The ``Bussiness`` block (wire spelling with double *s*)."""

    doc_type: BusinessDocType = BusinessDocType.NEW
    reason: str = "Văn bản điện tử mới"
    paper: int = 0
    document_id: str = ""
    """Document revoked/updated/replaced (types 1-3)."""
    document_info_changed: bool | None = None
    """``BussinessDocumentInfo/DocumentInfo`` (update only; None: block absent)."""
    receivers_changed: bool | None = None
    receivers: tuple[Receiver, ...] = ()
    replacements: tuple[ReplacementInfo, ...] = ()
    staff: StaffInfo | None = None


@dataclass(frozen=True)
class AttachmentSource:
    """An attachment to build: content streamed from ``source`` (a path or a readable binary stream)."""

    content_id: str
    """``cid:…`` (the prefix is added if missing)."""
    name: str
    content_type: str
    source: str | os.PathLike | BinaryIO
    description: str = ""


@dataclass(frozen=True)
class DocumentPackage:
    """A document message to build (or the parsed form of one, without attachment contents)."""

    header: MessageHeader
    traces: tuple[TraceHeader, ...] = ()
    business: Business | None = field(default_factory=Business)
    attachments: tuple[AttachmentSource, ...] = ()


@dataclass(frozen=True)
class StatusMessage:
    """A status message (§1.9)."""

    from_org: Organization
    response_for: ResponseFor
    status_code: str
    description: str = ""
    timestamp: datetime | None = None
    staff: StaffInfo | None = None
    traces: tuple[TraceHeader, ...] = ()


@dataclass(frozen=True)
class ManifestEntry:
    """``edXMLManifest/Reference``."""

    content_id: str
    content_type: str = ""
    description: str = ""
    attachment_name: str = ""


@dataclass(frozen=True)
class ParsedAttachment:
    """An attachment read from a package: decoded to ``path`` (a temporary file the caller owns)."""

    content_id: str
    name: str
    content_type: str
    description: str
    path: Path | None
    size: int
    sha256: str
    is_zip: bool
    """Starts with ``PK\\x03\\x04``: the VNPT builder zips every non-office file (§1.8)."""


Kind = Literal["document", "status"]

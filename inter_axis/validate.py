"""The format's rules, as the production hub checks them (VN-STANDARDS §1.11, §2), for packages we build.
Each function returns the list of problems (empty: valid); the builders refuse a package with any."""

from __future__ import annotations

import re

from inter_axis.model import STATUS_CODES, BusinessDocType, DocumentPackage, StatusMessage

#: QCVN 102:2016 layout (``000.00.00.H41``) and the QĐ 20/2020 layout (``H41.12``, ≤ 35 characters).
AXIS_ORGAN_ID = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
QD20_ORGAN_ID = re.compile(r"^[A-Z]\d{2}(\.[0-9A-Z]+)*$")
DOCUMENT_ID = re.compile(r"^[^,]+,\d{4}/\d{2}/\d{2},[^,]+$")
MAX_SUBJECT = 500
MAX_ATTACHMENT_NAME = 500


def is_organ_id(value: str) -> bool:
    return len(value) <= 35 and bool(AXIS_ORGAN_ID.match(value) or QD20_ORGAN_ID.match(value))


def _organ(problems: list[str], where: str, organ_id: str) -> None:
    if not organ_id:
        problems.append(f"{where}: OrganId is required")
    elif not is_organ_id(organ_id):
        problems.append(f"{where}: OrganId {organ_id!r} is not 000.00.00.H41 or H41.12 shaped")


def validate_document(package: DocumentPackage) -> list[str]:
    """Problems of a document package (empty list: valid)."""
    problems: list[str] = []
    header = package.header
    _organ(problems, "From", header.from_org.organ_id)
    if not header.from_org.organ_name:
        problems.append("From: OrganName is required")
    if not header.to:
        problems.append("at least one To organisation is required")
    seen: set[str] = set()
    for org in header.to:
        _organ(problems, "To", org.organ_id)
        if org.organ_id in seen:
            problems.append(f"To: {org.organ_id} is listed twice")
        seen.add(org.organ_id)
        if not org.organ_name:
            problems.append(f"To {org.organ_id}: OrganName is required")
    if not header.code.number or not header.code.notation:
        problems.append("Code: CodeNumber and CodeNotation are required")
    if "," in str(header.code):
        problems.append("Code: a comma would break the DocumentId")
    if header.promulgation_date is None:
        problems.append("PromulgationInfo: PromulgationDate is required")
    elif not DOCUMENT_ID.match(header.effective_document_id):
        problems.append(f"DocumentId {header.effective_document_id!r} is not OrganId,yyyy/MM/dd,Number/Notation")
    if not header.document_type.type_name:
        problems.append("DocumentType: TypeName is required")
    if not header.subject:
        problems.append("Subject is required")
    if len(header.subject) > MAX_SUBJECT or len(header.content) > MAX_SUBJECT:
        problems.append(f"Subject and Content are limited to {MAX_SUBJECT} characters")
    business = package.business
    if business is not None and business.doc_type != BusinessDocType.NEW and not business.document_id:
        problems.append(f"Bussiness: type {int(business.doc_type)} needs the DocumentId it applies to")
    content_ids = [a.content_id.removeprefix("cid:") for a in package.attachments]
    if len(set(content_ids)) != len(content_ids):
        problems.append("attachments: ContentId values must be unique")
    for attachment in package.attachments:
        if not attachment.name or len(attachment.name) > MAX_ATTACHMENT_NAME:
            problems.append(f"attachment {attachment.content_id}: AttachmentName must be 1-500 characters")
    return problems


def validate_status(status: StatusMessage) -> list[str]:
    """Problems of a status message (empty list: valid)."""
    problems: list[str] = []
    _organ(problems, "From", status.from_org.organ_id)
    if status.status_code not in STATUS_CODES:
        problems.append(f"StatusCode {status.status_code!r} is not one of {', '.join(STATUS_CODES)}")
    response = status.response_for
    _organ(problems, "ResponseFor", response.organ_id)
    if not response.code:
        problems.append("ResponseFor: Code is required")
    if not DOCUMENT_ID.match(response.document_id):
        problems.append(f"ResponseFor: DocumentId {response.document_id!r} is not OrganId,yyyy/MM/dd,Number/Notation")
    return problems

"""Request and response shapes of the dossiers API, and its code lists."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field

from docsvc.documents.types import format_number


class DossierKind(StrEnum):
    WORK = "work"  # hồ sơ công việc
    PROCEDURE = "procedure"  # hồ sơ thủ tục hành chính (TTHC)


class DossierStatus(StrEnum):
    OPEN = "open"  # work file being built up
    CLOSED = "closed"  # work file closed (kết thúc hồ sơ)
    RECEIVED = "received"  # procedure dossier received (tiếp nhận)
    PROCESSING = "processing"  # being handled (đang giải quyết)
    FINISHED = "finished"  # result issued (đã giải quyết)
    REJECTED = "rejected"  # refused (từ chối)


class DocumentRole(StrEnum):
    MEMBER = "member"
    RESULT = "result"  # kết quả giải quyết TTHC


class ApplicantIdType(StrEnum):
    PERSONAL_ID = "personal_id"  # 12-digit số định danh cá nhân
    TAX_CODE = "tax_code"  # mã số thuế, 10 or 10-3 digits


def _as_utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive UTC and PostgreSQL aware datetimes: answer the same on both.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class DossierCreate(BaseModel):
    """A new dossier. Procedure fields are required for ``procedure`` and refused for ``work``;
    datetimes without a zone are taken as Vietnam time."""

    kind: DossierKind
    title: str = Field(min_length=1, max_length=500, description="Tiêu đề hồ sơ")
    code: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[0-9A-Za-z][0-9A-Za-z._/-]*$",
                             description="Mã hồ sơ; generated when omitted")
    retention: str | None = Field(default=None, max_length=32, description="Thời hạn bảo quản, e.g. '10 năm'")
    procedure_code: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^\S+$",
                                       description="Mã thủ tục hành chính")
    applicant_id_type: ApplicantIdType | None = None
    applicant_id: str | None = Field(default=None, max_length=14)
    applicant_name: str | None = Field(default=None, min_length=1, max_length=255)
    received_at: datetime | None = None
    """Defaults to now."""
    due_at: datetime | None = None
    """Hẹn trả kết quả; must be after ``received_at``."""


class StatusChange(BaseModel):
    """Move a dossier to ``status``; a rejection needs a ``reason`` for the applicant."""

    status: DossierStatus
    reason: str | None = Field(default=None, min_length=1, max_length=1000)


class FilingCreate(BaseModel):
    """File an existing document into a dossier."""

    document_id: int
    role: DocumentRole = DocumentRole.MEMBER


class ComponentCreate(BaseModel):
    """A thành phần hồ sơ: one paper the applicant supplies."""

    name: str = Field(min_length=1, max_length=255)
    copies: int = Field(default=1, ge=1, le=100)


class DossierRead(BaseModel):
    """A dossier's own fields."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    organisation_id: int
    kind: str
    code: str
    title: str
    status: str
    procedure_code: str | None
    applicant_id_type: str | None
    applicant_id: str | None
    applicant_name: str | None
    retention: str | None
    received_at: UtcDatetime | None
    due_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    created_at: UtcDatetime


class ComponentRead(BaseModel):
    """A component; ``has_file`` once its scan is uploaded."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    dossier_id: int
    name: str
    copies: int
    filename: str | None
    size: int | None
    sha256: str | None
    created_at: UtcDatetime

    @computed_field
    @property
    def has_file(self) -> bool:
        return self.sha256 is not None


class FiledDocumentRead(BaseModel):
    """A document filed in a dossier, with enough of the document to list it."""

    document_id: int
    role: str
    filed_at: UtcDatetime
    doc_type: str
    status: str
    number: int | None
    symbol: str | None
    issued_date: date | None
    subject: str

    @computed_field
    @property
    def number_symbol(self) -> str | None:
        return format_number(self.number, self.symbol) if self.number and self.symbol else None


class DossierDetail(DossierRead):
    """A dossier with its components and filed documents (DocTotal = ``len(documents)``)."""

    components: list[ComponentRead]
    documents: list[FiledDocumentRead]


class ResultFileRead(BaseModel):
    """The latest version of a result document's main file, and where to download it."""

    seq: int
    filename: str
    content_type: str
    size: int
    sha256: str
    download_path: str


class ResultDocumentRead(BaseModel):
    """A result document (kết quả giải quyết) as a reusing system sees it."""

    id: int
    number_symbol: str | None
    doc_type: str
    subject: str
    issued_date: date | None
    file: ResultFileRead | None
    """``None`` while no PDF has been uploaded."""


class ReusableDossierRead(BaseModel):
    """A finished procedure dossier of the applicant with its result documents."""

    id: int
    code: str
    organisation_id: int
    organ_id: str
    procedure_code: str | None
    title: str
    finished_at: UtcDatetime | None
    results: list[ResultDocumentRead]


class ReuseLookupRead(BaseModel):
    """Answer to a lookup by applicant id: what can be reused instead of asking for paper."""

    applicant_id: str
    applicant_id_type: ApplicantIdType
    count: int
    """Number of dossiers returned."""
    dossiers: list[ReusableDossierRead]

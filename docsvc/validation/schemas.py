"""Shapes of the validation API: the report formats and the JSON report (for OpenAPI).

The JSON body is exactly ``signing.validation.ValidationReport.to_dict()``; these models
document it and are not used to filter it, so fields the library adds still reach clients."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class ReportFormat(StrEnum):
    """``json`` (summary and detail), ``html`` (a readable page) or ``pdf`` (the same, printable)."""

    JSON = "json"
    HTML = "html"
    PDF = "pdf"


MEDIA_TYPES = {ReportFormat.JSON: "application/json", ReportFormat.HTML: "text/html; charset=utf-8",
               ReportFormat.PDF: "application/pdf"}


class SignerRead(BaseModel):
    name: str | None
    organisation: str | None
    serial: str
    issuer: str
    subject: str


class RevocationRead(BaseModel):
    status: str
    """``good``, ``revoked``, ``unknown`` (no usable data) or ``not_checked`` (no trusted chain)."""
    checked_at: str | None
    """The moment the status is about: the signing time a timestamp proves, else validation time."""
    source: str
    """``embedded`` (DSS / the signature's CMS), ``fetched`` (online now) or ``none``."""
    revoked_at: str | None = None


class SignatureResultRead(BaseModel):
    field_name: str
    kind: str
    indication: str
    sub_indication: str | None
    intact: bool
    valid: bool
    trusted: bool
    """Chains to a trusted root and passed the revocation policy (both below, separately)."""
    chain_trusted: bool
    """The signer's certificate chains to a configured trusted root."""
    trust_root: str | None
    """That root's subject."""
    revocation: RevocationRead
    signer: SignerRead | None
    signing_time: str | None
    timestamp_time: str | None
    timestamp_valid: bool | None
    pades_level: str | None
    coverage: str | None
    signed_revision: int
    modification_level: str | None
    modifications_permitted: bool | None
    suspicious_modification: str | None
    docmdp_permission: str | None
    messages: list[str]


class ValidationSummaryRead(BaseModel):
    indication: str
    """TOTAL-PASSED, TOTAL-FAILED or INDETERMINATE (ETSI EN 319 102-1)."""
    sub_indication: str | None
    signature_count: int
    revisions: int
    passed: int
    failed: int
    indeterminate: int
    chains_trusted: int
    revocation: dict[str, int]
    """How many signatures have each revocation status."""


class ValidationReportRead(BaseModel):
    summary: ValidationSummaryRead
    signatures: list[SignatureResultRead]

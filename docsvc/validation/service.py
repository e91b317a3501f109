"""Validating PDFs for users: trust from settings, library errors turned into ours, stored
versions read with their integrity checked and the validation recorded in the audit log.

Everything here blocks (parsing, hashing, RSA): routes call it from a worker thread."""

from __future__ import annotations

import tempfile
from typing import BinaryIO

from sqlalchemy.orm import Session

from archive import ObjectIntegrityError, ObjectNotFoundError, ObjectStore
from docsvc import errors
from docsvc.audit import service as audit
from docsvc.documents import files_service
from docsvc.documents.files_service import FileKind
from docsvc.documents.models import DocumentFile
from docsvc.pki.trust import other_certs, trust_roots
from docsvc.principal import Actor
from docsvc.settings import Settings
from docsvc.validation.schemas import ReportFormat
from signing import report as report_render
from signing.errors import EncryptedPdfError, InvalidPdfError, TrustConfigError
from signing.trust import TrustConfig, TrustServices
from signing.validation import ValidationReport, validate_pdf

_WINDOW = 1024  # PDF readers look for the header and %%EOF within 1024 bytes of each end


def check_pdf_header(head: bytes) -> None:
    """``NotAPdfError`` (415) unless the first KiB holds ``%PDF-``: not a PDF at all."""
    if b"%PDF-" not in head[:_WINDOW]:
        raise errors.NotAPdfError("the file is not a PDF (no %PDF- header)")


def _check_pdf_end(stream: BinaryIO) -> None:
    # A cut-off upload is a damaged PDF (422), not some other kind of file (415).
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(max(0, size - _WINDOW))
    tail = stream.read(_WINDOW)
    stream.seek(0)
    if b"%%EOF" not in tail:
        raise errors.PdfUnreadableError("the PDF is truncated or damaged (no %%EOF marker at its end)")


def _fetch_is_safe(report: ValidationReport) -> bool:
    """Only fetch revocation data when every signer already chains to a trusted root offline.

    An anonymous upload carries certificates anyone can make; their AIA/OCSP/CRL URLs would make
    this server send requests wherever the uploader likes (SSRF). A certificate a trusted CA
    issued has URLs that CA chose, so those may be followed. The decision is on trust alone, not
    on the indication: a broken hash is reported before trust, and must not open the door."""
    return all(s.trusted for s in report.signatures)


def _fetching_trust(settings: Settings, roots, others) -> TrustServices:
    """Online revocation checking whose OCSP/CRL answers are cached on disk for
    ``revocation_cache_seconds``, so a burst of validations does not hammer the responders.
    Soft-fail, as the offline pass: an unreachable responder leaves revocation unknown."""
    return TrustServices(TrustConfig(trust_roots=tuple(roots), other_certs=tuple(others), fetch_revocation=True,
                                     cache_dir=settings.revocation_cache_path,
                                     cache_seconds=settings.signing.revocation_cache_seconds,
                                     revocation_mode="soft-fail"))


def validate_stream(settings: Settings, stream: BinaryIO) -> ValidationReport:
    """Validate every signature in a seekable PDF stream against the configured trust.

    A first pass never touches the network; revocation data is fetched in a second pass only when
    every signer chains to a trusted root without it (see ``_fetch_is_safe``).

    Not a PDF → ``NotAPdfError``; truncated or malformed → ``PdfUnreadableError`` (``invalid_pdf``);
    encrypted → ``PdfEncryptedError`` (``encrypted_pdf``). Bad signatures are results, not errors."""
    stream.seek(0)
    check_pdf_header(stream.read(_WINDOW))
    _check_pdf_end(stream)
    roots, others = trust_roots(settings), other_certs(settings)
    try:
        report = validate_pdf(stream, roots, other_certs=others, allow_fetching=False)
        if settings.signing.fetch_revocation and report.signatures and _fetch_is_safe(report):
            stream.seek(0)
            report = validate_pdf(stream, trust=_fetching_trust(settings, roots, others))
        return report
    except EncryptedPdfError as exc:
        raise errors.PdfEncryptedError("the PDF is encrypted; its signatures cannot be validated") from exc
    except InvalidPdfError as exc:
        raise errors.PdfUnreadableError(f"the PDF cannot be read: {exc}") from exc
    except TrustConfigError as exc:
        raise errors.SigningUnavailableError(f"validation has no usable trust configuration: {exc}") from exc


def render_report(report: ValidationReport, fmt: ReportFormat, document_name: str | None = None) -> bytes:
    """The report as the body of a response in ``fmt`` (JSON is rendered by the caller)."""
    if fmt is ReportFormat.HTML:
        return report_render.render_html(report, document_name=document_name).encode()
    if fmt is ReportFormat.PDF:
        return report_render.render_pdf(report, document_name=document_name)
    raise ValueError(f"render_report renders html and pdf, not {fmt}")


def validate_stored_version(session: Session, store: ObjectStore, settings: Settings, actor: Actor,
                            document_id: int, seq: int) -> tuple[DocumentFile, ValidationReport]:
    """Validate version ``seq`` of a document the actor may read (another organisation's → 404).

    The stored bytes are checked against their recorded SHA-256 before and while they are read
    (``file_integrity_failed`` otherwise); the read and the verdict go to the audit log."""
    row, chunks = files_service.open_for_read(session, store, actor, document_id, FileKind.VERSION, seq)
    detail = dict(object_type="document", object_id=row.document_id, file_id=row.id, seq=seq, sha256=row.sha256)
    with tempfile.TemporaryFile() as copy:
        try:
            for chunk in chunks:
                copy.write(chunk)
        except (ObjectIntegrityError, ObjectNotFoundError) as exc:
            audit.record(session, actor, "file.integrity_failed", **detail)
            session.commit()
            raise errors.IntegrityFailedError("the stored file no longer matches its recorded SHA-256",
                                              file_id=row.id) from exc
        try:
            report = validate_stream(settings, copy)
        except errors.DocsvcError as exc:
            audit.record(session, actor, "document.version_validated", **detail, error=exc.code)
            session.commit()
            raise
    summary = report.to_dict()["summary"]
    audit.record(session, actor, "document.version_validated", **detail, indication=summary["indication"],
                 sub_indication=summary["sub_indication"], signature_count=summary["signature_count"])
    session.commit()
    return row, report

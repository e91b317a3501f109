"""Validation of every signature in a PDF, reported in ETSI EN 319 102-1 terms.

A bad signature is a result (``TOTAL-FAILED`` …), not an exception; only input we cannot read
raises (InvalidPdfError / EncryptedPdfError)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, BinaryIO, Literal

from asn1crypto import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate
from pyhanko.sign.diff_analysis import ModificationLevel, SuspiciousModification
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore, NoDSSFoundError
from pyhanko.sign.validation.errors import SignatureValidationError, ValidationInfoReadingError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from signing import speedups
from signing.errors import EncryptedPdfError, InvalidPdfError
from signing.pdf_input import PARSE_ERRORS, PdfSource, input_stream, parse_pdf
from signing.trust import TrustServices

# Reading the signature's /Contents hex string and preparing certificate names for comparison
# were ~80% of a one-page validation (see signing/speedups.py).
speedups.install()

Indication = Literal["TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE"]
_RANK = {"TOTAL-PASSED": 0, "INDETERMINATE": 1, "TOTAL-FAILED": 2}


@dataclass(frozen=True)
class SignerInfo:
    """Who signed, from the signer's certificate."""

    name: str | None
    """Common name (CN)."""
    organisation: str | None
    """Organisation (O)."""
    serial: str
    """Certificate serial number, hexadecimal."""
    issuer: str
    """Issuer's distinguished name, human readable."""
    subject: str
    """Subject's distinguished name, human readable."""


@dataclass(frozen=True)
class SignatureResult:
    """One embedded signature (or document timestamp) and its verdict."""

    field_name: str
    """Name of the signature field."""
    kind: Literal["signature", "certification", "document-timestamp"]
    """An approval signature, a certification (DocMDP) signature, or a document timestamp."""
    indication: Indication
    """EN 319 102-1 main indication."""
    sub_indication: str | None
    """EN 319 102-1 sub-indication (``HASH_FAILURE``, ``NO_CERTIFICATE_CHAIN_FOUND`` …) or ``None``."""
    intact: bool
    """The signed byte ranges hash to the digest in the signature."""
    valid: bool
    """The signature value verifies with the signer's public key."""
    trusted: bool
    """The signer's certificate chains to a trusted root and passed revocation checks."""
    signer: SignerInfo | None
    """The signer, if the certificate could be found."""
    signing_time: str | None
    """Time claimed by the signer (ISO 8601), not proven."""
    timestamp_time: str | None
    """Time proven by the signature (or document) timestamp, if any."""
    timestamp_valid: bool | None
    """Whether that timestamp is intact, valid and trusted; ``None`` without a timestamp."""
    pades_level: str | None
    """B-B, B-T, B-LT or B-LTA as far as the file shows; ``None`` for non-PAdES signatures."""
    coverage: str | None
    """ENTIRE_FILE, ENTIRE_REVISION (later revisions were appended) or a partial coverage."""
    signed_revision: int
    """Revision (0-based) this signature covers."""
    modification_level: str | None
    """How later revisions changed the document: NONE, LTA_UPDATES, FORM_FILLING, ANNOTATIONS, OTHER."""
    modifications_permitted: bool | None
    """Whether later changes are allowed (DocMDP and pyHanko's difference policy)."""
    suspicious_modification: str | None
    """Why later changes look like tampering, or ``None``."""
    docmdp_permission: str | None
    """The DocMDP permission of a certification signature."""
    messages: tuple[str, ...] = ()
    """Extra detail: errors met during validation."""


@dataclass(frozen=True)
class ValidationReport:
    """Every signature of one PDF and the overall verdict."""

    signatures: tuple[SignatureResult, ...]
    """In file order."""
    revisions: int
    """Number of revisions (incremental updates + 1) in the file."""

    @property
    def indication(self) -> Indication:
        """The worst indication over all signatures; INDETERMINATE for a file without any."""
        if not self.signatures:
            return "INDETERMINATE"
        return max((s.indication for s in self.signatures), key=_RANK.__getitem__)

    @property
    def sub_indication(self) -> str | None:
        if not self.signatures:
            return "NO_SIGNATURE_FOUND"
        return next((s.sub_indication for s in self.signatures if s.indication == self.indication), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``summary`` and ``signatures`` detail."""
        return {
            "summary": {
                "indication": self.indication,
                "sub_indication": self.sub_indication,
                "signature_count": len(self.signatures),
                "revisions": self.revisions,
                "passed": sum(s.indication == "TOTAL-PASSED" for s in self.signatures),
                "failed": sum(s.indication == "TOTAL-FAILED" for s in self.signatures),
                "indeterminate": sum(s.indication == "INDETERMINATE" for s in self.signatures),
            },
            "signatures": [asdict(s) for s in self.signatures],
        }


# --- reading ----------------------------------------------------------------------------------

def _open_reader(stream: BinaryIO) -> PdfFileReader:
    reader = parse_pdf(stream, lambda s: PdfFileReader(s, strict=False))
    if reader.encrypted:
        raise EncryptedPdfError("the PDF is encrypted; decrypt it before validating")
    try:
        reader.root["/Pages"]  # noqa: B018
    except PARSE_ERRORS as exc:
        raise InvalidPdfError(f"unreadable PDF structure: {exc}") from exc
    return reader


def _collect(reader: PdfFileReader) -> tuple[list[EmbeddedPdfSignature], list[tuple[str, str]]]:
    """Like pyHanko's ``embedded_signatures``, but a signature whose CMS cannot be parsed becomes
    a (name, error) pair instead of making the whole file unreadable."""
    good, broken = [], []
    try:
        found = list(enumerate_sig_fields(reader, filled_status=True))
    except PARSE_ERRORS as exc:
        raise InvalidPdfError(f"unreadable signature fields: {exc}") from exc
    for name, _value, field_ref in found:
        try:
            good.append(EmbeddedPdfSignature(reader, field_ref, name))
        except (SignatureValidationError, *PARSE_ERRORS) as exc:
            broken.append((str(name), f"{type(exc).__name__}: {exc}"))
    good.sort(key=lambda sig: sig.signed_revision)
    return good, broken


def _broken_result(name: str, message: str) -> SignatureResult:
    return SignatureResult(field_name=name, kind="signature", indication="TOTAL-FAILED",
                           sub_indication="FORMAT_FAILURE", intact=False, valid=False, trusted=False, signer=None,
                           signing_time=None, timestamp_time=None, timestamp_valid=None, pades_level=None,
                           coverage=None, signed_revision=-1, modification_level=None,
                           modifications_permitted=None, suspicious_modification=None, docmdp_permission=None,
                           messages=(message,))


def _signer_info(cert: x509.Certificate | None) -> SignerInfo | None:
    if cert is None:
        return None
    subject = cert.subject.native
    return SignerInfo(name=subject.get("common_name"), organisation=subject.get("organization_name"),
                      serial=format(cert.serial_number, "x"), issuer=cert.issuer.human_friendly,
                      subject=cert.subject.human_friendly)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- verdicts ---------------------------------------------------------------------------------

def _from_pyhanko_indic(indic: object) -> tuple[Indication, str]:
    if isinstance(indic, AdESFailure):
        return "TOTAL-FAILED", indic.name
    if isinstance(indic, AdESIndeterminate):
        return "INDETERMINATE", indic.name
    return "INDETERMINATE", "CERTIFICATE_CHAIN_GENERAL_FAILURE"


def _verdict(status, *, certification: bool, proven_time: bool = False) -> tuple[Indication, str | None]:
    """Map pyHanko's status to EN 319 102-1, most fundamental failure first. ``proven_time``: the
    status was computed at the time a timestamp proves, so a revocation then is final."""
    if not status.intact:
        return "TOTAL-FAILED", "HASH_FAILURE"
    if not status.valid:
        return "TOTAL-FAILED", "SIG_CRYPTO_FAILURE"
    coverage = getattr(status, "coverage", SignatureCoverageLevel.ENTIRE_FILE)
    if coverage is not None and coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        return "TOTAL-FAILED", "FORMAT_FAILURE"
    if getattr(status, "docmdp_ok", None) is False and certification:
        # The certifier forbade these changes: the certified document is no longer what was signed.
        return "TOTAL-FAILED", "FORMAT_FAILURE"
    if isinstance(getattr(status, "diff_result", None), SuspiciousModification) or \
            getattr(status, "docmdp_ok", None) is False:
        return "INDETERMINATE", "SIG_CONSTRAINTS_FAILURE"
    if status.revoked and proven_time:
        return "TOTAL-FAILED", "REVOKED"
    if status.revoked:
        return "TOTAL-FAILED" if isinstance(status.trust_problem_indic, AdESFailure) else "INDETERMINATE", \
            (status.trust_problem_indic.name if status.trust_problem_indic else "REVOKED_NO_POE")
    if not status.trusted:
        if status.trust_problem_indic is None:
            return "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"
        return _from_pyhanko_indic(status.trust_problem_indic)
    ts = getattr(status, "timestamp_validity", None)
    if ts is not None and not (ts.intact and ts.valid and ts.trusted):
        return "INDETERMINATE", ts.trust_problem_indic.name if ts.trust_problem_indic else "TIMESTAMP_ORDER_FAILURE"
    return "TOTAL-PASSED", None


def _pades_level(sig: EmbeddedPdfSignature, has_ts: bool, dss_after: bool, doc_ts_after: bool) -> str | None:
    if sig.sig_object.get("/SubFilter") != "/ETSI.CAdES.detached":
        return None
    if not has_ts:
        return "B-B"
    if not dss_after:
        return "B-T"
    return "B-LTA" if doc_ts_after else "B-LT"


def _dss_revision(reader: PdfFileReader) -> int | None:
    """The first revision holding a DSS with revocation data, or ``None``."""
    for rev in range(reader.xrefs.total_revisions):
        dss = reader.get_historical_root(rev).get("/DSS")
        if dss is not None:
            dss = dss.get_object()
            if "/OCSPs" in dss or "/CRLs" in dss:
                return rev
    return None


def _modifications(status) -> tuple[str | None, bool | None, str | None]:
    level = status.modification_level
    suspicious = status.diff_result if isinstance(status.diff_result, SuspiciousModification) else None
    permitted = None if status.docmdp_ok is None else bool(status.docmdp_ok and suspicious is None)
    if level is None and suspicious is not None:
        level = ModificationLevel.OTHER
    return (level.name if level is not None else None, permitted, str(suspicious) if suspicious else None)


class _Contexts:
    """Where validation contexts come from: a ``TrustServices`` or the plain old parameters.

    Every context handed out is remembered and closed at the end (its HTTP session, if any)."""

    def __init__(self, trust: TrustServices | None, trust_roots: list[x509.Certificate],
                 other_certs: list[x509.Certificate], allow_fetching: bool, revocation_mode: str,
                 validation_time: datetime | None) -> None:
        self._trust, self._roots, self._others = trust, trust_roots, other_certs
        self._fetch, self._mode, self.validation_time = allow_fetching, revocation_mode, validation_time
        self._open: list[ValidationContext] = []

    def current(self) -> ValidationContext:
        """A context at the validation time (now, unless the caller chose another moment)."""
        if self._trust is not None:
            vc = self._trust.validation_context(self.validation_time)
        else:
            vc = ValidationContext(trust_roots=self._roots, other_certs=self._others, allow_fetching=self._fetch,
                                   revocation_mode=self._mode, moment=self.validation_time)
        self._open.append(vc)
        return vc

    def at_proven_time(self, dss: DocumentSecurityStore | None, moment: datetime,
                       answers_now: ValidationContext) -> ValidationContext:
        """A context at ``moment`` (a time a timestamp proves) that fetches nothing: it holds the
        revocation data embedded in the document (the DSS) and the answers already fetched now, and
        demands revocation data for every certificate of the chain."""
        roots = list(self._trust.config.trust_roots) if self._trust is not None else self._roots
        others = list(self._trust.config.other_certs) if self._trust is not None else self._others
        kwargs = {"trust_roots": roots, "other_certs": others, "allow_fetching": False,
                  "revocation_mode": "hard-fail", "moment": moment, "retroactive_revinfo": True,
                  "ocsps": list(answers_now.ocsps), "crls": list(answers_now.crls)}
        vc = dss.as_validation_context(kwargs) if dss is not None else ValidationContext(**kwargs)
        self._open.append(vc)
        return vc

    async def aclose(self) -> None:
        for vc in self._open:
            await vc.aclose()
        self._open.clear()


async def _status_at_proven_time(sig: EmbeddedPdfSignature, status, contexts: _Contexts,
                                 reader: PdfFileReader, vc_now: ValidationContext):
    """Validation at the time the signature timestamp proves (EN 319 102-1 past signature
    validation, simplified): the timestamp must pass now; the chain must be valid and not revoked
    at that time, judged on the revocation data in the DSS and the answers fetched now.

    Settles two cases the validation "now" cannot: a B-LT/B-LTA signature whose certificate has
    expired since (passes), and a revoked certificate (fails if revoked before the proven time,
    passes if revoked after it). ``None`` when no timestamp proves a time."""
    ts = status.timestamp_validity
    if not (status.intact and status.valid) or ts is None or not (ts.intact and ts.valid and ts.trusted):
        return None
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        dss = None
    except (ValidationInfoReadingError, *PARSE_ERRORS):
        return None
    past_vc = contexts.at_proven_time(dss, ts.timestamp, vc_now)
    return await async_validate_pdf_signature(sig, past_vc, ts_validation_context=vc_now)


async def _validate_one(sig: EmbeddedPdfSignature, contexts: _Contexts, reader: PdfFileReader,
                        dss_rev: int | None, doc_ts_revs: Sequence[int]) -> SignatureResult:
    is_doc_ts = sig.sig_object_type == "/DocTimeStamp"
    docmdp = sig.docmdp_level
    kind = "document-timestamp" if is_doc_ts else ("certification" if docmdp is not None else "signature")
    base = dict(field_name=str(sig.field_name), kind=kind, signed_revision=int(sig.signed_revision),
                docmdp_permission=docmdp.name if docmdp is not None else None)
    has_dss_after = dss_rev is not None and dss_rev > sig.signed_revision
    messages: tuple[str, ...] = ()
    proven = False
    try:
        if is_doc_ts:
            status = await async_validate_pdf_timestamp(sig, validation_context=contexts.current())
        else:
            vc = contexts.current()
            status = await async_validate_pdf_signature(sig, vc, ts_validation_context=vc)
            if not status.trusted and (has_dss_after or status.revoked):
                past = await _status_at_proven_time(sig, status, contexts, reader, vc)
                if past is not None and (past.trusted or past.revoked):
                    status, proven = past, True
                    messages = (f"validated as of {_iso(past.timestamp_validity.timestamp)}, the time proven by "
                                "the signature timestamp, with the revocation data in the document",)
    except (SignatureValidationError, *PARSE_ERRORS) as exc:
        return SignatureResult(**base, indication="TOTAL-FAILED", sub_indication="FORMAT_FAILURE", intact=False,
                               valid=False, trusted=False, signer=_signer_info(_safe_signer_cert(sig)),
                               signing_time=None, timestamp_time=None, timestamp_valid=None, pades_level=None,
                               coverage=None, modification_level=None, modifications_permitted=None,
                               suspicious_modification=None, messages=(f"{type(exc).__name__}: {exc}",))
    indication, sub = _verdict(status, certification=kind == "certification", proven_time=proven)
    level_name, permitted, suspicious = _modifications(status)
    if is_doc_ts:
        ts_time, ts_ok, signing_time, level = status.timestamp, status.intact and status.valid and status.trusted, \
            None, None
    else:
        ts = status.timestamp_validity
        ts_time = ts.timestamp if ts else None
        ts_ok = (ts.intact and ts.valid and ts.trusted) if ts else None
        signing_time = status.signer_reported_dt
        level = _pades_level(sig, ts is not None, has_dss_after,
                             any(r > sig.signed_revision for r in doc_ts_revs))
    return SignatureResult(
        **base, indication=indication, sub_indication=sub, intact=status.intact, valid=status.valid,
        trusted=status.trusted, signer=_signer_info(status.signing_cert), signing_time=_iso(signing_time),
        timestamp_time=_iso(ts_time), timestamp_valid=ts_ok, pades_level=level,
        coverage=status.coverage.name if status.coverage is not None else None,
        modification_level=level_name, modifications_permitted=permitted, suspicious_modification=suspicious,
        messages=messages)


def _safe_signer_cert(sig: EmbeddedPdfSignature) -> x509.Certificate | None:
    try:
        return sig.signer_cert
    except (SignatureValidationError, *PARSE_ERRORS):
        return None


# --- entry points -----------------------------------------------------------------------------

async def async_validate_pdf(input: PdfSource | bytes, trust_roots: Iterable[x509.Certificate] | None = None, *,
                             trust: TrustServices | None = None,
                             other_certs: Iterable[x509.Certificate] = (), allow_fetching: bool = False,
                             revocation_mode: Literal["soft-fail", "hard-fail", "require"] = "soft-fail",
                             validation_time: datetime | None = None) -> ValidationReport:
    """Validate every signature and document timestamp in ``input``.

    Trust comes from ``trust`` (production: roots, revocation fetching and its cache from
    configuration) or, as before, from ``trust_roots``/``other_certs``/``allow_fetching``/
    ``revocation_mode``. ``validation_time`` validates as of another moment; in the past or the
    future nothing is fetched, so only revocation data embedded in the document counts."""
    if trust is None and trust_roots is None:
        raise TypeError("async_validate_pdf needs trust_roots or trust")
    contexts = _Contexts(trust, list(trust_roots or ()), list(other_certs), allow_fetching, revocation_mode,
                         validation_time)
    with ExitStack() as stack:
        stream = io.BytesIO(input) if isinstance(input, bytes) else stack.enter_context(input_stream(input))
        reader = _open_reader(stream)
        try:
            dss_rev = _dss_revision(reader)
        except PARSE_ERRORS as exc:
            raise InvalidPdfError(f"unreadable DSS: {exc}") from exc
        signatures, broken = _collect(reader)
        doc_ts_revs = [s.signed_revision for s in signatures if s.sig_object_type == "/DocTimeStamp"]
        results = []
        try:
            for sig in signatures:
                results.append(await _validate_one(sig, contexts, reader, dss_rev, doc_ts_revs))
        finally:
            await contexts.aclose()
        results.extend(_broken_result(name, message) for name, message in broken)
        return ValidationReport(signatures=tuple(results), revisions=reader.xrefs.total_revisions)


def validate_pdf(input: PdfSource | bytes, trust_roots: Iterable[x509.Certificate] | None = None, *,
                 trust: TrustServices | None = None,
                 other_certs: Iterable[x509.Certificate] = (), allow_fetching: bool = False,
                 revocation_mode: Literal["soft-fail", "hard-fail", "require"] = "soft-fail",
                 validation_time: datetime | None = None) -> ValidationReport:
    """Synchronous ``async_validate_pdf`` (not inside a running event loop)."""
    return asyncio.run(async_validate_pdf(input, trust_roots, trust=trust, other_certs=other_certs,
                                          allow_fetching=allow_fetching, revocation_mode=revocation_mode,
                                          validation_time=validation_time))

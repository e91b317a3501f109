"""Validation of every signature in a PDF, reported in ETSI EN 319 102-1 terms.

A bad signature is a result (``TOTAL-FAILED`` …), not an exception; only input we cannot read
raises (InvalidPdfError / EncryptedPdfError)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import os
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Literal

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate
from pyhanko.sign.diff_analysis import ModificationLevel, SuspiciousModification
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp, generic_cms
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext, find_valid_path
from pyhanko_certvalidator.errors import (
    CRLValidationError,
    OCSPValidationError,
    PathError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.registry import PathBuilder
from pyhanko_certvalidator.revinfo.validate_crl import verify_crl
from pyhanko_certvalidator.revinfo.validate_ocsp import verify_ocsp_response
from pyhanko_certvalidator.util import CancelableAsyncIterator

from signing import parse_speedups, reuse, speedups
from signing.errors import EncryptedPdfError, InvalidPdfError
from signing.pdf_input import PARSE_ERRORS, PdfSource, input_stream, parse_pdf
from signing.trust import TrustServices

# Reading the signature's /Contents hex string and preparing certificate names for comparison
# were ~80% of a one-page validation (see signing/speedups.py).
speedups.install()
# Parsing and checking the same certificates, names and OIDs again for every document was most of
# what was left (see signing/reuse.py).
reuse.install()
parse_speedups.install()


@functools.lru_cache(maxsize=4096)
def _name_key(der: bytes) -> tuple[tuple[int, str], ...] | None:
    """What RFC 5280 name comparison looks at in an RDN sequence, per RDN: how many attributes, and their types with
    prepared values (asn1crypto's ``hashable``); ``None`` when the name cannot be prepared."""
    try:
        return tuple((len(rdn), rdn.hashable) for rdn in x509.RDNSequence.load(der))
    except ValueError:
        return None


def _name_eq(self: x509.Name, other: object) -> bool:
    """``x509.Name.__eq__`` with the same answers, without preparing the same names again.

    Finding the signer among a CMS's certificates and matching ESS certificate ids compare issuer
    names ~25 times per signature, on certificates parsed afresh by every validation: that was a
    quarter of a one-page validation. Equal DER is equal; otherwise the per-RDN key of each name is
    computed once per distinct encoding (bounded cache: hostile input cannot grow it). A name that
    cannot be prepared falls back to asn1crypto's own comparison (and its error)."""
    if not isinstance(other, x509.Name):
        return False
    # The RDN sequences, not the names: a name inside a GeneralName carries an explicit tag.
    mine, theirs = self.chosen.dump(), other.chosen.dump()
    if mine == theirs:
        return True
    a, b = _name_key(mine), _name_key(theirs)
    if a is None or b is None:
        return _asn1crypto_name_eq(self, other)
    return a == b


_asn1crypto_name_eq = x509.Name.__eq__
x509.Name.__eq__ = _name_eq


# --- certificate paths validated "now", reused for a bounded time ----------------------------

#: Seconds a certificate path validated at "now" is reused for the same certificate and trust.
PATH_CACHE_SECONDS = 300
_PATH_CACHE_SIZE = 256


class _PathCache:
    """Certificate paths that validated "now", per (trust, certificate), for ``PATH_CACHE_SECONDS``.

    Building and validating the signer's and the TSA's paths was a quarter of a one-page
    validation, and an agency's documents all carry the same seal and TSA certificates. Only the
    path is reused: every signature's integrity and cryptographic value, its timestamp token's,
    the signing-certificate attribute and the key usages are checked every time. Only successes
    are kept, only from contexts that fetch nothing and validate at the current time (a fetching
    context's report says what it fetched); a hit also requires every certificate of the path to be
    within its validity period at the new context's moment, so expiry is never seen late. A
    revocation published meanwhile can be seen up to ``PATH_CACHE_SECONDS`` late — but such a
    context has no revocation data to see it with anyway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple, tuple[float, datetime, datetime, Any]] = {}

    def get(self, key: tuple, moment: datetime):
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        expires, not_before, not_after, path = entry
        if time.monotonic() >= expires or not (not_before <= moment <= not_after):
            return None
        return path

    def put(self, key: tuple, path) -> None:
        certs = [c for c in path.iter_certs(include_root=True) if isinstance(c, x509.Certificate)]
        if not certs:
            return
        not_before = max(c["tbs_certificate"]["validity"]["not_before"].native for c in certs)
        not_after = min(c["tbs_certificate"]["validity"]["not_after"].native for c in certs)
        with self._lock:
            if len(self._entries) >= _PATH_CACHE_SIZE:
                self._entries.pop(next(iter(self._entries)))  # oldest first: a dict keeps insertion order
            self._entries[key] = (time.monotonic() + PATH_CACHE_SECONDS, not_before, not_after, path)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_PATHS = _PathCache()
#: Attribute of a ``ValidationContext`` whose validated paths may be reused: the trust's fingerprint.
_REUSE_PATHS = "_docsvc_path_key"


async def _find_valid_path(certificate, paths, validation_context, pkix_validation_params=None):
    """pyHanko's ``find_valid_path`` for ``validate_cert_usage``, through ``_PATHS`` for the contexts
    ``_Contexts.current`` marks as reusable."""
    trust_key = getattr(validation_context, _REUSE_PATHS, None)
    if trust_key is None or pkix_validation_params is not None:
        return await find_valid_path(certificate, paths, validation_context=validation_context,
                                     pkix_validation_params=pkix_validation_params)
    key = (trust_key, reuse.der_of(certificate))
    path = _PATHS.get(key, validation_context.moment)
    if path is not None:
        await paths.cancel()
        return path
    path = await find_valid_path(certificate, paths, validation_context=validation_context)
    _PATHS.put(key, path)
    return path


generic_cms.find_valid_path = _find_valid_path


class _DeferredPaths(CancelableAsyncIterator):
    """A path search that is only set up when first asked for a path. ``_find_valid_path`` cancels
    the search unused when ``_PATHS`` holds the certificate's path; setting it up (looking up trust
    anchors and issuers by name) was ~5% of a validation. Asked for a path, it is pyHanko's own
    search, with the same answers and errors."""

    def __init__(self, build) -> None:
        self._build, self._paths, self._cancelled = build, None, False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._paths is None:
            if self._cancelled:
                raise StopAsyncIteration
            self._paths = self._build()
        return await self._paths.__anext__()

    async def cancel(self) -> None:
        self._cancelled = True
        if self._paths is not None:
            await self._paths.cancel()


class _DeferringPathBuilder(PathBuilder):
    """The path builder of the contexts ``_Contexts.current`` marks as reusable: pyHanko's, on the
    context's own trust manager and registry, with its searches set up lazily (``_DeferredPaths``)."""

    def __init__(self, inner: PathBuilder) -> None:
        super().__init__(trust_manager=inner.trust_manager, registry=inner.registry)

    def async_build_paths_lazy(self, end_entity_cert):
        build = super().async_build_paths_lazy
        return _DeferredPaths(lambda: build(end_entity_cert))


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


RevocationStatus = Literal["good", "revoked", "unknown", "not_checked"]
RevocationSource = Literal["embedded", "fetched", "none"]


@dataclass(frozen=True)
class RevocationCheck:
    """The revocation status of the signer's certificate, and what it rests on."""

    status: RevocationStatus
    """``good``: a validly signed, relevant OCSP response or CRL says the certificate was not
    revoked at ``checked_at``; ``revoked``: the certificate (or a CA of its chain) was revoked by
    then; ``unknown``: no usable revocation data; ``not_checked``: there was nothing to check
    (no chain to a trusted root, or a broken signature)."""
    checked_at: str | None
    """The moment the status is about (ISO 8601): the signing time the signature timestamp
    proves, else the validation time; ``None`` when not checked."""
    source: RevocationSource
    """``embedded``: revocation data carried by the document (DSS, or the signature's CMS);
    ``fetched``: OCSP/CRL answers fetched online during this validation; ``none``: neither."""
    revoked_at: str | None = None
    """When the certificate was revoked, for ``revoked``."""


NOT_CHECKED = RevocationCheck(status="not_checked", checked_at=None, source="none")


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
    """The signer's certificate chains to a trusted root and passed revocation checks (as far
    as the revocation policy asked; ``chain_trusted`` and ``revocation`` tell them apart)."""
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
    chain_trusted: bool = False
    """The signer's certificate chains to a configured trusted root (whatever its revocation
    status; a revoked CA breaks the chain)."""
    trust_root: str | None = None
    """Subject of the trusted root that chain ends at."""
    revocation: RevocationCheck = NOT_CHECKED
    """Revocation status of the signer's certificate (see :class:`RevocationCheck`)."""


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
                "chains_trusted": sum(s.chain_trusted for s in self.signatures),
                "revocation": {status: sum(s.revocation.status == status for s in self.signatures)
                               for status in ("good", "revoked", "unknown", "not_checked")},
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


def _pades_level(sig: EmbeddedPdfSignature, has_ts: bool, lt_revision: int | None,
                 doc_ts_revs: Sequence[int]) -> str | None:
    """B-LT needs validation data for this signer added after it was signed (``lt_revision``);
    B-LTA also a document timestamp over that data, i.e. in the same revision or a later one.
    So an earlier B-LT signature whose data a later document timestamp covers reads B-LTA, as
    ETSI EN 319 142-1 defines the level (and as EU DSS reports it)."""
    if sig.sig_object.get("/SubFilter") != "/ETSI.CAdES.detached":
        return None
    if not has_ts:
        return "B-B"
    if lt_revision is None:
        return "B-T"
    return "B-LTA" if any(rev >= lt_revision for rev in doc_ts_revs) else "B-LT"


# --- what the DSS holds, revision by revision ------------------------------------------------

@dataclass(frozen=True)
class _DssState:
    """The validation data one revision's DSS holds; OCSP responses and CRLs keyed by SHA-256."""

    vri: frozenset[str] = frozenset()
    ocsps: dict[bytes, asn1_ocsp.OCSPResponse] = field(default_factory=dict)
    crls: dict[bytes, asn1_crl.CertificateList] = field(default_factory=dict)
    certs: tuple[x509.Certificate, ...] = ()


class _DssHistory:
    """The DSS of every revision, to tell per signature whether validation data *for its signer*
    was added after it was signed, and in which revision.

    A DSS is inherited by every later revision, and several signatures share it, so "some
    revision after the signature has a DSS" says nothing about this signature. What counts is
    data absent from the DSS of the signed revision that appears later and concerns this signer:
    a VRI entry for this signature, an OCSP response for its certificate, or a CRL of its
    issuer. Each stored object is decoded once however many revisions inherit it. Damaged
    entries are skipped: they are evidence of nothing, and pyHanko judges the signature itself."""

    def __init__(self, reader: PdfFileReader) -> None:
        self._reader = reader
        self._decoded: dict[tuple, tuple[bytes, Any] | None] = {}
        self.states = [self._read(rev) for rev in range(reader.xrefs.total_revisions)]

    @property
    def latest(self) -> _DssState:
        """What the document holds now."""
        return self.states[-1] if self.states else _DssState()

    def _read(self, revision: int) -> _DssState:
        try:
            # The last revision's catalog is the document's own, which _open_reader already read.
            last = revision == self._reader.xrefs.total_revisions - 1
            root = self._reader.root if last else self._reader.get_historical_root(revision)
            dss = root.get("/DSS")
            if dss is None:
                return _DssState()
            dss = dss.get_object()
            vri = dss.get("/VRI")
            keys = frozenset(str(key).lstrip("/").upper() for key in vri.get_object().keys()) if vri else frozenset()
        except PARSE_ERRORS:
            return _DssState()
        ocsps = self._objects(dss, "/OCSPs", revision, DecodePurpose.OCSP_RESPONSE, asn1_ocsp.OCSPResponse)
        crls = self._objects(dss, "/CRLs", revision, DecodePurpose.CRL, asn1_crl.CertificateList)
        certs = self._objects(dss, "/Certs", revision, DecodePurpose.CERTIFICATE, x509.Certificate)
        return _DssState(keys, ocsps, crls, tuple(certs.values()))

    def _objects(self, dss, key: str, revision: int, purpose: DecodePurpose, kind) -> dict[bytes, Any]:
        found: dict[bytes, Any] = {}
        try:
            array = dss.get(key)
            array = array.get_object() if array is not None else generic.ArrayObject()
            count = len(array)
        except PARSE_ERRORS:
            return found
        for index in range(count):
            try:
                raw = array.raw_get(index)
                where = None
                if isinstance(raw, generic.IndirectObject):
                    # The same object at the same place in the file is the same bytes.
                    where = (raw.idnum, raw.generation, self._reader.xrefs.get_historical_ref(raw.reference, revision))
                if where is not None and where in self._decoded:
                    decoded = self._decoded[where]
                else:
                    decoded = self._decode(array[index], purpose, kind)
                    if where is not None:
                        self._decoded[where] = decoded
            except PARSE_ERRORS:
                continue
            if decoded is not None:
                found[decoded[0]] = decoded[1]
        return found

    @staticmethod
    def _decode(stream, purpose: DecodePurpose, kind) -> tuple[bytes, Any] | None:
        try:
            data = stream.read_data(purpose)
            value = kind.load(data)
            # Parse now, so a damaged blob is skipped here rather than failing later; a CRL only
            # as far as its issuer (a big CRL's entries are read when needed).
            (value["tbs_cert_list"]["issuer"] if kind is asn1_crl.CertificateList else value).native  # noqa: B018
        except PARSE_ERRORS:
            return None
        return hashlib.sha256(data).digest(), value

    def lt_revision(self, sig: EmbeddedPdfSignature, signer: x509.Certificate | None) -> int | None:
        """The first revision after ``sig``'s that added validation data for it, or ``None``."""
        base = self.states[sig.signed_revision] if sig.signed_revision < len(self.states) else _DssState()
        identifiers = None  # hashing the whole /Contents three ways: only once a later revision adds VRI keys
        for revision in range(sig.signed_revision + 1, len(self.states)):
            state = self.states[revision]
            added = state.vri - base.vri
            if added and added & (identifiers := identifiers or _vri_identifiers(sig)):
                return revision
            if signer is None:
                continue
            if any(_ocsp_covers(resp, signer) for digest, resp in state.ocsps.items() if digest not in base.ocsps):
                return revision
            if any(_crl_covers(crl, signer) for digest, crl in state.crls.items() if digest not in base.crls):
                return revision
        return None


def _vri_identifiers(sig: EmbeddedPdfSignature) -> frozenset[str]:
    """VRI keys this signature may have been filed under. PAdES says "SHA-1 of the signature",
    and writers differ on which bytes: the whole /Contents value (pyHanko when signing), its
    lowercase hex (pyHanko's ``add_validation_info``), or the CMS without the zero padding."""
    contents = bytes(sig.pkcs7_content)
    candidates = {contents, contents.rstrip(b"\0"), contents.hex().encode("ascii")}
    return frozenset(hashlib.sha1(c).hexdigest().upper() for c in candidates)  # SHA-1: what PAdES keys VRI by


def _ocsp_single_responses(response: asn1_ocsp.OCSPResponse) -> list:
    try:
        if response["response_status"].native != "successful":
            return []
        return list(response["response_bytes"]["response"].parsed["tbs_response_data"]["responses"])
    except PARSE_ERRORS:
        return []


def _ocsp_matches(single, cert: x509.Certificate) -> bool:
    try:
        cert_id = single["cert_id"]
        if cert_id["serial_number"].native != cert.serial_number:
            return False
        digest = hashlib.new(cert_id["hash_algorithm"]["algorithm"].native, cert.issuer.dump()).digest()
        return digest == cert_id["issuer_name_hash"].native
    except PARSE_ERRORS:
        return False


def _ocsp_covers(response: asn1_ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    """The response answers for ``cert`` (whatever it says)."""
    return any(_ocsp_matches(single, cert) for single in _ocsp_single_responses(response))


def _crl_covers(crl: asn1_crl.CertificateList, cert: x509.Certificate) -> bool:
    """The CRL is issued by ``cert``'s issuer (direct CRLs: the ones CAs here publish)."""
    try:
        return crl["tbs_cert_list"]["issuer"].hashable == cert.issuer.hashable
    except PARSE_ERRORS:
        return False


def _says_revoked(ocsps: Iterable[asn1_ocsp.OCSPResponse], crls: Iterable[asn1_crl.CertificateList],
                  cert: x509.Certificate) -> bool:
    """Some of this (unverified) data lists ``cert`` as revoked; only used to tell where a
    revocation pyHanko already established came from."""
    for response in ocsps:
        for single in _ocsp_single_responses(response):
            if _ocsp_matches(single, cert) and single["cert_status"].name == "revoked":
                return True
    for crl in crls:
        if _crl_covers(crl, cert):
            try:
                if any(entry["user_certificate"].native == cert.serial_number
                       for entry in crl["tbs_cert_list"]["revoked_certificates"]):
                    return True
            except PARSE_ERRORS:
                continue
    return False


def _modifications(status) -> tuple[str | None, bool | None, str | None]:
    level = status.modification_level
    suspicious = status.diff_result if isinstance(status.diff_result, SuspiciousModification) else None
    permitted = None if status.docmdp_ok is None else bool(status.docmdp_ok and suspicious is None)
    if level is None and suspicious is not None:
        level = ModificationLevel.OTHER
    return (level.name if level is not None else None, permitted, str(suspicious) if suspicious else None)


@dataclass(frozen=True)
class _Revinfo:
    """Revocation data from one source, with the certificates that help verify it."""

    ocsps: tuple[asn1_ocsp.OCSPResponse, ...] = ()
    crls: tuple[asn1_crl.CertificateList, ...] = ()
    certs: tuple[x509.Certificate, ...] = ()


def _embedded_revinfo(sig: EmbeddedPdfSignature, dss: _DssState) -> _Revinfo:
    """What the document carries: the DSS, plus the revocation data inside the signature's CMS
    (Adobe's revocationInfoArchival attribute, and the SignedData ``crls`` field)."""
    ocsps, crls = list(dss.ocsps.values()), list(dss.crls.values())
    try:
        for attr in sig.signer_info["signed_attrs"]:
            if attr["type"].native == "adobe_revocation_info_archival":
                for archival in attr["values"]:
                    ocsps += [item for item in archival["ocsp"] or ()]
                    crls += [item for item in archival["crl"] or ()]
        for choice in sig.signed_data["crls"] or ():
            if choice.name == "crl":
                crls.append(choice.chosen)
            elif choice.chosen["other_rev_info_format"].native == "ocsp_response":
                ocsps.append(asn1_ocsp.OCSPResponse.load(choice.chosen["other_rev_info"].dump()))
    except PARSE_ERRORS:
        pass  # damaged CMS revocation data proves nothing; the DSS part still counts
    return _Revinfo(tuple(ocsps), tuple(crls), dss.certs)


def _fetched_revinfo(vc: ValidationContext) -> _Revinfo:
    """The answers a context fetched online. Our contexts are built without revocation data, so
    whatever they hold was fetched (or served from the fetch cache)."""
    return _Revinfo(tuple(vc.ocsps), tuple(vc.crls))


def _context(roots: list, **kwargs) -> ValidationContext:
    """``ValidationContext(trust_roots=roots, **kwargs)``, with the trust manager for ``roots`` built
    once per root set (``signing.reuse.trust_manager``) instead of per context: it is read-only once
    built, and every context still gets its own certificate registry and revocation data."""
    if all(isinstance(c, x509.Certificate) for c in roots):
        return ValidationContext(trust_manager=reuse.trust_manager(roots), **kwargs)
    return ValidationContext(trust_roots=roots, **kwargs)


class _Contexts:
    """Where validation contexts come from: a ``TrustServices`` or the plain old parameters.

    Every context handed out is remembered and closed at the end (its HTTP session, if any)."""

    def __init__(self, trust: TrustServices | None, trust_roots: list[x509.Certificate],
                 other_certs: list[x509.Certificate], allow_fetching: bool, revocation_mode: str,
                 validation_time: datetime | None) -> None:
        # The shared, fully parsed objects for the same DER (signing.reuse): cheap to register and key.
        self._trust, self._roots, self._others = trust, reuse.shared(trust_roots), reuse.shared(other_certs)
        self._fetch, self._mode, self.validation_time = allow_fetching, revocation_mode, validation_time
        self._open: list[ValidationContext] = []

    def current(self) -> ValidationContext:
        """A context at the validation time (now, unless the caller chose another moment)."""
        if self._trust is not None:
            vc = self._trust.validation_context(self.validation_time)
            fetches = self._trust.config.fetch_revocation
        else:
            vc = _context(self._roots, other_certs=self._others, allow_fetching=self._fetch,
                          revocation_mode=self._mode, moment=self.validation_time)
            fetches = self._fetch
        if self.validation_time is None and not fetches:
            trust_key = self._trust_key()
            setattr(vc, _REUSE_PATHS, trust_key)
            vc.path_builder = _DeferringPathBuilder(vc.path_builder)
        self._open.append(vc)
        return vc

    def _trust_key(self) -> bytes:
        """What a reused path depends on besides the certificate: the roots and the other
        certificates path building may use, and the revocation mode."""
        roots = list(self._trust.config.trust_roots) if self._trust is not None else self._roots
        others = list(self._trust.config.other_certs) if self._trust is not None else self._others
        mode = self._trust.config.revocation_mode if self._trust is not None else self._mode
        digest = hashlib.sha256(mode.encode())
        for group in (roots, others):
            digest.update(b"|")
            for der in sorted(reuse.der_of(c) for c in group):
                digest.update(hashlib.sha256(der).digest())
        return digest.digest()

    def offline(self, moment: datetime, *sources: _Revinfo) -> ValidationContext:
        """A context at ``moment`` that fetches nothing and holds only the revocation data of
        ``sources``; it demands revocation data for every certificate of a chain, and accepts
        data issued after ``moment`` (a later "good" still proves "not revoked then")."""
        roots = list(self._trust.config.trust_roots) if self._trust is not None else self._roots
        others = list(self._trust.config.other_certs) if self._trust is not None else self._others
        vc = _context(roots, other_certs=others + [c for s in sources for c in s.certs],
                      allow_fetching=False, revocation_mode="hard-fail", moment=moment,
                      retroactive_revinfo=True, ocsps=[o for s in sources for o in s.ocsps],
                      crls=[c for s in sources for c in s.crls])
        self._open.append(vc)
        return vc

    async def aclose(self) -> None:
        for vc in self._open:
            await vc.aclose()
        self._open.clear()


def _proven_time(status) -> datetime | None:
    """The signing time the signature timestamp proves, if it passes."""
    ts = getattr(status, "timestamp_validity", None)
    return ts.timestamp if ts is not None and ts.intact and ts.valid and ts.trusted else None


async def _status_at_proven_time(sig: EmbeddedPdfSignature, status, contexts: _Contexts,
                                 embedded: _Revinfo, vc_now: ValidationContext):
    """Validation at the time the signature timestamp proves (EN 319 102-1 past signature
    validation, simplified): the timestamp must pass now; the chain must be valid and not revoked
    at that time, judged on the revocation data in the document and the answers fetched now.

    Settles two cases the validation "now" cannot: a B-LT/B-LTA signature whose certificate has
    expired since (passes), and a revoked certificate (fails if revoked before the proven time,
    passes if revoked after it). ``None`` when no timestamp proves a time."""
    moment = _proven_time(status)
    if not (status.intact and status.valid) or moment is None:
        return None
    past_vc = contexts.offline(moment, embedded, _fetched_revinfo(vc_now))
    return await async_validate_pdf_signature(sig, past_vc, ts_validation_context=vc_now)


# --- chain and revocation, reported apart ----------------------------------------------------

def _chain(status) -> tuple[bool, str | None]:
    """Whether pyHanko built a path to a trusted root, and that root. pyHanko keeps the path when
    only revocation or expiry failed, so this is the chain on its own; a revoked CA breaks it. It
    also keeps a path it built by *names* whose signatures then failed (another PKI whose CAs are
    named like ours), so every link is checked against its issuer's key here."""
    path = getattr(status, "validation_path", None)
    details = getattr(status, "revocation_details", None)
    if path is None or (details is not None and details.ca_revoked) or not _links_verify(path):
        return False, None
    try:
        return True, path.trust_anchor.authority.name.human_friendly
    except (AttributeError, ValueError):
        return True, None


#: Chains (their certificates' DER, anchor first) whose every link verified: a signature over fixed
#: bytes with a fixed key verifies every time, so only the same certificates can hit. Failures are
#: not kept.
_VERIFIED_CHAINS = reuse.BoundedMemo(256)


def _links_verify(path) -> bool:
    """Every certificate of ``path`` is signed by the key of the certificate before it, from the
    trust anchor down to the signer."""
    try:
        ders = tuple(reuse.der_of(cert) for cert in path.iter_certs(include_root=True))
    except (ValueError, LookupError, AttributeError):
        return False
    if _VERIFIED_CHAINS.get(ders):
        return True
    if _verify_links(ders):
        _VERIFIED_CHAINS.put(ders, True)
        return True
    return False


def _verify_links(ders: tuple[bytes, ...]) -> bool:
    try:
        certs = [cx509.load_der_x509_certificate(der) for der in ders]
    except (ValueError, LookupError, AttributeError):
        return False
    for issuer, subject in zip(certs, certs[1:], strict=False):
        try:
            subject.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError):
            return False
    return bool(certs)


async def _signer_revinfo(cert: x509.Certificate, path, vc: ValidationContext) -> tuple[str, datetime | None]:
    """What verified OCSP responses, else CRLs, in ``vc`` say of ``cert`` at ``vc.moment``:
    ``("good", None)``, ``("revoked", when)`` or ``("unknown", None)`` (none usable: wrong
    signature, unauthorised responder, stale, or not about this certificate)."""
    for check in (verify_ocsp_response, verify_crl):
        try:
            await check(cert, path, vc)
            return "good", None
        except RevokedError as exc:
            return "revoked", exc.revocation_dt
        except (OCSPValidationError, CRLValidationError, ValidationError, PathError, LookupError,
                *PARSE_ERRORS):
            continue
    return "unknown", None


async def _revocation(status, contexts: _Contexts, moment: datetime, embedded: _Revinfo, fetched: _Revinfo,
                      known_revocation) -> RevocationCheck:
    """The signer certificate's revocation status at ``moment``, from the document's own data
    and from what was fetched, each verified on its own so the report can say which one
    decided. ``known_revocation``: pyHanko's ``RevocationDetails`` from validating now."""
    path, cert = getattr(status, "validation_path", None), getattr(status, "signing_cert", None)
    if not (status.intact and status.valid) or path is None or cert is None:
        return NOT_CHECKED
    at = _iso(moment)
    later = _iso(known_revocation.revocation_date) if known_revocation is not None else None
    verdicts: dict[str, tuple[str, datetime | None]] = {}
    for source, data in (("embedded", embedded), ("fetched", fetched)):
        relevant = _Revinfo(tuple(r for r in data.ocsps if _ocsp_covers(r, cert)),
                            tuple(c for c in data.crls if _crl_covers(c, cert)), data.certs)
        if relevant.ocsps or relevant.crls:
            verdicts[source] = await _signer_revinfo(cert, path, contexts.offline(moment, relevant))
    for source, (verdict, when) in verdicts.items():
        if verdict == "revoked":  # from either source: a later "good" cannot undo it
            return RevocationCheck("revoked", at, source, _iso(when))
    if known_revocation is not None and known_revocation.ca_revoked:
        cas = [c for c in path.iter_certs(include_root=False) if c is not cert]
        source = next((name for name, data in (("embedded", embedded), ("fetched", fetched))
                       if any(_says_revoked(data.ocsps, data.crls, ca) for ca in cas)), "none")
        return RevocationCheck("revoked", at, source, later)
    for source, (verdict, _) in verdicts.items():  # embedded first: a long-term signature rests on it
        if verdict == "good":
            return RevocationCheck("good", at, source, later)
    return RevocationCheck("unknown", at, next(iter(verdicts), "none"), later)


def _certifies(sig: EmbeddedPdfSignature) -> bool:
    """A certification signature carries a DocMDP transform reference (ISO 32000 12.8.2.2). pyHanko's
    ``docmdp_level`` also reports the ``/P`` of an approval signature's field lock, which is not one."""
    try:
        references = sig.sig_object.get("/Reference") or ()
        return any(ref.get_object().get("/TransformMethod") == "/DocMDP" for ref in references)
    except PARSE_ERRORS:
        return False


async def _validate_one(sig: EmbeddedPdfSignature, contexts: _Contexts, dss: _DssHistory,
                        doc_ts_revs: Sequence[int]) -> SignatureResult:
    is_doc_ts = sig.sig_object_type == "/DocTimeStamp"
    docmdp = sig.docmdp_level  # a certification's DocMDP, or the /P of an approval signature's field lock
    kind = "document-timestamp" if is_doc_ts else ("certification" if _certifies(sig) else "signature")
    base = dict(field_name=str(sig.field_name), kind=kind, signed_revision=int(sig.signed_revision),
                docmdp_permission=docmdp.name if docmdp is not None else None)
    signer_cert = _safe_signer_cert(sig)
    lt_revision = None if is_doc_ts else dss.lt_revision(sig, signer_cert)
    embedded = _embedded_revinfo(sig, dss.latest)
    messages: tuple[str, ...] = ()
    proven = False
    try:
        vc = contexts.current()
        if is_doc_ts:
            status = now = await async_validate_pdf_timestamp(sig, validation_context=vc)
        else:
            status = now = await async_validate_pdf_signature(sig, vc, ts_validation_context=vc)
            if not status.trusted and (lt_revision is not None or status.revoked):
                past = await _status_at_proven_time(sig, status, contexts, embedded, vc)
                if past is not None and (past.trusted or past.revoked):
                    status, proven = past, True
                    messages = (f"validated as of {_iso(past.timestamp_validity.timestamp)}, the time proven by "
                                "the signature timestamp, with the revocation data in the document",)
    except (SignatureValidationError, *PARSE_ERRORS) as exc:
        return SignatureResult(**base, indication="TOTAL-FAILED", sub_indication="FORMAT_FAILURE", intact=False,
                               valid=False, trusted=False, signer=_signer_info(signer_cert),
                               signing_time=None, timestamp_time=None, timestamp_valid=None, pades_level=None,
                               coverage=None, modification_level=None, modifications_permitted=None,
                               suspicious_modification=None, messages=(f"{type(exc).__name__}: {exc}",))
    moment = (None if is_doc_ts else _proven_time(status)) or vc.moment
    try:
        revocation = await _revocation(status, contexts, moment, embedded, _fetched_revinfo(vc),
                                       now.revocation_details)
    except PARSE_ERRORS:  # odd revocation data must not turn the verdict into a format failure
        revocation = RevocationCheck("unknown", _iso(moment), "none")
    # A certification and a locking approval signature both forbade later changes: breaking either is
    # a failure, not merely a suspicion.
    indication, sub = _verdict(status, certification=docmdp is not None, proven_time=proven)
    level_name, permitted, suspicious = _modifications(status)
    if is_doc_ts:
        ts_time, ts_ok, signing_time, level = status.timestamp, status.intact and status.valid and status.trusted, \
            None, None
    else:
        ts = status.timestamp_validity
        ts_time = ts.timestamp if ts else None
        ts_ok = (ts.intact and ts.valid and ts.trusted) if ts else None
        signing_time = status.signer_reported_dt
        level = _pades_level(sig, ts is not None, lt_revision, doc_ts_revs)
    chain_trusted, trust_root = _chain(status)
    return SignatureResult(
        **base, indication=indication, sub_indication=sub, intact=status.intact, valid=status.valid,
        trusted=status.trusted, signer=_signer_info(status.signing_cert), signing_time=_iso(signing_time),
        timestamp_time=_iso(ts_time), timestamp_valid=ts_ok, pades_level=level,
        coverage=status.coverage.name if status.coverage is not None else None,
        modification_level=level_name, modifications_permitted=permitted, suspicious_modification=suspicious,
        messages=messages, chain_trusted=chain_trusted, trust_root=trust_root, revocation=revocation)


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
        stream = io.BytesIO(input) if isinstance(input, bytes) else _in_memory(stack.enter_context(input_stream(input)),
                                                                                input)
        reader = _open_reader(stream)
        try:
            dss = _DssHistory(reader)
        except PARSE_ERRORS as exc:
            raise InvalidPdfError(f"unreadable revisions: {exc}") from exc
        signatures, broken = _collect(reader)
        doc_ts_revs = [s.signed_revision for s in signatures if s.sig_object_type == "/DocTimeStamp"]
        results = []
        try:
            for sig in signatures:
                results.append(await _validate_one(sig, contexts, dss, doc_ts_revs))
        finally:
            await contexts.aclose()
        results.extend(_broken_result(name, message) for name, message in broken)
        return ValidationReport(signatures=tuple(results), revisions=reader.xrefs.total_revisions)


#: Files up to this size are read whole before parsing: pyHanko's parser reads a byte at a time,
#: which costs less from memory than through a buffered file (~8% of a one-page validation).
IN_MEMORY_BYTES = 16 * 1024 * 1024


def _in_memory(stream: BinaryIO, source: PdfSource) -> BinaryIO:
    """For a file we opened from a path: its bytes in memory when small, else the file itself."""
    if not isinstance(source, (str, os.PathLike)):
        return stream  # the caller's stream: read where it stands, as before
    try:
        if os.fstat(stream.fileno()).st_size > IN_MEMORY_BYTES:
            return stream
        return io.BytesIO(stream.read())
    except OSError as exc:
        raise InvalidPdfError(f"cannot read {source}: {exc.strerror}") from exc


class _LoopHolder:
    """A thread's event loop for ``validate_pdf``, kept between calls: ``asyncio.run`` builds and
    tears down a loop (selector, self-pipe, executor shutdown) per call, ~4% of a one-page
    validation. It only ever runs ``async_validate_pdf`` to completion in its own thread; a call
    that leaves anything on it (a task, an async generator) or fails tears it down as
    ``asyncio.run`` would, and the next call starts a fresh one. When the thread ends, its
    thread-local holder goes and closes the loop."""

    __slots__ = ("loop",)

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        if not self.loop.is_closed() and not self.loop.is_running():
            self.loop.close()


_LOOPS = threading.local()


def _run(make_coro):
    """``asyncio.run(make_coro())`` on this thread's kept loop."""
    if asyncio._get_running_loop() is not None:
        raise RuntimeError("validate_pdf cannot be called from a running event loop; await async_validate_pdf")
    holder = getattr(_LOOPS, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _LOOPS.holder = _LoopHolder()
    loop, clean = holder.loop, False
    try:
        result = loop.run_until_complete(make_coro())
        clean = not asyncio.all_tasks(loop) and not getattr(loop, "_asyncgens", ())
        return result
    finally:
        if not clean:
            _LOOPS.holder = None
            _tear_down(loop)


def _tear_down(loop: asyncio.AbstractEventLoop) -> None:
    """What ``asyncio.run`` does at the end: cancel what is left, finish async generators and the
    default executor, close."""
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def validate_pdf(input: PdfSource | bytes, trust_roots: Iterable[x509.Certificate] | None = None, *,
                 trust: TrustServices | None = None,
                 other_certs: Iterable[x509.Certificate] = (), allow_fetching: bool = False,
                 revocation_mode: Literal["soft-fail", "hard-fail", "require"] = "soft-fail",
                 validation_time: datetime | None = None) -> ValidationReport:
    """Synchronous ``async_validate_pdf`` (not inside a running event loop)."""
    return _run(lambda: async_validate_pdf(input, trust_roots, trust=trust, other_certs=other_certs,
                                           allow_fetching=allow_fetching, revocation_mode=revocation_mode,
                                           validation_time=validation_time))

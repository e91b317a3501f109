"""PAdES signing: baseline B-B, B-T, B-LT and B-LTA, one-phase or two-phase, with an optional
visible appearance in Vietnamese. The first signature may certify the document; any signature,
typically the last of a chain, may lock it (``SignatureSpec.lock``); a locked document is not
signed again.

Every signature is an incremental update with an explicit ``bytes_reserved`` (pyHanko would
otherwise sign twice to measure), and file paths are streamed file to file (pyHanko's in-memory
path peaks at ~4× a big file's size)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from asn1crypto import cms, x509
from pkcs11.exceptions import PKCS11Error
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, PdfTimeStamper
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_cms import ExternalSigner
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation.dss import async_add_validation_info
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError, ValidationError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing.appearance import stamp_style
from signing.errors import EncryptedPdfError, InvalidPdfError, KeyUnavailableError, SigningError
from signing.interfaces import KeyBackend, SignatureSpec
from signing.pdf_input import PARSE_ERRORS, PdfSource, input_stream, parse_pdf

CHUNK = 1024 * 1024

# Space for the CMS blob. B-B holds the chain; B-T adds a TSA token and its chain; LT/LTA
# revocation data goes to the DSS, but the margin absorbs varying TSA responses (#515).
_RESERVED = {"B-B": 16 * 1024, "B-T": 32 * 1024, "B-LT": 48 * 1024, "B-LTA": 48 * 1024}
_LONG_TERM = ("B-LT", "B-LTA")
_DOCMDP = {"no_changes": fields.MDPPerm.NO_CHANGES, "fill_forms": fields.MDPPerm.FILL_FORMS,
           "annotate": fields.MDPPerm.ANNOTATE}


class DocumentLockedError(SigningError):
    """The document is locked by an earlier signature (a ``lock`` signature, or a certification
    allowing no changes): another signature would be a forbidden change and break that one."""

    code = "document_locked"
    """Stable error code."""

    def __init__(self, field_name: str) -> None:
        super().__init__(f"the document is locked by signature {field_name!r}: no further signature may be "
                         "added (only validation data and document timestamps)")
        self.field_name = field_name
        """The locking signature's field."""


# --- input and output -------------------------------------------------------------------------

def open_writer(stream: BinaryIO) -> IncrementalPdfFileWriter:
    """An incremental writer on ``stream``, with pyHanko's and the parser's errors translated."""
    writer = parse_pdf(stream, lambda s: IncrementalPdfFileWriter(s, strict=False))
    if writer.prev.encrypted:
        raise EncryptedPdfError("the PDF is encrypted; decrypt it before signing")
    try:
        writer.root  # noqa: B018 - resolve the catalog now, so a damaged file fails here
        writer.prev.root["/Pages"]  # noqa: B018
    except PARSE_ERRORS as exc:
        raise InvalidPdfError(f"unreadable PDF structure: {exc}") from exc
    return writer


def _organisation(cert: x509.Certificate) -> str:
    return cert.subject.native.get("organization_name", "") or ""


def _no_changes(params) -> bool:
    """A lock dictionary or transform parameters holding DocMDP /P 1 (no changes)."""
    try:
        return params is not None and int(params.get_object().get("/P", 0)) == fields.MDPPerm.NO_CHANGES.value
    except (TypeError, ValueError):
        return False


def locking_signature(pdf) -> str | None:
    """The field name of a signature that forbids every further change to ``pdf`` (a pyHanko
    reader or incremental writer), or ``None``.

    Such a signature either has a field lock dictionary with ``/P 1`` (an approval signature that
    locks, PDF 2.0) or a DocMDP/FieldMDP transform with ``/P 1`` in its signature dictionary (a
    certification allowing no changes; other producers write the lock there too)."""
    for name, value, field_ref in fields.enumerate_sig_fields(pdf, filled_status=True):
        if value is None:
            continue
        if _no_changes(field_ref.get_object().get("/Lock")):
            return str(name)
        for reference in value.get_object().get("/Reference", ()):
            if _no_changes(reference.get_object().get("/TransformParams")):
                return str(name)
    return None


def _lock_dictionary():
    """``/Lock << /Action /All /P 1 >>``: every field locked, and no changes at all (PDF 2.0)."""
    return fields.SigFieldSpec("_", field_mdp_spec=fields.FieldMDPSpec(fields.FieldMDPAction.ALL),
                               doc_mdp_update_value=fields.MDPPerm.NO_CHANGES).format_lock_dictionary()


def _check_spec(writer: IncrementalPdfFileWriter, spec: SignatureSpec) -> None:
    if spec.lock and spec.certify and spec.docmdp_permission != "no_changes":
        raise SigningError(f"a locking certification cannot allow {spec.docmdp_permission!r}: use "
                           "docmdp_permission='no_changes' with lock, or do not lock")
    try:
        locked_by = locking_signature(writer)
    except PARSE_ERRORS as exc:
        raise InvalidPdfError(f"unreadable signature fields: {exc}") from exc
    if locked_by is not None:
        raise DocumentLockedError(locked_by)


def _lock_existing_field(writer: IncrementalPdfFileWriter, name: str) -> bool:
    """Put the lock dictionary on an existing empty field ``name``; pyHanko applies a new field's
    spec only to fields it creates. ``False`` if there is no such field (it will be created)."""
    for _, _, field_ref in fields.enumerate_sig_fields(writer, filled_status=False, with_name=name):
        field_dict = field_ref.get_object()
        field_dict["/Lock"] = _lock_dictionary()
        writer.update_container(field_dict)
        return True
    return False


def _page_index(writer: IncrementalPdfFileWriter, page: int) -> int:
    count = int(writer.root["/Pages"]["/Count"])
    index = page if page >= 0 else count + page
    if not 0 <= index < count:
        raise SigningError(f"page {page} out of range (the document has {count} pages)")
    return index


# --- metadata ---------------------------------------------------------------------------------

def _field_name(writer: IncrementalPdfFileWriter, spec: SignatureSpec) -> str:
    if spec.field_name:
        return spec.field_name
    existing = {name for name, _, _ in fields.enumerate_sig_fields(writer)}
    n = len(existing) + 1
    while f"Signature{n}" in existing:
        n += 1
    return f"Signature{n}"


def _check_level(spec: SignatureSpec, timestamper: TimeStamper | None,
                 validation_context: ValidationContext | None) -> None:
    if spec.level != "B-B" and timestamper is None:
        raise SigningError(f"PAdES {spec.level} needs a timestamper (a TSA)")
    if spec.level in ("B-LT", "B-LTA") and validation_context is None:
        raise SigningError(f"PAdES {spec.level} needs a validation context to collect revocation data")


def _metadata(spec: SignatureSpec, field_name: str,
              validation_context: ValidationContext | None) -> PdfSignatureMetadata:
    long_term = spec.level in ("B-LT", "B-LTA")
    return PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm=spec.md_algorithm,
        reason=spec.reason,
        location=spec.location,
        contact_info=spec.contact,
        name=spec.name,
        certify=spec.certify,
        # A lock is "no changes": asking pyHanko for anything laxer only earns a warning from it.
        docmdp_permissions=fields.MDPPerm.NO_CHANGES if spec.lock else _DOCMDP[spec.docmdp_permission],
        subfilter=fields.SigSeedSubFilter.PADES,
        embed_validation_info=long_term,
        use_pades_lta=spec.level == "B-LTA",
        validation_context=validation_context if long_term else None,
    )


def _pdf_signer(writer: IncrementalPdfFileWriter, signer, certificate: x509.Certificate, spec: SignatureSpec,
                timestamper: TimeStamper | None, validation_context: ValidationContext | None
                ) -> tuple[PdfSigner, dict]:
    _check_spec(writer, spec)
    name = _field_name(writer, spec)
    new_field, style, params = None, None, {}
    lock = {}
    if spec.lock and not _lock_existing_field(writer, name):
        # pyHanko reads the field's /Lock when signing and writes the matching FieldMDP reference
        # (with /P 1) into the signature dictionary, so the lock is covered by this signature.
        lock = dict(field_mdp_spec=fields.FieldMDPSpec(fields.FieldMDPAction.ALL),
                    doc_mdp_update_value=fields.MDPPerm.NO_CHANGES)
    if spec.appearance is not None:
        page = _page_index(writer, spec.appearance.page)
        new_field = fields.SigFieldSpec(sig_field_name=name, on_page=page, box=spec.appearance.box, **lock)
        style = stamp_style(spec.appearance)
        params = {"org": unicodedata.normalize("NFC", _organisation(certificate))}
    elif lock:
        new_field = fields.SigFieldSpec(sig_field_name=name, **lock)
    pdf_signer = PdfSigner(_metadata(spec, name, validation_context), signer=signer,
                           timestamper=timestamper if spec.level != "B-B" else None,
                           stamp_style=style, new_field_spec=new_field)
    return pdf_signer, params


# --- one-phase signing ------------------------------------------------------------------------

@contextmanager
def _translated_errors(what: str) -> Iterator[None]:
    """pyHanko's, the parser's, the token's and the file system's errors as ours."""
    try:
        yield
    except SigningError:
        raise
    except PyHankoSigningError as exc:
        # pyHanko's SigningError is a PdfError too: catch it before the parser's errors.
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise SigningError(f"signing failed: {exc}{cause}") from exc
    except PARSE_ERRORS as exc:
        raise InvalidPdfError(f"{what}: {exc}") from exc
    except OSError as exc:
        raise SigningError(f"writing the signed PDF failed: {exc}") from exc
    except PKCS11Error as exc:
        raise KeyUnavailableError(f"the token failed: {type(exc).__name__}") from exc


async def async_sign_pdf(input: PdfSource, output: PdfSource, key: KeyBackend, spec: SignatureSpec, *,
                         timestamper: TimeStamper | None = None,
                         validation_context: ValidationContext | None = None,
                         prepare: Callable[[IncrementalPdfFileWriter], None] | None = None) -> None:
    """Sign ``input`` into ``output`` (paths or binary streams) as an incremental update.

    ``prepare`` makes changes in the signature's own revision, before it is signed, so the signature
    covers them: e.g. filling in the number and date an issuing seal must cover. A separate revision
    filled before a *locking* signature would do too, but pyHanko then counts the filled fields'
    appearance streams as touched at every later revision (its in-place appearance rule compares the
    stream's last change with the revision being checked for equality), and archive timestamps would
    break the lock.

    ``output`` may not be the same file as ``input``. Raises InvalidPdfError/EncryptedPdfError for
    unusable input, KeyUnavailableError for an unusable key, SigningError otherwise."""
    _check_level(spec, timestamper, validation_context)
    reserved = spec.bytes_reserved or _RESERVED[spec.level]
    with ExitStack() as stack:
        in_stream = stack.enter_context(input_stream(input))
        writer = open_writer(in_stream)
        if prepare is not None:
            with _translated_errors("the PDF could not be prepared for signing"):
                prepare(writer)
        pdf_signer, params = _pdf_signer(writer, key.signer(), key.certificate, spec, timestamper,
                                         validation_context)
        if isinstance(output, (str, os.PathLike)):
            out_stream = stack.enter_context(_output_file(output))
        else:
            out_stream = output
        try:
            with _translated_errors("the PDF could not be signed"):
                await pdf_signer.async_sign_pdf(writer, bytes_reserved=reserved, appearance_text_params=params,
                                                output=out_stream, chunk_size=CHUNK)
        finally:
            if validation_context is not None:
                # Release the HTTP session the context opened to fetch revocation data (the context
                # stays usable: the next operation opens a new one).
                await validation_context.aclose()


def sign_pdf(input: PdfSource, output: PdfSource, key: KeyBackend, spec: SignatureSpec, *,
             timestamper: TimeStamper | None = None, validation_context: ValidationContext | None = None,
             prepare: Callable[[IncrementalPdfFileWriter], None] | None = None) -> None:
    """Synchronous ``async_sign_pdf``, for workers and scripts (not inside a running event loop)."""
    asyncio.run(async_sign_pdf(input, output, key, spec, timestamper=timestamper,
                               validation_context=validation_context, prepare=prepare))


@contextmanager
def _output_file(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Write next to the target and rename at the end, so a failed signature leaves no half file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".signing-", dir=target.parent)
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- two-phase signing ------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedSignature:
    """Phase one of a two-phase signature: the document with a reserved hole, and the digest to
    sign. Plain bytes and ints only, so it can be stored and finished in another process."""

    to_be_signed_digest: bytes
    """The digest of the CMS signed attributes: what the key must sign."""

    digest_algorithm: str
    """The algorithm of ``to_be_signed_digest`` and of the document digest."""

    signed_attributes: bytes
    """DER of the CMS signed attributes (they hold the document digest and the certificate)."""

    pdf: bytes
    """The prepared PDF with its signature hole (file offsets below refer to it)."""

    document_digest: bytes
    """Digest of the byte ranges around the hole."""

    reserved_start: int
    """Offset of the hole's first byte."""

    reserved_end: int
    """Offset just past the hole."""

    certificate: bytes
    """DER of the signer's certificate."""

    chain: tuple[bytes, ...]
    """DER of the issuing certificates."""

    level: str
    """The PAdES level requested. B-LT and B-LTA are prepared as B-T; phase two embeds the
    revocation data (and the document timestamp) after the signature."""

    field_name: str = ""
    """The signature field, so phase two can find the signature to extend to B-LT/B-LTA."""


async def async_prepare_signature(input: PdfSource, certificate: x509.Certificate, chain: list[x509.Certificate],
                                  spec: SignatureSpec, *, timestamper: TimeStamper | None = None
                                  ) -> PreparedSignature:
    """Phase one: reserve the signature, digest the document and build the signed attributes.

    Any level: B-LT/B-LTA need nothing more here (the validation context is for phase two)."""
    if spec.level != "B-B" and timestamper is None:
        raise SigningError(f"PAdES {spec.level} needs a timestamper (a TSA)")
    registry = SimpleCertificateStore.from_certs([certificate, *chain])
    placeholder = ExternalSigner(certificate, registry, signature_value=512)
    # The CMS of an LT/LTA signature is a B-T one; what makes it LT/LTA comes after it.
    phase_one_spec = dataclasses.replace(spec, level="B-T") if spec.level in _LONG_TERM else spec
    with input_stream(input) as in_stream:
        writer = open_writer(in_stream)
        pdf_signer, params = _pdf_signer(writer, placeholder, certificate, phase_one_spec, timestamper, None)
        field_name = pdf_signer.signature_meta.field_name
        buffer = io.BytesIO()
        with _translated_errors("the PDF could not be prepared"):
            prep, _tbs, out = await pdf_signer.async_digest_doc_for_signing(
                writer, bytes_reserved=spec.bytes_reserved or _RESERVED[spec.level],
                appearance_text_params=params, output=buffer, chunk_size=CHUNK)
    signed_attrs = await placeholder.signed_attrs(prep.document_digest, spec.md_algorithm, use_pades=True)
    der = signed_attrs.dump()
    return PreparedSignature(
        to_be_signed_digest=hashlib.new(spec.md_algorithm, der).digest(),
        digest_algorithm=spec.md_algorithm, signed_attributes=der, pdf=out.getvalue(),
        document_digest=prep.document_digest, reserved_start=prep.reserved_region_start,
        reserved_end=prep.reserved_region_end, certificate=certificate.dump(),
        chain=tuple(c.dump() for c in chain), level=spec.level, field_name=field_name)


async def async_finish_signature(prepared: PreparedSignature, signature_value: bytes, output: PdfSource, *,
                                 timestamper: TimeStamper | None = None,
                                 validation_context: ValidationContext | None = None) -> None:
    """Phase two: wrap the raw ``signature_value`` in CMS (adding the signature timestamp from
    B-T on), embed it, and for B-LT/B-LTA add the revocation data (DSS) and, for B-LTA, a
    document timestamp, each as an incremental update. ``validation_context`` must be able to
    fetch revocation data for B-LT/B-LTA; it is closed (``aclose``) at the end."""
    if prepared.level != "B-B" and timestamper is None:
        raise SigningError(f"a {prepared.level} signature needs the timestamper in phase two")
    if prepared.level in _LONG_TERM and validation_context is None:
        raise SigningError(f"a {prepared.level} signature needs a validation context in phase two")
    certificate = x509.Certificate.load(prepared.certificate)
    registry = SimpleCertificateStore.from_certs([certificate, *(x509.Certificate.load(c) for c in prepared.chain)])
    signer = ExternalSigner(certificate, registry, signature_value=signature_value)
    signed_attrs = cms.CMSAttributes.load(prepared.signed_attributes)
    buffer = io.BytesIO(prepared.pdf)
    try:
        with _translated_errors("embedding the signature failed"):
            sig_cms = await signer.async_sign_prescribed_attributes(
                prepared.digest_algorithm, signed_attrs=signed_attrs,
                timestamper=timestamper if prepared.level != "B-B" else None)
            digest = PreparedByteRangeDigest(prepared.document_digest, prepared.reserved_start,
                                             prepared.reserved_end)
            await PdfTBSDocument.async_finish_signing(buffer, prepared_digest=digest, signature_cms=sig_cms)
            if prepared.level in _LONG_TERM:
                buffer = await _extend_to_long_term(buffer, prepared, timestamper, validation_context)
    finally:
        if validation_context is not None:
            await validation_context.aclose()
    buffer.seek(0)
    if isinstance(output, (str, os.PathLike)):
        with _output_file(output) as fh:
            shutil.copyfileobj(buffer, fh, CHUNK)
    else:
        shutil.copyfileobj(buffer, output, CHUNK)


async def _extend_to_long_term(signed: io.BytesIO, prepared: PreparedSignature, timestamper: TimeStamper,
                               validation_context: ValidationContext) -> io.BytesIO:
    """B-T → B-LT (DSS with the chain's and the TSA's revocation data) → B-LTA (document timestamp)."""
    reader = PdfFileReader(signed, strict=False)
    embedded = next((s for s in reader.embedded_regular_signatures if s.field_name == prepared.field_name), None)
    if embedded is None:
        raise SigningError(f"the signature field {prepared.field_name!r} vanished from the prepared PDF")
    with_dss = io.BytesIO()
    try:
        await async_add_validation_info(embedded, validation_context, output=with_dss, chunk_size=CHUNK)
    except (PathBuildingError, PathValidationError, ValidationError) as exc:
        raise SigningError(f"cannot collect revocation data for the signer or the TSA: {exc}") from exc
    if prepared.level != "B-LTA":
        return with_dss
    stamped = io.BytesIO()
    await PdfTimeStamper(timestamper).async_timestamp_pdf(
        IncrementalPdfFileWriter(with_dss, strict=False), prepared.digest_algorithm,
        validation_context=validation_context, bytes_reserved=_RESERVED["B-T"], output=stamped, chunk_size=CHUNK)
    return stamped


def prepare_signature(input: PdfSource, certificate: x509.Certificate, chain: list[x509.Certificate],
                      spec: SignatureSpec, *, timestamper: TimeStamper | None = None) -> PreparedSignature:
    """Synchronous ``async_prepare_signature``."""
    return asyncio.run(async_prepare_signature(input, certificate, chain, spec, timestamper=timestamper))


def finish_signature(prepared: PreparedSignature, signature_value: bytes, output: PdfSource, *,
                     timestamper: TimeStamper | None = None,
                     validation_context: ValidationContext | None = None) -> None:
    """Synchronous ``async_finish_signature``."""
    asyncio.run(async_finish_signature(prepared, signature_value, output, timestamper=timestamper,
                                       validation_context=validation_context))

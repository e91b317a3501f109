"""Turning docsvc records into edXML: an issued document into a ``DocumentPackage`` addressed to one
external recipient, a status into a ``StatusMessage``, and either into signed bytes: in memory for a
small package (files totalling at most ``IN_MEMORY_MAX_BYTES``: no temporary directory, no file
written), through temporary files otherwise (a 200 MB attachment is streamed with bounded memory).
Both ways give the same bytes.

Builds are deterministic (the trace timestamp is the exchange's creation time, ContentIds derive
from the exchange and file ids, RSA PKCS#1 v1.5 signatures are deterministic), so a retry after a
crash rebuilds exactly the bytes of the first attempt and the axis recognises it by its idempotency
key instead of refusing a conflict."""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import ObjectStore
from docsvc.documents.models import Document, DocumentFile
from docsvc.documents.types import DOCUMENT_TYPES
from docsvc.organisations.models import Organisation
from inter_axis.build import add_organization, write_package
from inter_axis.errors import InvalidPackageError
from inter_axis.model import (
    AttachmentSource,
    Business,
    BusinessDocType,
    DocumentCode,
    DocumentPackage,
    DocumentType,
    MessageHeader,
    Organization,
    OtherInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusMessage,
    TraceHeader,
)
from inter_axis.names import q
from inter_axis.serialize import serialize_tree
from inter_axis.status import build_status_tree
from inter_axis.validate import is_organ_id, validate_status
from inter_axis.xmldsig import SigningKey, sign_package_with

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
#: A document whose files total at most this many bytes is built, signed and hashed in memory (its
#: package is ~1.4x that, held a few times over while being signed); a larger one goes through
#: temporary files, so its memory stays bounded whatever its size.
IN_MEMORY_MAX_BYTES = 4 * 1024**2
_PRIORITY = {"thuong": 0, "khan": 1, "thuong_khan": 2, "hoa_toc": 3}
_SEPARATOR = re.compile(r"\s*(?:[-–:|]\s*|\s)")


def axis_recipients(entries: list[str]) -> list[tuple[str, str]]:
    """(OrganId, name) of the ``recipients`` entries that name an agency: ``000.00.00.G22`` or
    ``000.00.00.G22 - Văn phòng Chính phủ``. Entries like "Như trên" or "Lưu: VT" are not."""
    found: dict[str, str] = {}
    for entry in entries:
        head, _, rest = entry.strip().partition(" ")
        if is_organ_id(head) and head not in found:
            found[head] = _SEPARATOR.sub("", rest, count=1).strip() if rest else ""
    return list(found.items())


def organization(org: Organisation) -> Organization:
    return Organization(organ_id=org.organ_id, organ_name=org.name, organ_add=org.address or "")


def local_naive(value: datetime) -> datetime:
    """The format's timestamps carry no zone: Vietnam local time, to the second."""
    return value.astimezone(VIETNAM).replace(tzinfo=None, microsecond=0)


def _document_type(doc_type: str) -> DocumentType:
    # The numeric Type is the ND30 Art. 7 ordinal (Công văn = 18, as the .NET SDK sample has it).
    ordinal = list(DOCUMENT_TYPES).index(doc_type) + 1 if doc_type in DOCUMENT_TYPES else 0
    return DocumentType(ordinal, DOCUMENT_TYPES.get(doc_type, (doc_type,))[0], 0)


def edxml_document_id(doc: Document, org: Organisation) -> str:
    return f"{org.organ_id},{doc.issued_date:%Y/%m/%d},{doc.number}/{doc.symbol}"


def document_package(doc: Document, org: Organisation, recipient: tuple[str, str], created_at: datetime,
                     files: list[tuple[DocumentFile, Path | bytes]]) -> DocumentPackage:
    """The package of an issued document for one recipient; ``files`` are (row, local copy) pairs, the
    copy a file (:func:`materialised`) or the content itself (:func:`read_files`)."""
    header = MessageHeader(
        from_org=organization(org),
        to=(Organization(organ_id=recipient[0], organ_name=recipient[1] or recipient[0]),),
        code=DocumentCode(str(doc.number), doc.symbol),
        promulgation_place=doc.place or org.address or org.name,
        promulgation_date=doc.issued_date,
        document_type=_document_type(doc.doc_type),
        subject=doc.subject[:500],
        content=doc.subject[:500],
        signer=SignerInfo(doc.signer_competence or "", doc.signer_position or "", doc.signer_name or ""),
        due_date=doc.due_date,
        other_info=OtherInfo(priority=_PRIORITY.get(doc.priority, 0),
                             sphere_of_promulgation="Liên thông văn bản quốc gia"),
        to_places=tuple(entry[:150] for entry in doc.recipients),
        document_id=edxml_document_id(doc, org),
    )
    attachments = tuple(
        AttachmentSource(content_id=f"docsvc-{doc.id}-{row.kind}-{row.seq}", name=row.filename,
                         content_type=row.content_type, description=row.note or "",
                         source=io.BytesIO(local) if isinstance(local, bytes) else local)
        for row, local in files)
    return DocumentPackage(header=header, traces=(TraceHeader(org.organ_id, local_naive(created_at)),),
                           business=Business(BusinessDocType.NEW), attachments=attachments)


def status_message(org: Organisation, original_sender: str, edxml_id: str, code: str, description: str,
                   created_at: datetime, staff: str | None) -> StatusMessage:
    """A status about document ``edxml_id`` of ``original_sender`` (§1.9: ResponseFor/OrganId is the
    original sender, so for a recall 13 it is ``org`` itself)."""
    number_symbol = edxml_id.split(",", 2)[2] if edxml_id.count(",") >= 2 else edxml_id
    date_part = edxml_id.split(",")[1] if edxml_id.count(",") >= 2 else ""
    promulgation = datetime.strptime(date_part, "%Y/%m/%d").date() if date_part else None
    return StatusMessage(
        from_org=organization(org),
        response_for=ResponseFor(original_sender, number_symbol, promulgation, edxml_id),
        status_code=code, description=description, timestamp=local_naive(created_at),
        staff=StaffInfo(department="Văn thư", staff=staff or "") if staff else None,
        traces=(TraceHeader(org.organ_id, local_naive(created_at)),),
    )


def write_status_to(status: StatusMessage, recipient: str):
    """Write ``status`` addressed to ``recipient`` with a ``To`` after ``From``, as a document's
    header has it. §1.9 names no To, and ResponseFor/OrganId (the original sender) cannot route a
    status the original sender sends itself (a recall 13): the hub routes by this To, and a receiver
    that does not know the element reads past it. (``inter_axis`` has no To on a status yet, so it
    is added to the built tree here, before signing.)"""

    def write(out) -> int:
        problems = validate_status(status)
        if not is_organ_id(recipient):
            problems.append(f"To: OrganId {recipient!r} is not 000.00.00.H41 or H41.12 shaped")
        if problems:
            raise InvalidPackageError("; ".join(problems))
        root = build_status_tree(status)
        message = root.find(f"{q('edXMLEnvelope')}/{q('edXMLHeader')}/{q('MessageHeader')}")
        holder = etree.Element("holder")
        add_organization(holder, "To", Organization(organ_id=recipient))
        message.find(q("From")).addnext(holder[0])
        etree.indent(root, "  ")
        data = serialize_tree(root)
        out.write(data)
        return len(data)

    return write


def sendable_files(session: Session, doc: Document) -> list[DocumentFile]:
    """What goes into the package: the latest version (the issued, sealed PDF) and every attachment
    and appendix, in order."""
    return sendable_files_of(session, [doc])[doc.id]


def sendable_files_of(session: Session, documents: list[Document]) -> dict[int, list[DocumentFile]]:
    """:func:`sendable_files` of several documents, read in one query."""
    by_document: dict[int, list[DocumentFile]] = {doc.id: [] for doc in documents}
    if by_document:
        for row in session.scalars(select(DocumentFile).where(DocumentFile.document_id.in_(list(by_document)))
                                   .order_by(DocumentFile.document_id, DocumentFile.kind, DocumentFile.seq)):
            by_document[row.document_id].append(row)
    result = {}
    for document_id, rows in by_document.items():
        versions = [r for r in rows if r.kind == "version"]
        result[document_id] = versions[-1:] + [r for r in rows if r.kind != "version"]
    return result


def fits_in_memory(rows: list[DocumentFile], limit: int = IN_MEMORY_MAX_BYTES) -> bool:
    return sum(row.size or 0 for row in rows) <= limit


@contextmanager
def materialised(store: ObjectStore, rows: list[DocumentFile]) -> Iterator[list[tuple[DocumentFile, Path]]]:
    """Local copies of stored files (integrity-checked while read), removed afterwards."""
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="docsvc-axis-")))
        copies = []
        for row in rows:
            path = directory / f"{row.id}"
            with path.open("wb") as out:
                for chunk in store.get(row.object_key, verify=True):
                    out.write(chunk)
            copies.append((row, path))
        yield copies


def read_files(store: ObjectStore, rows: list[DocumentFile]) -> list[tuple[DocumentFile, bytes]]:
    """The stored files' contents (integrity-checked while read), for a package built in memory."""
    return [(row, b"".join(store.get(row.object_key, verify=True))) for row in rows]


@dataclass(frozen=True)
class SignedPackage:
    """The final bytes of a package and their SHA-256: held in memory (``data``) or in a temporary
    file (``path``, removed when the context that made it ends)."""

    sha256: str
    size: int
    data: bytes | None = None
    path: Path | None = None

    def source(self) -> BinaryIO | Path:
        """What a transport sends: a fresh stream over the bytes, or the file."""
        return io.BytesIO(self.data) if self.data is not None else self.path


Writer = Callable[[BinaryIO], object]


def signed_bytes(write: Writer, seal: SigningKey | None, max_bytes: int) -> SignedPackage:
    """Write a package with ``write(out)`` and sign it with ``seal`` (when there is one), all in
    memory; the same bytes as :func:`signed_file`."""
    raw = io.BytesIO()
    write(raw)
    data = raw.getvalue()
    if seal is not None:
        out = io.BytesIO()
        sign_package_with(data, out, seal, max_bytes=max_bytes)
        data = out.getvalue()
    return SignedPackage(hashlib.sha256(data).hexdigest(), len(data), data=data)


@contextmanager
def signed_on_disk(write: Writer, seal: SigningKey | None, max_bytes: int) -> Iterator[SignedPackage]:
    """:func:`signed_bytes` through temporary files: memory stays bounded whatever the package's size."""
    with tempfile.TemporaryDirectory(prefix="docsvc-edxml-") as directory:
        raw, final = Path(directory) / "raw.edxml", Path(directory) / "signed.edxml"
        with raw.open("wb") as out:
            write(out)
        if seal is None:
            final = raw
        else:
            with final.open("wb") as out:
                sign_package_with(raw, out, seal, max_bytes=max_bytes, spool_dir=directory)
        yield SignedPackage(_sha256(final), final.stat().st_size, path=final)


@contextmanager
def signed_file(write: Writer, seal: SigningKey | None, max_bytes: int) -> Iterator[tuple[Path, str]]:
    """Write a package with ``write(out)``, sign it with ``seal`` when there is one; yields the path of
    the final bytes and their SHA-256. Temporary files are removed afterwards."""
    with signed_on_disk(write, seal, max_bytes) as signed:
        yield signed.path, signed.sha256


@contextmanager
def built_document(store: ObjectStore, package_args: tuple, rows: list[DocumentFile], seal: SigningKey | None,
                   max_bytes: int, in_memory_max: int = IN_MEMORY_MAX_BYTES) -> Iterator[SignedPackage]:
    """The signed package of ``document_package(*package_args, files)``: in memory when the files
    total at most ``in_memory_max`` bytes, through temporary files otherwise (same bytes)."""
    if fits_in_memory(rows, in_memory_max):
        yield signed_bytes(write_document(document_package(*package_args, read_files(store, rows))), seal, max_bytes)
        return
    with materialised(store, rows) as local, \
            signed_on_disk(write_document(document_package(*package_args, local)), seal, max_bytes) as signed:
        yield signed


def write_document(package: DocumentPackage) -> Writer:
    return lambda out: write_package(package, out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

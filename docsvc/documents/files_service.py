"""Immutable files of a document: versions of the main PDF, attachments, appendices.

Order of writes: the bytes go to the object store first; the row that points at them is
inserted afterwards in one transaction. A crash in between leaves an orphan object (found by
the reconcile job), never a row pointing at nothing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import StrEnum

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from archive import ObjectStore
from docsvc import downloads, errors
from docsvc.audit import service as audit
from docsvc.documents import service as documents
from docsvc.documents.models import DocumentFile
from docsvc.documents.types import Status
from docsvc.jobs import outbox
from docsvc.principal import Actor
from docsvc.uploads import Upload


class FileKind(StrEnum):
    VERSION = "version"
    ATTACHMENT = "attachment"
    APPENDIX = "appendix"


def authorize_upload(session: Session, actor: Actor, document_id: int) -> None:
    doc = documents.get_owned(session, actor, document_id, *documents.WRITERS)
    if doc.status == Status.REVOKED:
        raise errors.InvalidStateError("a revoked document takes no new files")
    session.rollback()  # release SQLite's write lock while the body streams in


def record(session: Session, actor: Actor, document_id: int, kind: FileKind, upload: Upload,
           note: str | None = None) -> DocumentFile:
    row = add_in_transaction(session, actor, document_id, kind, upload, note)
    session.commit()
    return row


def add_in_transaction(session: Session, actor: Actor, document_id: int, kind: FileKind, upload: Upload,
                       note: str | None = None, *, retry: bool = True) -> DocumentFile:
    """Insert the file row, its audit event and its verification job without committing, so a
    caller (signing) can commit it together with its own rows. A seq race rolls back and retries;
    a caller with earlier uncommitted changes passes ``retry=False`` and gets ``conflict`` instead."""
    doc = documents.get_owned(session, actor, document_id, *documents.WRITERS)
    for _attempt in range(3 if retry else 1):  # two uploads racing for the same seq: the loser retries
        seq = (session.scalar(select(func.max(DocumentFile.seq)).where(
            DocumentFile.document_id == doc.id, DocumentFile.kind == kind)) or 0) + 1
        row = DocumentFile(document_id=doc.id, kind=kind, seq=seq, filename=upload.filename,
                           content_type=upload.content_type, size=upload.stored.size,
                           sha256=upload.stored.sha256, object_key=upload.stored.key,
                           note=note, created_by_id=actor.id)
        session.add(row)
        try:
            session.flush()
            break
        except IntegrityError:
            session.rollback()
            doc = documents.get_owned(session, actor, document_id, *documents.WRITERS)
    else:
        raise errors.ConflictError("too many concurrent uploads to this document; try again")
    audit.record(session, actor, f"document.{kind}_added", object_type="document", object_id=doc.id,
                 file_id=row.id, seq=seq, sha256=row.sha256, size=row.size)
    outbox.enqueue(session, "docsvc.verify_file", row.id)
    return row


def add_to_new_documents(session: Session, actor: Actor,
                         files: Sequence[tuple[int, FileKind, Upload, str | None]]) -> list[audit.Entry]:
    """``add_in_transaction`` for many ``(document id, kind, upload, note)`` at once, with one INSERT
    (and one for their verification jobs), for documents ``actor`` created in this very transaction:
    they have no other files, so each kind is numbered 1, 2, … in the order given, and no concurrent
    upload can race for a number. Returns the ``document.<kind>_added`` audit events in the order of
    ``files``, for the caller to append (``audit.record_many``) where they belong among its own."""
    if not actor.has_any(*documents.WRITERS):
        raise errors.PermissionDeniedError("your role does not allow this", needs=[r.value for r in documents.WRITERS])
    if not files:
        return []
    seqs: dict[tuple[int, FileKind], int] = {}
    rows = []
    for document_id, kind, upload, note in files:
        seq = seqs[document_id, kind] = seqs.get((document_id, kind), 0) + 1
        rows.append({"document_id": document_id, "kind": kind, "seq": seq, "filename": upload.filename,
                     "content_type": upload.content_type, "size": upload.stored.size, "sha256": upload.stored.sha256,
                     "object_key": upload.stored.key, "note": note, "created_by_id": actor.id})
    # RETURNING the row's unique key too: a multi-row INSERT's rows need not come back in order.
    ids = {(document_id, kind, seq): id_ for id_, document_id, kind, seq in session.execute(
        insert(DocumentFile.__table__).returning(DocumentFile.id, DocumentFile.document_id, DocumentFile.kind,
                                                 DocumentFile.seq), rows)}
    events = []
    for row in rows:
        file_id = ids[row["document_id"], row["kind"], row["seq"]]
        events.append(audit.entry(actor, f"document.{row['kind']}_added", object_type="document",
                                  object_id=row["document_id"], file_id=file_id, seq=row["seq"], sha256=row["sha256"],
                                  size=row["size"]))
    outbox.enqueue_many(session, [("docsvc.verify_file", [event.detail["file_id"]]) for event in events])
    return events


def list_files(session: Session, actor: Actor, document_id: int) -> list[DocumentFile]:
    doc = documents.get_readable(session, actor, document_id)
    return list(session.scalars(select(DocumentFile).where(DocumentFile.document_id == doc.id)
                                .order_by(DocumentFile.kind, DocumentFile.seq)))


def open_for_read(session: Session, store: ObjectStore, actor: Actor, document_id: int,
                  kind: FileKind, seq: int) -> tuple[DocumentFile, Iterator[bytes]]:
    """Check access and integrity, record the read, and return a stream of the bytes.

    The SHA-256 recorded at upload is checked against the store before anything is sent,
    and again while streaming."""
    doc = documents.get_readable(session, actor, document_id)
    row = session.scalar(select(DocumentFile).where(DocumentFile.document_id == doc.id,
                                                    DocumentFile.kind == kind, DocumentFile.seq == seq))
    if row is None:
        raise errors.NotFoundError(f"{kind} {seq} not found")
    downloads.require_intact(session, store, actor, row.object_key, row.sha256,
                             object_type="document", object_id=doc.id, file_id=row.id)
    audit.record(session, actor, "file.read", object_type="document", object_id=doc.id, file_id=row.id,
                 kind=kind, seq=seq)
    session.commit()
    return row, store.get(row.object_key, verify=True)


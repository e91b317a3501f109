"""Axis intake registering a batch of prepared packages in one transaction, on SQLite and PostgreSQL:
duplicates in the batch are rejected with their codes while the others are registered exactly once
with consecutive arrival numbers, every row and job a one-by-one registration wrote is written, the
audit chain still verifies; and the pieces the batch is made of (numbers taken together, audit events
appended together, jobs queued together, the filesystem store's cheaper sidecars)."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from archive import FilesystemObjectStore
from docsvc.audit import service as audit
from docsvc.audit.models import AuditEvent
from docsvc.axis import intake
from docsvc.axis.models import AxisExchange, AxisInboxEntry, AxisStatusMessage
from docsvc.documents import service as documents
from docsvc.documents.files_service import FileKind
from docsvc.documents.models import Document, DocumentFile
from docsvc.jobs import outbox
from docsvc.jobs.models import OutboxMessage
from docsvc.organisations import service as orgs
from docsvc.organisations.models import Organisation
from docsvc.organisations.schemas import OrganisationCreate
from docsvc.principal import SERVICE_ACTOR
from docsvc.uploads import Upload
from inter_axis.model import DocumentCode, DocumentType, MessageHeader, Organization, SignerInfo
from inter_axis.transport import ReceivedRef

GOVERNMENT = "000.00.00.G22"
DEPARTMENT = "000.00.12.H41"
JUSTICE = "000.00.13.H41"


@pytest.fixture
def org(runtime) -> Organisation:
    with runtime.sessions() as session:
        org = orgs.create(session, SERVICE_ACTOR, OrganisationCreate(organ_id=GOVERNMENT, name="Văn phòng Chính phủ",
                                                                     short_name="VPCP", level="other"))
        session.expunge(org)
    return org


def _package(rt, number: str, *, sender: str = DEPARTMENT, document_id: str = "", notation: str = "KH-STTTT",
             verified: bool = True, files: int = 1) -> intake._Incoming:
    """A prepared document package (what ``_fetch_and_prepare`` hands to registration), its PDF and
    ``files - 1`` attachments stored."""
    header = MessageHeader(
        from_org=Organization(sender, "Sở Thông tin và Truyền thông"), to=(Organization(GOVERNMENT),),
        code=DocumentCode(number, notation), promulgation_place="Nghệ An", promulgation_date=date(2026, 3, 5),
        document_type=DocumentType(1, "Kế hoạch"), subject=f"Kế hoạch số {number}",
        signer=SignerInfo("KT.", "Phó Giám đốc", "Nguyễn Văn An"), to_places=(GOVERNMENT,), document_id=document_id)
    stored = []
    for n in range(files):
        kind = FileKind.VERSION if n == 0 else FileKind.ATTACHMENT
        obj = rt.store.put(iter([f"%PDF-1.7 {number} {n} {uuid.uuid4()}".encode()]), content_type="application/pdf")
        stored.append((kind, Upload(obj, f"file-{n}.pdf", "application/pdf"), "phụ lục" if n else ""))
    ref = ReceivedRef(message_id=uuid.uuid4().hex, from_organ_id=sender, document_id=header.effective_document_id,
                      kind="document", status_code=None, received_at=datetime.now(UTC), size=1000, sha256="ab" * 32)
    verification = intake.Verification("valid" if verified else "digest_mismatch", "TOTAL-PASSED")
    return intake._Incoming(ref, header, ("a warning",) if not verified else (), verification, stored)


def _registered(rt) -> list[Document]:
    with rt.sessions() as session:
        rows = list(session.scalars(select(Document).where(Document.direction == "incoming").order_by(Document.id)))
        session.expunge_all()
        return rows


def _count(rt, model, *where) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_a_batch_registers_every_row_a_registration_one_by_one_writes(runtime, org):
    ready = [_package(runtime, str(n), files=2 if n == 2 else 1, verified=n != 3) for n in range(1, 5)]
    assert intake._register_all(runtime, org, ready) == {p.ref.message_id: "registered" for p in ready}
    docs = _registered(runtime)
    assert [d.number for d in docs] == [1, 2, 3, 4]
    assert [d.arrival_number for d in docs] == [1, 2, 3, 4]
    assert {(d.status, d.issuer, d.symbol, d.sender_name, d.arrival_year) for d in docs} == {
        ("registered", DEPARTMENT, "KH-STTTT", "Sở Thông tin và Truyền thông", documents.today_in_vietnam().year)}
    assert all(d.registered_at is not None and d.signer_competence == "KT." for d in docs)
    with runtime.sessions() as session:
        files = list(session.scalars(select(DocumentFile).order_by(DocumentFile.id)))
        assert [(f.document_id, f.kind, f.seq) for f in files] == [
            (docs[0].id, "version", 1), (docs[1].id, "version", 1), (docs[1].id, "attachment", 1),
            (docs[2].id, "version", 1), (docs[3].id, "version", 1)]
        assert files[2].note == "phụ lục" and files[0].note is None
        exchanges = {e.document_id: e for e in session.scalars(select(AxisExchange))}
        assert [exchanges[d.id].message_id for d in docs] == [p.ref.message_id for p in ready]
        assert [exchanges[d.id].verified for d in docs] == [True, True, False, True]
        assert {(e.state, e.last_status, e.direction, e.counterpart) for e in exchanges.values()} == {
            ("registered", "03", "incoming", DEPARTMENT)}
        statuses = list(session.scalars(select(AxisStatusMessage).order_by(AxisStatusMessage.id)))
        assert [(s.exchange_id, s.code) for s in statuses] == [
            (exchanges[d.id].id, code) for d in docs for code in ("01", "03")]
        assert statuses[-1].description == "Đã tiếp nhận, số đến 4"
        assert len({s.idempotency_key for s in statuses}) == 8 and {s.state for s in statuses} == {"pending"}
        jobs = sorted((m.task, m.args[0]) for m in session.scalars(select(OutboxMessage)))
        assert jobs == sorted([("docsvc.verify_file", f.id) for f in files]
                              + [(intake.SEND_STATUSES, e.id) for e in exchanges.values()])
        entries = {e.message_id: e for e in session.scalars(select(AxisInboxEntry))}
        assert [(entries[p.ref.message_id].document_id, entries[p.ref.message_id].exchange_id) for p in ready] == [
            (d.id, exchanges[d.id].id) for d in docs]
        assert entries[ready[2].ref.message_id].warnings == ["a warning"]
        events = [(e.action, e.object_id) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
        assert audit.verify_chain(session).ok
    # Each document's events in the order registering it alone appended them.
    expected = []
    for n, doc in enumerate(docs):
        expected += [("document.created", str(doc.id)), ("document.registered", str(doc.id)),
                     ("document.version_added", str(doc.id))]
        expected += [("document.attachment_added", str(doc.id))] if n == 1 else []
        expected += [("axis.document_received", str(doc.id))]
        expected += [("axis.document_unverified", str(doc.id))] if n == 2 else []
    assert events[-len(expected):] == expected


def test_duplicates_in_a_batch_are_rejected_and_the_others_registered_once_with_consecutive_numbers(runtime, org):
    earlier = _package(runtime, "7", document_id=f"{DEPARTMENT},2026/03/05,7/KH-STTTT")
    assert intake._register_all(runtime, org, [earlier]) == {earlier.ref.message_id: "registered"}
    (kept,) = _registered(runtime)
    batch = [
        _package(runtime, "8"),
        _package(runtime, "70", document_id=earlier.header.document_id),  # same sender and DocumentId as before
        _package(runtime, "9"),
        _package(runtime, "9", document_id=f"{DEPARTMENT},2026/03/06,9/KH-STTTT"),  # number/symbol/year of the one before
        _package(runtime, "10"),
        _package(runtime, "11", document_id=f"{DEPARTMENT},2026/03/05,10/KH-STTTT"),  # DocumentId of the one before
        _package(runtime, "9", sender=JUSTICE),  # another issuer: not a duplicate
    ]
    outcomes = intake._register_all(runtime, org, batch)
    assert [outcomes[p.ref.message_id] for p in batch] == [
        "registered", "rejected", "registered", "rejected", "registered", "rejected", "registered"]
    docs = _registered(runtime)
    assert [(d.issuer, d.number) for d in docs[1:]] == [(DEPARTMENT, 8), (DEPARTMENT, 9), (DEPARTMENT, 10),
                                                        (JUSTICE, 9)]
    assert [d.arrival_number for d in docs] == [1, 2, 3, 4, 5]
    with runtime.sessions() as session:
        entries = {e.message_id: e for e in session.scalars(select(AxisInboxEntry))}
        assert [entries[p.ref.message_id].error_code for p in batch] == [
            None, "duplicate_document", None, "duplicate_registration", None, "duplicate_document", None]
        assert all(entries[p.ref.message_id].document_id is None for p in batch[1::2][:3])
        rejected = [e.detail for e in session.scalars(select(AuditEvent).where(
            AuditEvent.action == "axis.package_rejected").order_by(AuditEvent.seq))]
        assert [(d["error_code"], d.get("existing_document_id")) for d in rejected] == [
            ("duplicate_document", kept.id), ("duplicate_registration", None), ("duplicate_document", docs[3].id)]
        assert session.scalar(select(func.count()).select_from(AxisExchange)) == 5
        assert session.scalar(select(func.count()).select_from(DocumentFile)) == 5
        assert audit.verify_chain(session).ok
    # Taken again (a crash before the acks), each package only has its outcome read back.
    assert intake._known_outcomes(runtime, org, [p.ref.message_id for p in batch]) == {
        p.ref.message_id: outcomes[p.ref.message_id] for p in batch}


def test_a_batch_of_duplicates_only_writes_nothing_but_the_rejections(runtime, org):
    first = _package(runtime, "5")
    intake._register_all(runtime, org, [first])
    again = [_package(runtime, "5", document_id=f"{DEPARTMENT},2026/03/07,5/KH-STTTT"),
             _package(runtime, "6", document_id=first.header.effective_document_id)]
    assert set(intake._register_all(runtime, org, again).values()) == {"rejected"}
    assert len(_registered(runtime)) == 1
    assert _count(runtime, AxisStatusMessage) == 2 and _count(runtime, OutboxMessage) == 2
    # The register's counter gave nothing away: the next one is number 2.
    nxt = _package(runtime, "12")
    intake._register_all(runtime, org, [nxt, _package(runtime, "13")])
    assert [d.arrival_number for d in _registered(runtime)] == [1, 2, 3]


def test_a_package_another_poller_recorded_first_sends_the_batch_one_by_one(runtime, org):
    """The batch hits the inbox's unique key, is rolled back whole and registered one by one: the
    package recorded meanwhile keeps its outcome, the others are registered once, numbered in order."""
    ready = [_package(runtime, str(n)) for n in range(1, 4)]
    with runtime.sessions() as session:  # another poller took the middle one while this one prepared it
        session.add(intake._inbox_entry(org, ready[1].ref, "rejected", error_code="sender_mismatch"))
        session.commit()
    outcomes = intake._register_all(runtime, org, ready)
    assert [outcomes[p.ref.message_id] for p in ready] == ["registered", "rejected", "registered"]
    assert [(d.number, d.arrival_number) for d in _registered(runtime)] == [(1, 1), (3, 2)]
    assert _count(runtime, AxisInboxEntry) == 3 and _count(runtime, AxisExchange) == 2
    with runtime.sessions() as session:
        assert audit.verify_chain(session).ok


@pytest.mark.parametrize("dialect", ["postgresql"])
def test_a_package_the_database_cannot_hold_is_rejected_and_the_others_registered(runtime, org, dialect):
    if runtime.engine.dialect.name != dialect:
        pytest.skip("SQLite keeps a 300-character name in a String(255) column")
    good = [_package(runtime, "1"), _package(runtime, "2")]
    odd = _package(runtime, "3")
    kind, upload, note = odd.stored[0]
    odd = intake._Incoming(odd.ref, odd.header, odd.warnings, odd.verification,
                           [(kind, Upload(upload.stored, "x" * 300, upload.content_type), note)])
    outcomes = intake._register_all(runtime, org, [good[0], odd, good[1]])
    assert [outcomes[p.ref.message_id] for p in (good[0], odd, good[1])] == ["registered", "rejected", "registered"]
    assert [d.arrival_number for d in _registered(runtime)] == [1, 2]
    with runtime.sessions() as session:
        entry = session.scalar(select(AxisInboxEntry).where(AxisInboxEntry.message_id == odd.ref.message_id))
        assert entry.error_code == "invalid_package"
        assert audit.verify_chain(session).ok


# -- the pieces ----------------------------------------------------------------------------------
def test_record_many_appends_the_chain_record_would(runtime):
    with runtime.sessions() as session:
        audit.record(session, SERVICE_ACTOR, "test.one", object_id=1)
        assert audit.record_many(session, [audit.entry(SERVICE_ACTOR, "test.many", object_type="thing", object_id=i,
                                                       organisation_id=7, note=f"sự kiện {i}", n=i, ok=True)
                                           for i in range(5)]) == 5
        audit.record(session, SERVICE_ACTOR, "test.after")
        assert audit.record_many(session, []) == 0
        session.commit()
    with runtime.sessions() as session:
        audit.record_many(session, [audit.entry(SERVICE_ACTOR, "test.next")])  # a new transaction reads the tail
        session.commit()
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        report = audit.verify_chain(session)
    assert report.ok and report.checked == 8
    assert [e.seq for e in events] == list(range(1, 9))
    assert [e.action for e in events] == ["test.one"] + ["test.many"] * 5 + ["test.after", "test.next"]
    assert (events[3].object_type, events[3].object_id, events[3].organisation_id, events[3].detail) == (
        "thing", "2", 7, {"note": "sự kiện 2", "n": 2, "ok": True})


def test_record_many_in_a_rolled_back_savepoint_leaves_the_chain_linear(runtime):
    with runtime.sessions() as session:
        audit.record(session, SERVICE_ACTOR, "test.kept")
        nested = session.begin_nested()
        audit.record_many(session, [audit.entry(SERVICE_ACTOR, "test.dropped") for _ in range(3)])
        nested.rollback()
        audit.record_many(session, [audit.entry(SERVICE_ACTOR, "test.kept") for _ in range(2)])
        session.commit()
        assert [e.seq for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))] == [1, 2, 3]
        assert audit.verify_chain(session).ok


def test_next_numbers_takes_consecutive_numbers_and_a_rollback_gives_them_back(runtime, org):
    with runtime.sessions() as session:
        assert list(documents.next_numbers(session, org.id, "incoming", 2026, 3)) == [1, 2, 3]
        assert documents.next_number(session, org.id, "incoming", 2026) == 4
        session.rollback()
        assert list(documents.next_numbers(session, org.id, "incoming", 2026, 2)) == [1, 2]
        assert list(documents.next_numbers(session, org.id, "outgoing", 2026, 1)) == [1]
        session.commit()


def test_concurrent_batches_take_disjoint_runs_of_numbers(runtime, org):
    """Ten transactions at once take five numbers each: fifty consecutive numbers, each run unbroken."""
    runs, barrier = [], threading.Barrier(10)

    def take() -> None:
        barrier.wait()
        with runtime.sessions() as session:
            runs.append(list(documents.next_numbers(session, org.id, "incoming", 2026, 5)))
            session.commit()

    threads = [threading.Thread(target=take) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(n for run in runs for n in run) == list(range(1, 51))
    assert all(run == list(range(run[0], run[0] + 5)) for run in runs)


def test_registered_incoming_matches_as_registration_does(runtime, org):
    with runtime.sessions() as session:
        for number, symbol, registered in ((1, "A", True), (None, "B", True), (2, None, True), (3, "C", False)):
            session.add(Document(organisation_id=org.id, direction="incoming", doc_type="cong_van", subject="x",
                                 status="registered" if registered else "received", issuer=DEPARTMENT, year=2026,
                                 number=number, symbol=symbol, registered_at=datetime.now(UTC) if registered else None))
        session.flush()
        found = documents.registered_incoming(session, org.id, [
            (DEPARTMENT, 2026, 1, "A"), (DEPARTMENT, 2026, None, "B"), (DEPARTMENT, 2026, 2, None),
            (DEPARTMENT, 2026, 3, "C"), (DEPARTMENT, 2025, 1, "A"), (JUSTICE, 2026, 1, "A"), (DEPARTMENT, 2026, 1, "B")])
        assert set(found) == {(DEPARTMENT, 2026, 1, "A"), (DEPARTMENT, 2026, None, "B"), (DEPARTMENT, 2026, 2, None)}
        assert documents.registered_incoming(session, org.id, []) == {}


def test_a_job_queued_twice_in_a_transaction_is_queued_once(runtime):
    with runtime.sessions() as session:
        first = outbox.enqueue(session, "docsvc.test_task", 1)
        assert outbox.enqueue(session, "docsvc.test_task", 1) is first
        assert outbox.enqueue(session, "docsvc.test_task", 2) is not first
        assert outbox.enqueue_many(session, [("docsvc.test_task", [1]), ("docsvc.test_task", [3]),
                                             ("docsvc.test_task", [3]), ("docsvc.other", [1])]) == 2
        assert outbox.enqueue(session, "docsvc.test_task", 3).id is not None
        nested = session.begin_nested()
        outbox.enqueue(session, "docsvc.test_task", 4)
        nested.rollback()  # its message is gone: queuing it again writes it
        outbox.enqueue(session, "docsvc.test_task", 4)
        session.commit()
    with runtime.sessions() as session:
        jobs = sorted((m.task, m.args) for m in session.scalars(select(OutboxMessage)))
    assert jobs == [("docsvc.other", [1])] + [("docsvc.test_task", [n]) for n in (1, 2, 3, 4)]
    with runtime.sessions() as session:  # another transaction queues it again
        outbox.enqueue(session, "docsvc.test_task", 1)
        session.commit()
    assert _count(runtime, OutboxMessage, OutboxMessage.task == "docsvc.test_task") == 5


def test_jobs_queued_together_are_sent_after_the_commit(runtime):
    sent = []
    runtime.send_job = sent.append  # the broker: what the fast path hands over
    with runtime.sessions() as session:
        outbox.enqueue_many(session, [("docsvc.test_task", [n]) for n in range(3)])
        assert sent == []
        session.commit()
    assert sorted(m.args[0] for m in sent) == [0, 1, 2]
    with runtime.sessions() as session:
        assert {m.id for m in sent} == set(session.scalars(select(OutboxMessage.id)))


# -- the filesystem store's sidecars ---------------------------------------------------------------
def test_objects_with_the_same_description_share_one_sidecar_file_and_keep_it_apart(tmp_path):
    store = FilesystemObjectStore(tmp_path / "objects")
    pdfs = [store.put(iter([os.urandom(1000)]), content_type="application/pdf") for _ in range(3)]
    other = store.put(iter([b"zip"]), content_type="application/zip", metadata={"source": "axis"})
    sidecars = [tmp_path / "objects" / "meta" / obj.key for obj in pdfs]
    assert len({path.stat().st_ino for path in sidecars}) == 1  # hard links of one file
    assert (tmp_path / "objects" / "meta" / other.key).stat().st_ino != sidecars[0].stat().st_ino
    store.delete(pdfs[0].key)  # removes its own name only
    assert not sidecars[0].exists()
    fresh = FilesystemObjectStore(tmp_path / "objects")
    assert fresh.stat(pdfs[1].key).content_type == "application/pdf"
    assert fresh.stat(other.key).metadata == {"source": "axis"}
    assert list((tmp_path / "objects" / "tmp").iterdir()) == []
    # A sidecar replaced behind the store's back (another process writing the same key) is not linked.
    (tmp_path / "objects" / "meta" / pdfs[2].key).unlink()
    (tmp_path / "objects" / "meta" / pdfs[2].key).write_text('{"content_type": "text/plain", "metadata": {}}')
    store.delete(pdfs[1].key)
    later = store.put(iter([b"%PDF- later"]), content_type="application/pdf")
    assert store.stat(later.key).content_type == "application/pdf"
    assert store.stat(pdfs[2].key).content_type == "text/plain"


# -- fetching a batch with one request (get_many) ----------------------------------------------------
@pytest.fixture
def hub(tmp_path):
    from tests.support.axis_hub import EXAMPLES, new_hub

    if not EXAMPLES.is_dir():
        pytest.skip("shared/standards/examples is not beside the checkout")
    hub = new_hub(tmp_path / "axis").start()
    yield hub
    hub.stop()


@pytest.fixture
def receiver(tmp_path, database_url, hub):
    """The Government Office's docsvc, with its axis credential (no PKI: signatures come out unverified)."""
    from docsvc.runtime import Runtime
    from tests.conftest import make_settings

    rt = Runtime(make_settings(tmp_path, database_url,
                               axis={"endpoint": hub.url, "credentials": {GOVERNMENT: hub.secrets[GOVERNMENT]}}))
    yield rt
    rt.dispose()


class _OneByOne:
    """The hub's transport, as one without ``get_many`` would be; counts the requests for packages."""

    def __init__(self, inner) -> None:
        self.inner, self.gets, self.get_manys = inner, 0, 0

    def list_received(self, limit: int = 100):
        return self.inner.list_received(limit=limit)

    def get(self, message_id, out):
        self.gets += 1
        return self.inner.get(message_id, out)

    def ack(self, message_id) -> None:
        self.inner.ack(message_id)

    def ack_many(self, message_ids) -> None:
        self.inner.ack_many(message_ids)


class _Batched(_OneByOne):
    """With ``get_many``, answering ``errors[message_id]`` in place of the hub for some packages."""

    def __init__(self, inner, errors: dict | None = None) -> None:
        super().__init__(inner)
        self.errors = errors or {}

    def get_many(self, message_ids, directory):
        self.get_manys += 1
        fetched = self.inner.get_many(message_ids, directory)
        return [self.errors.get(m, outcome) for m, outcome in zip(message_ids, fetched, strict=True)]


def _send_packages(hub, tmp_path, numbers: list[str]) -> list:
    from lxml import etree

    from inter_axis.transport import new_idempotency_key
    from tests.support.axis_hub import NS, document_package

    department = hub.client(DEPARTMENT)
    for number in numbers:
        path = document_package(tmp_path / f"{number}.edxml", sender=DEPARTMENT, recipients=(GOVERNMENT,),
                                document_id=f"{DEPARTMENT},2025/03/14,{number}/KH-STTTT")
        tree = etree.parse(str(path))
        tree.find(".//e:CodeNumber", NS).text = number
        tree.find(".//e:CodeNotation", NS).text = "KH-STTTT"
        tree.write(str(path), xml_declaration=True, encoding="UTF-8")
        department.send(path, idempotency_key=new_idempotency_key())
    department.close()
    return hub.client(GOVERNMENT).list_received()


def _gov(rt) -> Organisation:
    with rt.sessions() as session:
        org = orgs.create(session, SERVICE_ACTOR, OrganisationCreate(organ_id=GOVERNMENT, name="Văn phòng Chính phủ",
                                                                     short_name="VPCP", level="other"))
        session.expunge(org)
    return org


def test_a_batch_is_fetched_with_one_request_and_a_package_gone_missing_is_rejected_and_acknowledged(
        receiver, hub, tmp_path):
    from inter_axis.transport import NOT_FOUND, TransportError

    org = _gov(receiver)
    refs = _send_packages(hub, tmp_path, ["21", "22", "23"])
    transport = _Batched(hub.client(GOVERNMENT), {refs[1].message_id: TransportError(NOT_FOUND, "gone")})
    assert intake.take_batch(receiver, org, transport, refs) == ["registered", "rejected", "registered"]
    assert (transport.get_manys, transport.gets) == (1, 0)
    assert [d.number for d in _registered(receiver)] == [21, 23]
    with receiver.sessions() as session:
        entries = {e.message_id: e for e in session.scalars(select(AxisInboxEntry))}
    assert entries[refs[1].message_id].error_code == NOT_FOUND
    assert all(e.acked_at is not None for e in entries.values())
    assert hub.client(GOVERNMENT).list_received() == []  # all three acknowledged


def test_a_transport_without_get_many_fetches_one_package_at_a_time(receiver, hub, tmp_path):
    org = _gov(receiver)
    refs = _send_packages(hub, tmp_path, ["31", "32", "33"])
    transport = _OneByOne(hub.client(GOVERNMENT))
    assert intake.take_batch(receiver, org, transport, refs) == ["registered"] * 3
    assert transport.gets == 3
    assert [d.arrival_number for d in _registered(receiver)] == [1, 2, 3]


def test_another_transport_error_of_one_package_fails_the_poll_and_nothing_is_lost(receiver, hub, tmp_path):
    from inter_axis.transport import UNAVAILABLE, TransportError

    org = _gov(receiver)
    refs = _send_packages(hub, tmp_path, ["41", "42"])
    damaged = _Batched(hub.client(GOVERNMENT), {refs[0].message_id: TransportError(UNAVAILABLE, "sha-256 mismatch")})
    with pytest.raises(TransportError) as failed:
        intake.take_batch(receiver, org, damaged, refs)
    assert failed.value.code == UNAVAILABLE
    assert _registered(receiver) == [] and _count(receiver, AxisInboxEntry) == 0
    assert len(hub.client(GOVERNMENT).list_received()) == 2  # nothing acknowledged: the next poll takes them
    assert intake.poll(receiver) == {"registered": 2}

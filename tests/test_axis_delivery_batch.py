"""Sending in batches (``delivery.attempt_many``) against a real ``docsvc axis-hub`` process: one
refused package fails alone, an unavailable axis schedules every row for a retry, a retry after a lost
response delivers each package once, statuses of several exchanges keep their order, a queued job
takes over the others; and a package built in memory has the bytes of one built through files.

Each batch test runs with three transports: the organisation's own (``send_many`` when the client has
it), one with a ``send_many`` made of single sends (one call per batch, per-package outcomes), and one
without ``send_many`` (the fallback: one ``send`` per package)."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from docsvc.audit import service as audit
from docsvc.audit.models import AuditEvent
from docsvc.axis import delivery, packages, tasks
from docsvc.axis import service as axis_service
from docsvc.axis import transport as axis_transport
from docsvc.axis.intake import SEND_STATUSES, queue_status
from docsvc.axis.models import AxisExchange, AxisStatusMessage
from docsvc.documents.models import Document, DocumentFile
from docsvc.jobs.models import OutboxMessage
from docsvc.organisations.models import Organisation
from docsvc.principal import SERVICE_ACTOR
from inter_axis.transport import UNAVAILABLE, TransportError
from tests.support.axis_agencies import two_agencies
from tests.support.axis_hub import DEPARTMENT, EXAMPLES, GOVERNMENT, PROVINCE, new_hub
from tests.support.signing import decree30_pdf, shared_pki_dir  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/standards/examples is not beside the checkout")

UNREGISTERED = "000.00.99.H41"  # shaped like an OrganId, but no agency of the hub


@pytest.fixture
def hub(tmp_path):
    hub = new_hub(tmp_path / "axis").start()
    yield hub
    hub.stop()


@pytest.fixture
def agencies(tmp_path, sqlite_url, shared_pki_dir, hub):  # noqa: F811
    with two_agencies(tmp_path, sqlite_url, shared_pki_dir, hub) as pair:
        yield pair


@pytest.fixture
def agencies_on_each_database(tmp_path, database_url, shared_pki_dir, hub):  # noqa: F811
    """``agencies`` on SQLite, then on PostgreSQL (for what takes row locks: the jobs' take-over)."""
    with two_agencies(tmp_path, database_url, shared_pki_dir, hub) as pair:
        yield pair


# -- transports ------------------------------------------------------------------------------------
class _Wrapped:
    """The organisation's transport, counting calls; subclasses change how batches go."""

    def __init__(self, inner) -> None:
        self.inner, self.agency_id = inner, inner.agency_id
        self.calls: list[tuple[str, int]] = []

    def send(self, package, *, idempotency_key):
        self.calls.append(("send", 1))
        return self.inner.send(package, idempotency_key=idempotency_key)

    def update_status(self, package, *, idempotency_key):
        self.calls.append(("update_status", 1))
        return self.inner.update_status(package, idempotency_key=idempotency_key)


class _OneByOne(_Wrapped):
    """No ``send_many``: delivery falls back to one ``send`` per package."""


class _Native(_Wrapped):
    """The client's own ``send_many`` when it has one (else the fallback, like ``_OneByOne``)."""

    def __getattr__(self, name):
        if name != "send_many" or not hasattr(self.inner, "send_many"):
            raise AttributeError(name)

        def send_many(items):
            items = list(items)
            self.calls.append(("send_many", len(items)))
            return self.inner.send_many(items)

        return send_many


class _EmulatedBatch(_Wrapped):
    """A ``send_many`` made of single sends: per-package outcomes in order; a request-wide failure
    (the axis unreachable) raises, as the client's does."""

    def send_many(self, items):
        items = list(items)
        self.calls.append(("send_many", len(items)))
        outcomes = []
        for source, key, kind in items:
            send = self.inner.update_status if kind == "status" else self.inner.send
            try:
                outcomes.append(send(source, idempotency_key=key))
            except TransportError as exc:
                if exc.retryable:
                    raise
                outcomes.append(exc)
        return outcomes


@pytest.fixture(params=[_Native, _EmulatedBatch, _OneByOne], ids=["native", "emulated_send_many", "one_by_one"])
def wrap(request, monkeypatch):
    """Make ``delivery`` use the parametrised transport; returns the instances made, by OrganId."""
    made: dict[str, _Wrapped] = {}
    real = axis_transport.transport_for

    def transport_for(settings, organ_id):
        if organ_id not in made:
            made[organ_id] = request.param(real(settings, organ_id))
        return made[organ_id]

    monkeypatch.setattr(delivery, "transport_for", transport_for)
    return made


# -- helpers ---------------------------------------------------------------------------------------
def _queue_documents(agency, recipients: list[str], *, files: int = 1) -> list[int]:
    """Issued outgoing documents of the agency's organisation, one per recipient, their exchanges
    queued (as issuing does, without the signing ceremony); each PDF has distinct bytes."""
    rt = agency.rt
    pdf = decree30_pdf()
    ids = []
    with rt.sessions() as session:
        org = session.get(Organisation, agency.org_id)
        for n, recipient in enumerate(recipients, start=1):
            number = 100 + n
            doc = Document(organisation_id=org.id, direction="outgoing", doc_type="ke_hoach", status="issued",
                           year=2026, number=number, symbol="KH-STTTT", issuer=org.organ_id,
                           issued_date=date(2026, 3, 5), subject=f"Kế hoạch số {number}", recipients=[recipient])
            session.add(doc)
            session.flush()
            for seq in range(1, files + 1):
                kind, data = ("version", pdf) if seq == 1 else ("attachment", os.urandom(20_000) + b">&<")
                stored = rt.store.put(iter([data + f"%{number}-{seq}-{os.urandom(4).hex()}\n".encode()]),
                                      content_type="application/pdf")
                session.add(DocumentFile(document_id=doc.id, kind=kind, seq=seq, filename=f"f{seq}.pdf",
                                         content_type="application/pdf", size=stored.size, sha256=stored.sha256,
                                         object_key=stored.key))
            ids += [e.id for e in axis_service.queue_outgoing(session, rt.settings, SERVICE_ACTOR, doc)]
        session.commit()
    return ids


def _rows(agency, model, ids: list[int]) -> dict[int, object]:
    with agency.rt.sessions() as session:
        rows = {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}
        session.expunge_all()
    return rows


def _events(agency, action: str) -> list[AuditEvent]:
    with agency.rt.sessions() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))
        session.expunge_all()
    return events


def _inbox(hub, organ_id: str) -> Counter:
    """What the agency sees waiting for it: document id → copies."""
    return Counter(ref.document_id for ref in hub.client(organ_id).list_received(limit=1000))


def _requests(transport: _Wrapped) -> list[str]:
    return [name for name, _count in transport.calls]


# -- batches ---------------------------------------------------------------------------------------
def test_a_refused_package_fails_alone_and_the_others_are_sent(agencies, hub, wrap):
    sender, _receiver = agencies
    ids = _queue_documents(sender, [GOVERNMENT, UNREGISTERED, GOVERNMENT, GOVERNMENT])
    states = delivery.attempt_many(sender.rt.sessions, sender.rt.settings, sender.rt.store, AxisExchange, ids)
    assert states == {ids[0]: "sent", ids[1]: "failed", ids[2]: "sent", ids[3]: "sent"}
    rows = _rows(sender, AxisExchange, ids)
    refused = rows[ids[1]]
    assert (refused.error_code, refused.attempts, refused.next_attempt_at, refused.message_id) == (
        "unknown_recipient", 1, None, None)
    assert refused.package_sha256  # built: a later rebuild is compared with these bytes
    for i in (ids[0], ids[2], ids[3]):
        assert (rows[i].attempts, rows[i].error_code) == (1, None) and rows[i].message_id and rows[i].sent_at
    transport = wrap[DEPARTMENT]
    if hasattr(transport, "send_many"):
        assert transport.calls == [("send_many", 4)]  # one request for the batch
    else:
        assert transport.calls == [("send", 1)] * 4
    assert sorted(e.object_id for e in _events(sender, "axis.document_sent")) == sorted(
        str(i) for i in (ids[0], ids[2], ids[3]))
    assert [e.object_id for e in _events(sender, "axis.document_failed")] == [str(ids[1])]
    with sender.rt.sessions() as session:
        assert audit.verify_chain(session).ok  # the batch's events extend the chain in order
    assert sorted(_inbox(hub, GOVERNMENT).values()) == [1, 1, 1]
    # Nothing is due any more: a second batch of the same rows sends nothing.
    calls = len(transport.calls)
    again = delivery.attempt_many(sender.rt.sessions, sender.rt.settings, sender.rt.store, AxisExchange, ids)
    assert again == states and len(transport.calls) == calls


def test_an_unavailable_axis_schedules_every_row_of_the_batch_for_a_retry(agencies, hub, wrap):
    import time

    sender, _receiver = agencies
    ids = _queue_documents(sender, [GOVERNMENT] * 3)
    transport = None
    hub.stop()
    try:
        before = datetime.now(UTC).replace(tzinfo=None)
        states = delivery.attempt_many(sender.rt.sessions, sender.rt.settings, sender.rt.store, AxisExchange, ids)
        after = datetime.now(UTC).replace(tzinfo=None)
        assert states == dict.fromkeys(ids, "retrying")
        transport = wrap[DEPARTMENT]
        # One request finds the axis down: the rest of the batch is not tried one by one.
        assert len(transport.calls) == 1
        rows = _rows(sender, AxisExchange, ids)
        for row in rows.values():
            assert (row.state, row.attempts, row.error_code) == ("retrying", 1, UNAVAILABLE)
            # base 0.2 s ± 25 %, counted from the moment the outcome was recorded (during the call:
            # on a loaded machine that can be well after the request failed)
            due = row.next_attempt_at.replace(tzinfo=None)
            assert before + timedelta(seconds=0.15) <= due <= after + timedelta(seconds=0.25)
        # Not due yet (asked only while the due times are clearly ahead): left alone.
        if datetime.now(UTC).replace(tzinfo=None) < min(r.next_attempt_at for r in rows.values()).replace(
                tzinfo=None) - timedelta(milliseconds=100):
            assert delivery.attempt_many(sender.rt.sessions, sender.rt.settings, sender.rt.store, AxisExchange,
                                         ids) == dict.fromkeys(ids, "retrying")
            assert len(transport.calls) == 1
    finally:
        hub.start()
    assert len(_events(sender, "axis.document_retrying")) == 3
    time.sleep(0.35)
    assert delivery.attempt_many(sender.rt.sessions, sender.rt.settings, sender.rt.store, AxisExchange,
                                 ids) == dict.fromkeys(ids, "sent")
    assert sorted(_inbox(hub, GOVERNMENT).values()) == [1, 1, 1]


class _LosesResponses:
    """Sends for real, then loses the answer (a timeout after the axis stored the packages)."""

    def __init__(self, inner) -> None:
        self.inner, self.agency_id = inner, inner.agency_id

    def send(self, package, *, idempotency_key):
        self.inner.send(package, idempotency_key=idempotency_key)
        raise TransportError(UNAVAILABLE, "the response was lost")

    def __getattr__(self, name):
        if name != "send_many" or not hasattr(self.inner, "send_many"):
            raise AttributeError(name)

        def send_many(items):
            self.inner.send_many(items)
            raise TransportError(UNAVAILABLE, "the response was lost")

        return send_many


def test_a_batch_retried_after_a_lost_response_delivers_each_package_once(agencies, hub, wrap, monkeypatch):
    sender, _receiver = agencies
    ids = _queue_documents(sender, [GOVERNMENT] * 3)
    real = delivery.transport_for
    monkeypatch.setattr(delivery, "transport_for", lambda settings, organ_id: _LosesResponses(real(settings,
                                                                                                   organ_id)))
    states = delivery.attempt_many(sender.rt.sessions, sender.rt.settings, sender.rt.store, AxisExchange, ids)
    # The one-by-one fallback stops at the first lost answer: the others wait for the retry unsent.
    assert states == dict.fromkeys(ids, "retrying")
    first = _rows(sender, AxisExchange, ids)
    monkeypatch.setattr(delivery, "transport_for", real)
    states = delivery.attempt_many(sender.rt.sessions, sender.rt.settings, sender.rt.store, AxisExchange, ids,
                                   force=True)
    assert states == dict.fromkeys(ids, "sent")
    rows = _rows(sender, AxisExchange, ids)
    for i in ids:  # same key, same bytes: the axis answers a retry with the original receipt
        assert rows[i].attempts == 2 and rows[i].package_sha256 == first[i].package_sha256
    waiting = _inbox(hub, GOVERNMENT)
    assert sorted(waiting.values()) == [1, 1, 1]
    assert {r.document_id for r in hub.client(GOVERNMENT).list_received()} == {
        row.edxml_document_id for row in rows.values()}
    assert len({rows[i].message_id for i in ids}) == 3


def test_a_changed_package_is_not_sent_under_the_same_key_and_the_rest_of_the_batch_is(agencies, hub, wrap):
    sender, _receiver = agencies
    ids = _queue_documents(sender, [GOVERNMENT] * 2)
    with sender.rt.sessions() as session:
        session.get(AxisExchange, ids[0]).package_sha256 = "0" * 64  # as if the first build differed
        session.commit()
    states = delivery.attempt_many(sender.rt.sessions, sender.rt.settings, sender.rt.store, AxisExchange, ids)
    assert states == {ids[0]: "failed", ids[1]: "sent"}
    assert _rows(sender, AxisExchange, ids)[ids[0]].error_code == "package_changed"
    assert sum(_inbox(hub, GOVERNMENT).values()) == 1


def test_a_row_finished_by_a_concurrent_attempt_keeps_that_outcome(agencies, hub, wrap, monkeypatch):
    sender, _receiver = agencies
    ids = _queue_documents(sender, [GOVERNMENT] * 2)
    real_deliver = delivery._deliver

    def deliver_while_another_attempt_fails_the_first(settings, prepared, strict):
        with sender.rt.sessions() as session:
            row = session.get(AxisExchange, ids[0])
            row.state, row.error_code = "failed", "duplicate_document"
            session.commit()
        return real_deliver(settings, prepared, strict)

    monkeypatch.setattr(delivery, "_deliver", deliver_while_another_attempt_fails_the_first)
    states = delivery.attempt_many(sender.rt.sessions, sender.rt.settings, sender.rt.store, AxisExchange, ids)
    assert states == {ids[0]: "failed", ids[1]: "sent"}
    rows = _rows(sender, AxisExchange, ids)
    assert (rows[ids[0]].error_code, rows[ids[0]].attempts) == ("duplicate_document", 0)


# -- statuses --------------------------------------------------------------------------------------
def _incoming_exchanges(agency, senders_documents: list[str]) -> list[int]:
    """Incoming exchanges of the agency's organisation (documents received from DEPARTMENT), each with
    01 then 03 queued, as registering does."""
    exchange_ids = []
    with agency.rt.sessions() as session:
        for n, edxml_id in enumerate(senders_documents, start=1):
            doc = Document(organisation_id=agency.org_id, direction="incoming", doc_type="ke_hoach",
                           status="registered", year=2026, number=n, symbol="KH-STTTT", issuer=DEPARTMENT,
                           issued_date=date(2026, 3, 5), subject=f"Văn bản đến {n}")
            session.add(doc)
            session.flush()
            exchange = AxisExchange(organisation_id=agency.org_id, document_id=doc.id, direction="incoming",
                                    counterpart=DEPARTMENT, edxml_document_id=edxml_id, state="registered")
            session.add(exchange)
            session.flush()
            queue_status(session, exchange, "01", "Đã đến")
            queue_status(session, exchange, "03", "Đã tiếp nhận")
            exchange_ids.append(exchange.id)
        session.commit()
    return exchange_ids


class _FirstStatusUnavailable(_EmulatedBatch):
    """``send_many`` answering ``unavailable`` for one given idempotency key (that package alone)."""

    refuse: set[str] = set()

    def send_many(self, items):
        items = list(items)
        self.calls.append(("send_many", len(items)))
        self.batches = [*getattr(self, "batches", []), [key for _source, key, _kind in items]]
        return [TransportError(UNAVAILABLE, "try later") if key in self.refuse
                else self.inner.update_status(source, idempotency_key=key) for source, key, _kind in items]


def test_statuses_of_several_exchanges_go_in_rounds_and_keep_their_order(agencies, hub, monkeypatch):
    _sender, receiver = agencies
    documents = [f"{DEPARTMENT},2026/03/05,{n}/KH-STTTT" for n in (1, 2, 3)]
    exchanges = _incoming_exchanges(receiver, documents)
    with receiver.rt.sessions() as session:
        statuses = {(s.exchange_id, s.code): s for s in session.scalars(select(AxisStatusMessage))}
        session.expunge_all()
    # The 01 of the second exchange meets an unavailable axis: its 03 must not overtake it.
    _FirstStatusUnavailable.refuse = {statuses[(exchanges[1], "01")].idempotency_key}
    made = {}
    real = axis_transport.transport_for
    monkeypatch.setattr(delivery, "transport_for", lambda settings, organ_id: made.setdefault(
        organ_id, _FirstStatusUnavailable(real(settings, organ_id))))
    result = delivery.send_statuses_many(receiver.rt.sessions, receiver.rt.settings, receiver.rt.store, exchanges)
    assert result == {exchanges[0]: ["sent", "sent"], exchanges[1]: ["retrying"], exchanges[2]: ["sent", "sent"]}
    key_of = {s.idempotency_key: (exchange_id, code) for (exchange_id, code), s in statuses.items()}
    rounds = [[key_of[key] for key in batch] for batch in made[GOVERNMENT].batches]
    # One request per round, at most one status per exchange in each.
    assert rounds == [[(exchanges[0], "01"), (exchanges[1], "01"), (exchanges[2], "01")],
                      [(exchanges[0], "03"), (exchanges[2], "03")]]
    waiting = [(r.document_id, r.status_code) for r in hub.client(DEPARTMENT).list_received(limit=1000)]
    assert waiting == [(documents[0], "01"), (documents[2], "01"), (documents[0], "03"), (documents[2], "03")]
    rows = _rows(receiver, AxisStatusMessage, [s.id for s in statuses.values()])
    held_01, held_03 = rows[statuses[(exchanges[1], "01")].id], rows[statuses[(exchanges[1], "03")].id]
    assert (held_01.state, held_01.attempts, held_01.error_code) == ("retrying", 1, UNAVAILABLE)
    assert (held_03.state, held_03.attempts) == ("pending", 0)  # not overtaking its 01


# -- jobs ------------------------------------------------------------------------------------------
def _outbox(agency, task: str) -> dict[int, int]:
    """Outbox message id → the job's exchange id, for ``task``."""
    with agency.rt.sessions() as session:
        return {m.id: m.args[0] for m in session.scalars(select(OutboxMessage).where(OutboxMessage.task == task)
                                                           .order_by(OutboxMessage.id))}


def _run_job(task, message_id: int, *args):
    """Run a bound task as the worker does for outbox message ``message_id`` (its Celery task id)."""
    task.push_request(id=f"outbox-{message_id}")
    try:
        return task.run(*args)
    finally:
        task.pop_request()


def test_a_document_job_takes_over_the_queued_ones_and_their_own_runs_do_nothing(agencies_on_each_database, hub,
                                                                                 wrap, monkeypatch):
    sender, _receiver = agencies_on_each_database
    ids = _queue_documents(sender, [GOVERNMENT] * 4)
    monkeypatch.setattr(tasks, "runtime", lambda: sender.rt)
    jobs = _outbox(sender, axis_service.SEND_DOCUMENT)
    assert sorted(jobs.values()) == sorted(ids)
    (first_message, first_exchange), *rest = jobs.items()
    assert _run_job(tasks.axis_send_document, first_message, first_exchange) == "sent"
    assert set(_rows(sender, AxisExchange, ids)[i].state for i in ids) == {"sent"}
    transport = wrap[DEPARTMENT]
    calls = list(transport.calls)
    assert sum(count for _name, count in calls) == 4
    for message_id, exchange_id in rest:  # their messages were claimed: their runs send nothing
        assert _run_job(tasks.axis_send_document, message_id, exchange_id) == "sent"
    assert _run_job(tasks.axis_send_document, first_message, first_exchange) == "sent"  # a redelivery
    assert transport.calls == calls
    assert sorted(_inbox(hub, GOVERNMENT).values()) == [1, 1, 1, 1]
    with sender.rt.sessions() as session:
        assert session.scalar(select(OutboxMessage).where(OutboxMessage.completed_at.is_(None),
                                                          OutboxMessage.task == axis_service.SEND_DOCUMENT)) is None


def test_the_sweep_sends_due_documents_and_statuses_in_batches(agencies_on_each_database, hub, wrap, monkeypatch):
    sender, receiver = agencies_on_each_database
    ids = _queue_documents(sender, [GOVERNMENT] * 3)
    exchanges = _incoming_exchanges(receiver, [f"{DEPARTMENT},2026/03/05,{n}/KH-STTTT" for n in (1, 2)])
    monkeypatch.setattr(tasks, "runtime", lambda: sender.rt)
    assert tasks.axis_retry_due() == {"sent": 3}
    transport = wrap[DEPARTMENT]
    assert transport.calls == ([("send_many", 3)] if hasattr(transport, "send_many") else [("send", 1)] * 3)
    monkeypatch.setattr(tasks, "runtime", lambda: receiver.rt)
    assert tasks.axis_retry_due() == {}
    with receiver.rt.sessions() as session:
        assert {s.state for s in session.scalars(select(AxisStatusMessage).where(
            AxisStatusMessage.exchange_id.in_(exchanges)))} == {"sent"}
    assert len(ids) == 3 and sorted(_inbox(hub, GOVERNMENT).values()) == [1, 1, 1]
    assert [r.status_code for r in hub.client(DEPARTMENT).list_received()] == ["01", "01", "03", "03"]
    assert _outbox(receiver, SEND_STATUSES)  # queued by queue_status; the sweep did their work meanwhile


# -- bytes -----------------------------------------------------------------------------------------
def test_a_package_built_in_memory_has_the_bytes_of_one_built_through_files(agencies, monkeypatch):
    """Same bytes either way (so a retry on the other side of the threshold still matches the first
    attempt's SHA-256), and the in-memory way writes no temporary file."""
    import tempfile

    sender, _receiver = agencies
    (exchange_id,) = _queue_documents(sender, [f"{GOVERNMENT} - Văn phòng Chính phủ"], files=3)
    rt = sender.rt
    with rt.sessions() as session:
        exchange = session.get(AxisExchange, exchange_id)
        doc = session.get(Document, exchange.document_id)
        org = session.get(Organisation, exchange.organisation_id)
        seal = axis_transport.seal_key(session, rt.settings, org)
        rows = packages.sendable_files(session, doc)
        session.commit()
        session.expunge_all()
    assert [r.kind for r in rows] == ["version", "attachment", "attachment"]
    args = (doc, org, (GOVERNMENT, "Văn phòng Chính phủ"), exchange.created_at)
    max_bytes = rt.settings.axis.max_package_bytes
    with packages.built_document(rt.store, args, rows, seal, max_bytes, in_memory_max=0) as on_disk:
        assert on_disk.data is None and on_disk.path.is_file()
        disk_bytes = on_disk.path.read_bytes()
    assert not on_disk.path.exists()  # removed with its temporary directory

    def no_temporary_files(*_args, **_kwargs):
        raise AssertionError("a temporary file was made for an in-memory build")

    with monkeypatch.context() as patch:
        for name in ("TemporaryDirectory", "mkstemp", "NamedTemporaryFile", "TemporaryFile"):
            patch.setattr(tempfile, name, no_temporary_files)
        with packages.built_document(rt.store, args, rows, seal, max_bytes) as in_memory:
            pass
        again = packages.signed_bytes(packages.write_document(packages.document_package(
            *args, packages.read_files(rt.store, rows))), seal, max_bytes)
    assert in_memory.data == disk_bytes == again.data  # and a rebuild gives them again
    assert in_memory.sha256 == on_disk.sha256 == hashlib.sha256(disk_bytes).hexdigest()
    assert in_memory.size == on_disk.size == len(disk_bytes)
    assert disk_bytes.count(b"<Signature ") == 1 and disk_bytes.count(b"</edXML:ContentTransferEncoded>") == 3

    # A status: in memory and on disk alike; unsigned (no seal) too.
    message = packages.status_message(org, PROVINCE, exchange.edxml_document_id, "13", "Thu hồi",
                                      datetime(2026, 3, 6, tzinfo=UTC), "Trần Thị Bình")
    for key in (seal, None):
        write = packages.write_status_to(message, GOVERNMENT)
        with packages.signed_on_disk(write, key, max_bytes) as status_on_disk:
            status_disk_bytes = status_on_disk.path.read_bytes()
        assert packages.signed_bytes(write, key, max_bytes).data == status_disk_bytes


def test_a_batch_the_axis_refuses_as_a_whole_is_sent_one_by_one_and_fails_nothing(tmp_path, sqlite_url,
                                                                                   shared_pki_dir):  # noqa: F811
    # This axis takes at most 2 packages a request (our client would send up to 100 at once): its
    # too_large is about the request, not about any package, so no row may fail for good on it.
    hub = new_hub(tmp_path / "axis", options=("--max-batch-packages", "2")).start()
    try:
        with two_agencies(tmp_path, sqlite_url, shared_pki_dir, hub) as (sender, _receiver):
            ids = _queue_documents(sender, [GOVERNMENT] * 3)
            states = delivery.attempt_many(sender.rt.sessions, sender.rt.settings, sender.rt.store,
                                           AxisExchange, ids)
            assert states == dict.fromkeys(ids, "sent")
            assert all(row.error_code is None for row in _rows(sender, AxisExchange, ids).values())
        assert sorted(_inbox(hub, GOVERNMENT).values()) == [1, 1, 1]
    finally:
        hub.stop()

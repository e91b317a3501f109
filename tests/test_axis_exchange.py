"""The agency side of the interlink axis, service level, on SQLite and PostgreSQL, against a real
``docsvc axis-hub`` process: issue → delivered once → received, verified and registered with an
arrival number → 01/03 back → 04/05/06 → recall 13 → 15; duplicates, retries and hostile input."""

from __future__ import annotations

import pytest
from lxml import etree
from sqlalchemy import select

from docsvc.axis import delivery
from docsvc.axis.models import AxisExchange, AxisInboxEntry
from docsvc.documents.models import Document, DocumentFile
from docsvc.jobs.models import OutboxMessage
from inter_axis.transport import new_idempotency_key
from tests.support.axis_agencies import Agency, issue_to, two_agencies
from tests.support.axis_hub import DEPARTMENT, EXAMPLES, GOVERNMENT, NS, document_package, new_hub
from tests.support.signing import shared_pki_dir  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/standards/examples is not beside the checkout")


@pytest.fixture
def hub(tmp_path):
    """One hub per test: every test issues document 1 of the year, which one hub would refuse twice."""
    hub = new_hub(tmp_path / "axis").start()
    yield hub
    hub.stop()


@pytest.fixture
def agencies(tmp_path, database_url, shared_pki_dir, hub):  # noqa: F811
    with two_agencies(tmp_path, database_url, shared_pki_dir, hub) as pair:
        yield pair


def _exchanges(agency: Agency, direction: str) -> list[AxisExchange]:
    with agency.rt.sessions() as session:
        rows = list(session.scalars(select(AxisExchange).where(AxisExchange.direction == direction)
                                    .order_by(AxisExchange.id)))
        session.expunge_all()
        return rows


def _history(agency: Agency, doc: int) -> list[dict]:
    response = agency.client.get(f"/documents/{doc}/axis", headers=agency.clerk.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_send_receive_register_status_round_trip_and_recall(agencies):
    sender, receiver = agencies
    issued = issue_to(sender, [f"{GOVERNMENT} - Văn phòng Chính phủ", "000.00.15.H41", "Lưu: VT"])
    # Only the external recipient is exchanged (Sở Tư pháp is an organisation of this docsvc).
    (outgoing,) = _exchanges(sender, "outgoing")
    assert (outgoing.counterpart, outgoing.state, outgoing.message_id) == (GOVERNMENT, "pending", None)
    assert outgoing.idempotency_key  # stored with the issue, before any attempt
    assert outgoing.edxml_document_id == f"{DEPARTMENT},{issued['issued_date'].replace('-', '/')}," \
                                         f"{issued['number']}/{issued['symbol']}"
    with sender.rt.sessions() as session:
        jobs = session.scalars(select(OutboxMessage.args).where(OutboxMessage.task == "docsvc.axis_send_document"))
        assert list(jobs) == [[outgoing.id]]

    assert sender.send_due() == ["sent"]
    assert receiver.poll() == {"registered": 1}
    (incoming,) = _exchanges(receiver, "incoming")
    assert (incoming.counterpart, incoming.edxml_document_id) == (DEPARTMENT, outgoing.edxml_document_id)
    assert (incoming.signature_status, incoming.pades_status, incoming.verified) == ("valid", "TOTAL-PASSED", True)
    with receiver.rt.sessions() as session:
        doc = session.get(Document, incoming.document_id)
        assert (doc.direction, doc.status, doc.arrival_number) == ("incoming", "registered", 1)
        assert (doc.number, doc.symbol, doc.sender_name) == (issued["number"], issued["symbol"],
                                                             "Sở Thông tin và Truyền thông")
        (version,) = session.scalars(select(DocumentFile).where(DocumentFile.document_id == doc.id))
        assert (version.kind, version.seq, version.content_type) == ("version", 1, "application/pdf")
    with sender.rt.sessions() as session:
        sealed = session.scalar(select(DocumentFile.sha256).where(DocumentFile.document_id == issued["id"])
                                .order_by(DocumentFile.seq.desc()))
    assert version.sha256 == sealed  # the issued PDF arrives byte for byte

    # 01 then 03 go back automatically; the sender sees them in order.
    assert receiver.send_due() == ["sent", "sent"]
    assert sender.poll() == {"status": 2}
    (history,) = _history(sender, issued["id"])
    assert [s["code"] for s in history["statuses"]] == ["01", "03"] and history["last_status"] == "03"

    for code in ("04", "05", "06"):
        answered = receiver.client.post(f"/documents/{incoming.document_id}/axis/status", json={"code": code},
                                        headers=receiver.clerk.headers)
        assert answered.status_code == 202, answered.text
    backwards = receiver.client.post(f"/documents/{incoming.document_id}/axis/status", json={"code": "04"},
                                     headers=receiver.clerk.headers)
    assert backwards.status_code == 409 and backwards.json()["error"]["code"] == "axis_status_not_allowed"
    assert receiver.send_due() == ["sent", "sent", "sent"]
    assert sender.poll() == {"status": 3}
    assert _history(sender, issued["id"])[0]["last_status"] == "06"

    # Recall: 13 to the recipient, answered 15; the received copy is revoked.
    recalled = sender.client.post(f"/documents/{issued['id']}/axis/recall", json={"reason": "Sai sót"},
                                  headers=sender.clerk.headers)
    assert recalled.status_code == 202, recalled.text
    assert sender.send_due() == ["sent"]
    assert receiver.poll() == {"status": 1}
    assert _exchanges(receiver, "incoming")[0].state == "recall_requested"
    agreed = receiver.client.post(f"/documents/{incoming.document_id}/axis/recall-answer", json={"code": "15"},
                                  headers=receiver.clerk.headers)
    assert agreed.status_code == 202, agreed.text
    assert receiver.send_due() == ["sent"]
    assert sender.poll() == {"status": 1}
    sent_history = _history(sender, issued["id"])[0]
    assert [(s["direction"], s["code"]) for s in sent_history["statuses"]] == [
        ("received", "01"), ("received", "03"), ("received", "04"), ("received", "05"), ("received", "06"),
        ("sent", "13"), ("received", "15")]
    received_history = _history(receiver, incoming.document_id)[0]
    assert received_history["state"] == "revoked"
    with receiver.rt.sessions() as session:
        assert session.get(Document, incoming.document_id).status == "revoked"


def test_tenancy_and_roles(agencies):
    sender, receiver = agencies
    issued = issue_to(sender, [GOVERNMENT])
    assert sender.send_due() == ["sent"]
    receiver.poll()
    (incoming,) = _exchanges(receiver, "incoming")
    # Another organisation of the sending service cannot see or act on the exchange: 404.
    from docsvc.principal import Role
    from tests.support.factories import make_person

    other = make_person(sender.client, "vanthu.khac", _other_org(sender), Role.CLERK)
    assert sender.client.get(f"/documents/{issued['id']}/axis", headers=other.headers).status_code == 404
    refused = sender.client.post(f"/documents/{issued['id']}/axis/recall", json={}, headers=other.headers)
    assert refused.status_code == 404
    # A non-clerk of the receiving organisation may not send statuses.
    leader = make_person(receiver.client, "lanhdao.vpcp", receiver.org_id, Role.LEADER)
    denied = receiver.client.post(f"/documents/{incoming.document_id}/axis/status", json={"code": "04"},
                                  headers=leader.headers)
    assert denied.status_code == 403
    # A recall answer with nothing pending, and an outgoing document given as incoming, are refused.
    nothing = receiver.client.post(f"/documents/{incoming.document_id}/axis/recall-answer", json={"code": "15"},
                                   headers=receiver.clerk.headers)
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "axis_status_not_allowed"
    wrong_side = sender.client.post(f"/documents/{issued['id']}/axis/status", json={"code": "04"},
                                    headers=sender.clerk.headers)
    assert wrong_side.status_code == 409 and wrong_side.json()["error"]["code"] == "not_exchanged_over_axis"


def _other_org(agency: Agency) -> int:
    from docsvc.organisations.models import Organisation

    with agency.rt.sessions() as session:
        return session.scalar(select(Organisation.id).where(Organisation.organ_id == "000.00.15.H41"))


def test_duplicate_document_id_is_refused_and_never_resent(agencies):
    sender, receiver = agencies
    issue_to(sender, [GOVERNMENT])
    (first,) = _exchanges(sender, "outgoing")
    assert sender.send_due() == ["sent"]
    # A retry of the same exchange (same key, same bytes) is a no-op; the axis would replay it anyway.
    assert delivery.attempt(sender.rt.sessions, sender.rt.settings, sender.rt.store, AxisExchange, first.id,
                            force=True) == "sent"
    # The same DocumentId under another key (e.g. a second exchange row) is refused by the axis.
    with sender.rt.sessions() as session:
        row = session.get(AxisExchange, first.id)
        clone = AxisExchange(organisation_id=row.organisation_id, document_id=row.document_id, direction="outgoing",
                             counterpart=row.counterpart, edxml_document_id=row.edxml_document_id,
                             state="pending", idempotency_key=new_idempotency_key())
        row.direction = "resent"  # free the unique slot for the clone, as a buggy re-issue would
        session.add(clone)
        session.commit()
        clone_id = clone.id
    assert delivery.attempt(sender.rt.sessions, sender.rt.settings, sender.rt.store, AxisExchange, clone_id) == "failed"
    with sender.rt.sessions() as session:
        clone = session.get(AxisExchange, clone_id)
        assert (clone.error_code, clone.attempts) == ("duplicate_document", 1)
    assert sender.send_due() == []  # failed rows are never attempted again
    assert receiver.poll() == {"registered": 1}


def test_unavailable_axis_backs_off_then_delivers_once(agencies, hub):
    sender, receiver = agencies
    issue_to(sender, [GOVERNMENT])
    (row,) = _exchanges(sender, "outgoing")
    hub.stop()
    try:
        assert sender.send_due() == ["retrying"]
        with sender.rt.sessions() as session:
            row = session.get(AxisExchange, row.id)
            assert (row.error_code, row.attempts) == ("unavailable", 1) and row.next_attempt_at is not None
            first_delay = (row.next_attempt_at - row.updated_at).total_seconds()
        assert 0.1 <= first_delay <= 0.3  # base 0.2 s ± 25 %
        assert sender.send_due() == []  # not due yet
    finally:
        hub.start()
    import time

    time.sleep(0.3)
    assert sender.send_due() == ["sent"]
    assert receiver.poll() == {"registered": 1}
    assert receiver.poll() == {}


def test_hostile_and_malformed_packages_are_rejected_acked_and_nothing_registered(agencies, hub, tmp_path):
    sender, receiver = agencies
    government = hub.client(DEPARTMENT)
    broken = document_package(tmp_path / "broken.edxml", sender=DEPARTMENT, recipients=(GOVERNMENT,),
                              document_id=f"{DEPARTMENT},2025/03/14,77/KH-STTTT")
    text = broken.read_text(encoding="utf-8")
    start, end = text.index("<AttachmentEncoded>"), text.index("</AttachmentEncoded>") + len("</AttachmentEncoded>")
    broken.write_text(text[:start] + text[end:], encoding="utf-8")  # the manifest names a missing attachment
    receipt = government.send(broken, idempotency_key=new_idempotency_key())
    issue_to(sender, [GOVERNMENT])  # a good package behind it in the same inbox
    assert sender.send_due() == ["sent"]

    assert receiver.poll() == {"rejected": 1, "registered": 1}
    assert receiver.poll() == {}  # acknowledged: it does not come back
    with receiver.rt.sessions() as session:
        entry = session.scalar(select(AxisInboxEntry).where(AxisInboxEntry.message_id == receipt.message_id))
        assert (entry.outcome, entry.error_code, entry.document_id) == ("rejected", "missing_attachment", None)
        assert entry.acked_at is not None
        assert session.scalar(select(Document.id).where(Document.symbol == "KH-STTTT", Document.number == 77)) is None
    inbox = receiver.client.get("/axis/inbox?outcome=rejected", headers=receiver.clerk.headers)
    assert [e["error_code"] for e in inbox.json()] == ["missing_attachment"]


@pytest.mark.parametrize("number", ["²", "99999999999999999999"])
def test_a_package_our_database_cannot_hold_is_rejected_and_does_not_block_the_inbox(agencies, hub, tmp_path,
                                                                                    number):
    """A number str.isdigit() accepts but int() or the column cannot take ("²", beyond 64 bits)
    must not fail the poll for ever: it is kept out of the document."""
    sender, receiver = agencies
    odd = document_package(tmp_path / "odd.edxml", sender=DEPARTMENT, recipients=(GOVERNMENT,),
                           document_id=f"{DEPARTMENT},2025/03/14,{number}/KH-STTTT")
    tree = etree.parse(str(odd))
    tree.find(".//e:CodeNumber", NS).text = number
    tree.write(str(odd), xml_declaration=True, encoding="UTF-8")
    receipt = hub.client(DEPARTMENT).send(odd, idempotency_key=new_idempotency_key())
    issue_to(sender, [GOVERNMENT])  # a good package behind it in the same inbox
    assert sender.send_due() == ["sent"]

    assert sum(receiver.poll().values()) == 2
    assert receiver.poll() == {}  # both acknowledged: nothing comes back
    with receiver.rt.sessions() as session:
        entry = session.scalar(select(AxisInboxEntry).where(AxisInboxEntry.message_id == receipt.message_id))
        assert entry.acked_at is not None and entry.outcome in ("registered", "rejected")
        if entry.outcome == "registered":
            assert session.get(Document, entry.document_id).number is None
    assert len(_documents_in(receiver)) >= 1


def test_crash_between_register_and_ack_registers_once(agencies):
    sender, receiver = agencies
    issue_to(sender, [GOVERNMENT])
    assert sender.send_due() == ["sent"]
    from docsvc.axis import intake
    from docsvc.axis.transport import transport_for

    transport = transport_for(receiver.rt.settings, GOVERNMENT)
    (ref,) = transport.list_received()
    with receiver.rt.sessions() as session:
        from docsvc.organisations.models import Organisation

        org = session.scalar(select(Organisation).where(Organisation.organ_id == GOVERNMENT))
        session.expunge(org)
    intake._fetch_and_process(receiver.rt, org, transport, ref)  # registered, then "crash" before the ack
    assert receiver.poll() == {"registered": 1}  # the retry only acknowledges
    with receiver.rt.sessions() as session:
        assert len(list(session.scalars(select(Document.id).where(Document.direction == "incoming")))) == 1


def _documents_in(agency: Agency) -> list[Document]:
    with agency.rt.sessions() as session:
        rows = list(session.scalars(select(Document).where(Document.direction == "incoming").order_by(Document.id)))
        session.expunge_all()
        return rows


def test_a_batch_registers_in_one_transaction_and_a_crash_before_the_acks_registers_nothing_twice(agencies):
    sender, receiver = agencies
    for subject in ("Kế hoạch một", "Kế hoạch hai", "Kế hoạch ba"):
        issue_to(sender, [GOVERNMENT], subject=subject)
    assert sender.send_due() == ["sent"] * 3
    from docsvc.axis import intake
    from docsvc.axis.transport import transport_for
    from docsvc.organisations.models import Organisation

    transport = transport_for(receiver.rt.settings, GOVERNMENT)
    refs = transport.list_received()
    with receiver.rt.sessions() as session:
        org = session.scalar(select(Organisation).where(Organisation.organ_id == GOVERNMENT))
        session.expunge(org)
    prepared = [intake._fetch_and_prepare(receiver.rt, org, transport, ref) for ref in refs]
    assert intake._register_all(receiver.rt, org, prepared) == {ref.message_id: "registered" for ref in refs}
    # "Crash" here: registered and committed, not acknowledged. The next poll only acknowledges.
    assert receiver.poll() == {"registered": 3}
    assert receiver.poll() == {}
    docs = _documents_in(receiver)
    assert sorted(d.subject for d in docs) == ["Kế hoạch ba", "Kế hoạch hai", "Kế hoạch một"]
    numbers = sorted(d.arrival_number for d in docs)
    assert numbers == list(range(numbers[0], numbers[0] + 3))
    with receiver.rt.sessions() as session:
        entries = list(session.scalars(select(AxisInboxEntry)))
        assert len(entries) == 3 and all(e.acked_at is not None for e in entries)
        assert all(e.verified for e in session.scalars(select(AxisExchange).where(AxisExchange.direction == "incoming")))


def test_a_duplicate_in_a_batch_is_rejected_and_the_rest_still_registered(agencies):
    sender, receiver = agencies
    first = issue_to(sender, [GOVERNMENT], subject="Kế hoạch gốc")
    assert sender.send_due() == ["sent"]
    assert receiver.poll() == {"registered": 1}
    # The same number, symbol and year again under another DocumentId (another issue date), as a buggy
    # re-issue would send it, followed by a new document: both arrive in one batch.
    (original,) = _exchanges(sender, "outgoing")
    with sender.rt.sessions() as session:
        doc = session.get(Document, first["id"])
        doc.issued_date = doc.issued_date.replace(day=2 if doc.issued_date.day == 1 else 1)
        row = session.get(AxisExchange, original.id)
        row.direction = "resent"
        session.add(AxisExchange(organisation_id=row.organisation_id, document_id=row.document_id,
                                 direction="outgoing", counterpart=row.counterpart,
                                 edxml_document_id=row.edxml_document_id, state="pending",
                                 idempotency_key=new_idempotency_key()))
        session.commit()
    issue_to(sender, [GOVERNMENT], subject="Kế hoạch mới")
    assert sender.send_due() == ["sent", "sent"]
    assert receiver.poll() == {"rejected": 1, "registered": 1}
    assert sorted(d.subject for d in _documents_in(receiver)) == ["Kế hoạch gốc", "Kế hoạch mới"]
    with receiver.rt.sessions() as session:
        codes = sorted(e.error_code or "" for e in session.scalars(select(AxisInboxEntry)))
        assert codes == ["", "", "duplicate_registration"]

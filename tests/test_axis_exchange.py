"""The agency side of the interlink axis, service level, on SQLite and PostgreSQL, against a real
``docsvc axis-hub`` process: issue → delivered once → received, verified and registered with an
arrival number → 01/03 back → 04/05/06 → recall 13 → 15 or 16; duplicates, retries with growing
backoff until they give up, broken signatures, unverifiable or unknown statuses and hostile input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from sqlalchemy import select

from docsvc.audit.models import AuditEvent
from docsvc.axis import delivery
from docsvc.axis.models import AxisExchange, AxisInboxEntry, AxisStatusMessage
from docsvc.documents.models import Document, DocumentFile
from docsvc.jobs.models import OutboxMessage
from inter_axis.parse import read_package
from inter_axis.transport import new_idempotency_key
from inter_axis.xmldsig import DSIG_NS
from tests.support.axis_agencies import Agency, issue_to, signed_status, two_agencies
from tests.support.axis_hub import DEPARTMENT, EXAMPLES, GOVERNMENT, NS, document_package, new_hub, status_package
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


# -- helpers for the tests below ----------------------------------------------------------------
def _audit(agency: Agency, action: str) -> list[dict]:
    with agency.rt.sessions() as session:
        return [dict(e.detail, object_id=e.object_id) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))]


def _entry(agency: Agency, message_id: str) -> AxisInboxEntry:
    with agency.rt.sessions() as session:
        entry = session.scalar(select(AxisInboxEntry).where(AxisInboxEntry.message_id == message_id))
        session.expunge_all()
        return entry


def _fetch(hub, organ_id: str, message_id: str, path):
    """The bytes of a package waiting for ``organ_id`` (not acknowledged: it stays in the inbox)."""
    with path.open("wb") as out:
        hub.client(organ_id).get(message_id, out)
    return path


def _edit(path, target, edit):
    """Parse ``path``, let ``edit(tree)`` change it, write the result to ``target``."""
    tree = etree.parse(str(path))
    edit(tree)
    tree.write(str(target), xml_declaration=True, encoding="UTF-8")
    return target


def _drop_digest_value(tree) -> None:
    (digest,) = tree.iter(f"{{{DSIG_NS}}}DigestValue")
    digest.getparent().remove(digest)


# -- a broken signature never blocks the inbox (task: intake turns failures into rejections) --------
def test_packages_whose_signature_has_no_digest_value_never_block_the_inbox(agencies, hub, tmp_path):
    """A Signature without DigestValue once crashed the verifier (AttributeError): the poll failed
    before acknowledging, and the package came back first on every poll. Now, between good packages
    of one poll: the document is taken (its signature verdict stored, flagged unverified; the PAdES
    seal on the PDF is what binds), the recall 13 is rejected (a status acts only on a verified
    signature), both are acknowledged and never fetched again, the good ones are registered."""
    sender, receiver = agencies
    first = issue_to(sender, [GOVERNMENT], subject="Kế hoạch một")
    assert sender.send_due() == ["sent"]
    (ref,) = hub.client(GOVERNMENT).list_received()
    signed = _fetch(hub, GOVERNMENT, ref.message_id, tmp_path / "signed.edxml")

    def another_document_without_digest(tree) -> None:
        _drop_digest_value(tree)
        number = str(first["number"] + 100)  # another DocumentId: the hub refuses a second new one
        tree.find(".//e:CodeNumber", NS).text = number
        header_id = tree.find(".//e:MessageHeader/e:DocumentId", NS)
        header_id.text = header_id.text.replace(f",{first['number']}/", f",{number}/")

    bad_document = hub.client(DEPARTMENT).send(
        _edit(signed, tmp_path / "no-digest.edxml", another_document_without_digest),
        idempotency_key=new_idempotency_key())
    (outgoing,) = _exchanges(sender, "outgoing")
    recall = signed_status(sender, tmp_path / "13.edxml", code="13", document_id=outgoing.edxml_document_id,
                           original_sender=DEPARTMENT, to=GOVERNMENT)
    bad_status = hub.client(DEPARTMENT).update_status(
        _edit(recall, tmp_path / "13-no-digest.edxml", _drop_digest_value), idempotency_key=new_idempotency_key())
    issue_to(sender, [GOVERNMENT], subject="Kế hoạch hai")
    assert sender.send_due() == ["sent"]

    assert receiver.poll() == {"registered": 3, "rejected": 1}
    assert receiver.poll() == {}
    assert hub.client(GOVERNMENT).list_received() == []
    for message_id in (bad_document.message_id, bad_status.message_id):
        assert hub.content_fetches(message_id) == 1  # the next poll did not fetch it again
        assert _entry(receiver, message_id).acked_at is not None

    flagged = _entry(receiver, bad_document.message_id)
    with receiver.rt.sessions() as session:
        exchange = session.get(AxisExchange, flagged.exchange_id)
        assert (exchange.signature_status, exchange.verified) == ("malformed_signature", False)
        assert session.get(Document, flagged.document_id).number == first["number"] + 100
    rejected = _entry(receiver, bad_status.message_id)
    assert (rejected.outcome, rejected.error_code) == ("rejected", "bad_signature")
    assert "malformed_signature" in rejected.error_message
    (event,) = _audit(receiver, "axis.package_rejected")
    assert (event["object_id"], event["error_code"], event["signature"], event["status_code"]) == (
        bad_status.message_id, "bad_signature", "malformed_signature", "13")
    # The good documents are registered; the recall changed nothing on the one it names.
    assert sorted(d.subject for d in _documents_in(receiver) if d.number != first["number"] + 100) == [
        "Kế hoạch hai", "Kế hoạch một"]
    assert {e.state for e in _exchanges(receiver, "incoming")} == {"registered"}


# -- status packages are verified ------------------------------------------------------------
def test_status_signatures_tampered_or_by_another_agency_are_rejected_unsigned_are_flagged(agencies, hub, tmp_path):
    """Statuses from other vendors carry no XML-DSig (or an rsa-sha1 one, VN-STANDARDS §1.7): an
    unsigned recall 13 is applied, since a recall is only a request the clerk answers, but recorded
    and audited as unverified. A status whose signature shows tampering (a genuine 03 changed into
    06 on the way), or one validly signed by another agency than the one it names, is rejected,
    audited with the verdict and acknowledged; the exchange stays as it was."""
    sender, receiver = agencies
    issued = issue_to(sender, [GOVERNMENT])
    assert sender.send_due() == ["sent"]
    assert receiver.poll() == {"registered": 1}
    (incoming,) = _exchanges(receiver, "incoming")

    # Signed with the receiver's own (valid, trusted) seal, but naming the sender as its author.
    from docsvc.axis import packages
    from docsvc.axis.transport import seal_key
    from docsvc.organisations.models import Organisation

    with sender.rt.sessions() as session:
        department = session.get(Organisation, sender.org_id)
        message = packages.status_message(department, DEPARTMENT, incoming.edxml_document_id, "13",
                                          "Thu hồi văn bản", datetime.now(UTC), "Kẻ mạo danh")
    with receiver.rt.sessions() as session:
        wrong_seal = seal_key(session, receiver.rt.settings, session.get(Organisation, receiver.org_id))
        session.commit()
    with packages.signed_file(packages.write_status_to(message, GOVERNMENT), wrong_seal,
                              receiver.rt.settings.axis.max_package_bytes) as (signed, _sha256):
        impostor = hub.client(DEPARTMENT).update_status(signed, idempotency_key=new_idempotency_key())
    assert receiver.poll() == {"rejected": 1}
    assert _entry(receiver, impostor.message_id).error_code == "signer_mismatch"
    (after,) = _exchanges(receiver, "incoming")
    assert (after.state, after.last_status) == ("registered", "03")

    # §1.9 as the sample has it: no To, ResponseFor/OrganId the original sender, here the sender
    # itself, so the hub routes it to the agency it delivered the document to.
    unsigned = status_package(tmp_path / "unsigned-13.edxml", sender=DEPARTMENT, original_sender=DEPARTMENT,
                              document_id=incoming.edxml_document_id, code="13")
    receipt = hub.client(DEPARTMENT).update_status(unsigned, idempotency_key=new_idempotency_key())
    assert receipt.recipients == (GOVERNMENT,)
    assert receiver.poll() == {"status": 1}
    assert receiver.poll() == {}
    (after,) = _exchanges(receiver, "incoming")
    assert (after.state, after.last_status) == ("recall_requested", "13")
    assert [(e["code"], e["signature"]) for e in _audit(receiver, "axis.status_unverified")] == [("13", "no_signature")]
    assert _entry(receiver, receipt.message_id).acked_at is not None

    # 01 and 03 go back signed; a copy of the 03 with its code changed to 06 no longer verifies.
    assert receiver.send_due() == ["sent", "sent"]
    (ref03,) = [r for r in hub.client(DEPARTMENT).list_received() if r.status_code == "03"]

    def to_06(tree) -> None:
        tree.find(".//e:StatusCode", NS).text = "06"

    tampered = _edit(_fetch(hub, DEPARTMENT, ref03.message_id, tmp_path / "03.edxml"), tmp_path / "06.edxml", to_06)
    changed = hub.client(GOVERNMENT).update_status(tampered, idempotency_key=new_idempotency_key())
    assert sender.poll() == {"status": 2, "rejected": 1}
    history = _history(sender, issued["id"])[0]
    assert history["last_status"] == "03" and [s["code"] for s in history["statuses"]] == ["01", "03"]
    assert _entry(sender, changed.message_id).error_code == "bad_signature"
    assert [e["signature"] for e in _audit(sender, "axis.package_rejected")] == ["digest_mismatch"]
    received = _audit(sender, "axis.status_received")
    assert [(e["code"], e["signature"]) for e in received] == [("01", "valid"), ("03", "valid")]
    assert all("UID=000.00.00.G22" in e["signer"] for e in received)


# -- status codes outside §1.9 --------------------------------------------------------------------
@pytest.mark.parametrize("code", ["003", "999"])
def test_an_unknown_status_code_is_rejected_at_intake_and_does_not_block_the_inbox(agencies, hub, tmp_path, code):
    """The hub refuses such a code (see test_transport_hub); another axis may deliver it anyway. It
    would not fit the two-character columns (a DataError on PostgreSQL, the poll failing for ever):
    it is rejected with a stable code and acknowledged, and the document behind it is registered."""
    sender, receiver = agencies
    issue_to(sender, [GOVERNMENT], subject="Kế hoạch một")
    assert sender.send_due() == ["sent"]
    assert receiver.poll() == {"registered": 1}
    (incoming,) = _exchanges(receiver, "incoming")
    odd = signed_status(sender, tmp_path / "odd.edxml", code="13", document_id=incoming.edxml_document_id,
                        original_sender=DEPARTMENT, to=GOVERNMENT)

    def with_code(tree) -> None:
        tree.find(".//e:StatusCode", NS).text = code

    message_id = hub.deliver_unchecked(_edit(odd, tmp_path / f"{code}.edxml", with_code), sender=DEPARTMENT,
                                       recipient=GOVERNMENT, kind="status")
    issue_to(sender, [GOVERNMENT], subject="Kế hoạch hai")
    assert sender.send_due() == ["sent"]

    assert receiver.poll() == {"rejected": 1, "registered": 1}
    assert receiver.poll() == {}
    entry = _entry(receiver, message_id)
    assert (entry.outcome, entry.error_code, entry.acked_at is not None) == ("rejected", "unknown_status_code", True)
    assert repr(code) in entry.error_message
    assert [(e["object_id"], e["error_code"]) for e in _audit(receiver, "axis.package_rejected")] == [
        (message_id, "unknown_status_code")]
    (first, _second) = _exchanges(receiver, "incoming")
    assert (first.state, first.last_status) == ("registered", "03")
    with receiver.rt.sessions() as session:
        assert session.scalar(select(AxisStatusMessage.id).where(AxisStatusMessage.direction == "received")) is None


# -- recall refused (16); ResponseFor names the original sender ----------------------------------
def test_a_refused_recall_keeps_the_document_and_statuses_name_the_original_sender(agencies, hub, tmp_path):
    sender, receiver = agencies
    issued = issue_to(sender, [GOVERNMENT])
    assert sender.send_due() == ["sent"]
    assert receiver.poll() == {"registered": 1}
    (incoming,) = _exchanges(receiver, "incoming")
    assert receiver.send_due() == ["sent", "sent"]
    assert sender.poll() == {"status": 2}

    recalled = sender.client.post(f"/documents/{issued['id']}/axis/recall", json={"reason": "Sai sót"},
                                  headers=sender.clerk.headers)
    assert recalled.status_code == 202, recalled.text
    assert sender.send_due() == ["sent"]
    # The 13 as it travels: from the original sender, about its document, so ResponseFor/OrganId is
    # the sender itself (§1.9); the hub routes it by its To, the recipient.
    (ref,) = hub.client(GOVERNMENT).list_received()
    with read_package(_fetch(hub, GOVERNMENT, ref.message_id, tmp_path / "13.edxml")) as parsed:
        assert (parsed.status.status_code, parsed.status.from_org.organ_id) == ("13", DEPARTMENT)
        assert parsed.status.response_for.organ_id == DEPARTMENT
        assert parsed.status.response_for.document_id == incoming.edxml_document_id
    assert [t.text for t in etree.parse(str(tmp_path / "13.edxml")).findall(".//e:To/e:OrganId", NS)] == [GOVERNMENT]
    assert receiver.poll() == {"status": 1}
    assert _exchanges(receiver, "incoming")[0].state == "recall_requested"
    with sender.rt.sessions() as session:
        recall_id = session.scalar(select(AxisStatusMessage.message_id).where(AxisStatusMessage.code == "13"))
    deliveries = hub.client(DEPARTMENT).sent_status(recall_id).deliveries
    assert [(d.recipient, d.state) for d in deliveries] == [(GOVERNMENT, "delivered")]

    refused = receiver.client.post(f"/documents/{incoming.document_id}/axis/recall-answer",
                                   json={"code": "16", "description": "Văn bản đã được triển khai"},
                                   headers=receiver.clerk.headers)
    assert refused.status_code == 202, refused.text
    assert receiver.send_due() == ["sent"]
    (answer,) = hub.client(DEPARTMENT).list_received()
    with read_package(_fetch(hub, DEPARTMENT, answer.message_id, tmp_path / "16.edxml")) as parsed:
        assert (parsed.status.status_code, parsed.status.from_org.organ_id) == ("16", GOVERNMENT)
        assert parsed.status.response_for.organ_id == DEPARTMENT
    assert sender.poll() == {"status": 1}

    sent_history = _history(sender, issued["id"])[0]
    assert sent_history["last_status"] == "16"
    assert [(s["direction"], s["code"]) for s in sent_history["statuses"]][-2:] == [("sent", "13"), ("received", "16")]
    assert sent_history["statuses"][-1]["description"] == "Văn bản đã được triển khai"
    received_history = _history(receiver, incoming.document_id)[0]
    assert (received_history["state"], received_history["last_status"]) == ("registered", "16")
    with receiver.rt.sessions() as session:
        assert session.get(Document, incoming.document_id).status == "registered"
    # The document stays in normal processing: a processing status may still be sent.
    assert receiver.client.post(f"/documents/{incoming.document_id}/axis/status", json={"code": "04"},
                                headers=receiver.clerk.headers).status_code == 202


# -- the receiver's duplicate key: (sender OrganId, DocumentId) -----------------------------------
@pytest.mark.parametrize("case", ["renamed_sender", "non_numeric_number"])
def test_a_second_package_with_the_same_sender_and_document_id_is_a_duplicate(agencies, hub, tmp_path, case):
    """Our hub refuses a second *new* document under one DocumentId, but another axis may not refuse
    at all (delivered here without the hub's checks). docsvc's own registration key (issuer, year,
    number, symbol) misses a sender that renamed itself in between, and a CodeNumber that is not a
    number; the axis key (sender OrganId, DocumentId) catches both."""
    _sender, receiver = agencies
    number = "31a" if case == "non_numeric_number" else "31"
    document_id = f"{DEPARTMENT},2025/03/14,{number}/KH-STTTT"

    def package(name: str, organ_name: str, business_type: str):
        path = document_package(tmp_path / name, sender=DEPARTMENT, recipients=(GOVERNMENT,),
                                document_id=document_id, business_type=business_type)

        def fill(tree) -> None:
            tree.find(".//e:CodeNumber", NS).text = number
            tree.find(".//e:CodeNotation", NS).text = "KH-STTTT"
            tree.find(".//e:MessageHeader/e:From/e:OrganName", NS).text = organ_name

        return _edit(path, path, fill)

    renamed = "Sở Khoa học, Công nghệ và Thông tin" if case == "renamed_sender" else "Sở Thông tin và Truyền thông"
    department = hub.client(DEPARTMENT)
    first = department.send(package("first.edxml", "Sở Thông tin và Truyền thông", "0"),
                            idempotency_key=new_idempotency_key())
    again = hub.deliver_unchecked(package("again.edxml", renamed, "0"), sender=DEPARTMENT, recipient=GOVERNMENT,
                                  kind="document")

    assert receiver.poll() == {"registered": 1, "rejected": 1}
    assert receiver.poll() == {}
    kept = _entry(receiver, first.message_id)
    duplicate = _entry(receiver, again)
    assert (duplicate.outcome, duplicate.error_code, duplicate.document_id) == ("rejected", "duplicate_document", None)
    assert duplicate.acked_at is not None
    (event,) = _audit(receiver, "axis.package_rejected")
    assert (event["error_code"], event["existing_document_id"]) == ("duplicate_document", kept.document_id)
    (doc,) = _documents_in(receiver)
    assert (doc.id, doc.issuer, doc.sender_name) == (kept.document_id, DEPARTMENT, "Sở Thông tin và Truyền thông")
    assert doc.number == (None if case == "non_numeric_number" else 31)


@pytest.mark.parametrize("business_type", ["1", "2", "3"])
def test_revoke_update_and_replace_packages_are_not_filed_as_new_documents(agencies, hub, business_type):
    """Intake takes new documents (type 0) only: revoking, updating or replacing one needs a clerk's
    decision. Such a package is rejected with its own code and acknowledged, nothing is registered,
    and the document it is about stays as it was."""
    sender, receiver = agencies
    issue_to(sender, [GOVERNMENT])
    assert sender.send_due() == ["sent"]
    assert receiver.poll() == {"registered": 1}
    (incoming,) = _exchanges(receiver, "incoming")
    path = document_package(receiver.rt.settings.data_dir / f"type-{business_type}.edxml", sender=DEPARTMENT,
                            recipients=(GOVERNMENT,), document_id=incoming.edxml_document_id,
                            business_type=business_type)
    sent = hub.client(DEPARTMENT).send(path, idempotency_key=new_idempotency_key())
    assert receiver.poll() == {"rejected": 1}
    entry = _entry(receiver, sent.message_id)
    assert (entry.error_code, entry.acked_at is not None) == ("unsupported_business_type", True)
    assert len(_documents_in(receiver)) == 1
    (after,) = _exchanges(receiver, "incoming")
    assert (after.state, after.document_id) == (incoming.state, incoming.document_id)


def test_a_broken_trust_root_setting_fails_the_poll_and_throws_nothing_away(agencies, hub, tmp_path):
    """A trust-root file gone missing is our failure, not the package's: the poll fails, nothing
    is rejected or acknowledged, and once the setting is mended the package is registered."""
    from docsvc import errors
    from docsvc.axis import intake

    sender, receiver = agencies
    issue_to(sender, [GOVERNMENT])
    assert sender.send_due() == ["sent"]
    signing = receiver.rt.settings.signing
    kept = list(signing.trust_roots)
    signing.trust_roots = [tmp_path / "gone.pem"]
    intake._trust_cache.clear()
    try:
        with pytest.raises(errors.SigningUnavailableError):
            receiver.poll()
    finally:
        signing.trust_roots = kept
        intake._trust_cache.clear()
    assert _audit(receiver, "axis.package_rejected") == []
    assert [r.kind for r in hub.client(GOVERNMENT).list_received()] == ["document"]  # still waiting
    assert receiver.poll() == {"registered": 1}


# -- backoff until the sender gives up ------------------------------------------------------------
def test_backoff_doubles_per_attempt_and_the_last_attempt_fails_for_good(tmp_path, database_url, shared_pki_dir,  # noqa: F811
                                                                         hub):
    """Base 0.2 s, cap 2 s, ±25 % jitter: the delays after attempts 1-4 lie in disjoint, growing
    ranges; the fifth attempt (max_attempts) ends ``failed``, audited, and is never tried again."""
    import time

    with two_agencies(tmp_path, database_url, shared_pki_dir, hub, sender_axis={"max_attempts": 5}) as pair:
        sender, receiver = pair
        issue_to(sender, [GOVERNMENT])
        (row,) = _exchanges(sender, "outgoing")
        hub.stop()
        delays, states = [], []
        try:
            for _ in range(5):
                states += sender.send_due()
                with sender.rt.sessions() as session:
                    row = session.get(AxisExchange, row.id)
                    session.expunge(row)
                if row.state != "retrying":
                    break
                delays.append((row.next_attempt_at - row.updated_at).total_seconds())
                # Not due before its delay; asked only while the due time is clearly ahead, so a
                # loaded machine reaching it in between is not taken for an early retry.
                if datetime.now(UTC) < row.next_attempt_at - timedelta(milliseconds=100):
                    assert sender.send_due() == []
                time.sleep(delays[-1] + 0.05)
        finally:
            hub.start()
        assert states == ["retrying"] * 4 + ["failed"]
        for attempt, delay in enumerate(delays, start=1):
            nominal = 0.2 * 2 ** (attempt - 1)
            assert 0.75 * nominal - 0.01 <= delay <= 1.25 * nominal, (attempt, delays)
        assert delays == sorted(delays) and len(set(delays)) == 4
        assert (row.state, row.attempts, row.error_code, row.next_attempt_at) == ("failed", 5, "unavailable", None)
        assert row.error_message.startswith("gave up after 5 attempts")
        events = [e for e in _audit(sender, "axis.document_retrying") + _audit(sender, "axis.document_failed")
                  if e["object_id"] == str(row.id)]
        assert [(e["attempts"], e["error_code"]) for e in events] == [(n, "unavailable") for n in range(1, 6)]
        assert _audit(sender, "axis.document_failed")[-1]["attempts"] == 5
        time.sleep(2.6)  # beyond any delay: a failed row is not due again, even with the axis back
        assert sender.send_due() == []
        assert receiver.poll() == {}
        assert _history(sender, row.document_id)[0]["state"] == "failed"

"""The ``AxisTransport`` contract, run with ``HubAxisTransport`` against a real ``docsvc axis-hub``
process on loopback, once with its embedded SQLite database and once with PostgreSQL."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import httpx
import pytest

from inter_axis.transport import Agency, AxisTransport, TransportError, new_idempotency_key
from tests.support.axis_hub import (
    DEPARTMENT,
    EXAMPLES,
    GOVERNMENT,
    PROVINCE,
    Hub,
    document_package,
    new_hub,
    pg_database,
    status_package,
)

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/standards/examples is not beside the checkout")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hub(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"hub-{request.param}")
    if request.param == "sqlite":
        hub = new_hub(tmp, max_package_bytes=1024**2).start()
        yield hub
        hub.stop()
        return
    with pg_database() as url:
        hub = new_hub(tmp, database_url=url, max_package_bytes=1024**2).start()
        yield hub
        hub.stop()


def _doc_id(sender: str = PROVINCE) -> str:
    return f"{sender},2025/03/14,{uuid.uuid4().int % 10000}/CT-UBND"


def _refused(call, code: str) -> TransportError:
    with pytest.raises(TransportError) as info:
        call()
    assert info.value.code == code, info.value
    return info.value


def _nothing_stored(hub: Hub, before: list[Path]) -> None:
    assert hub.stored_packages() == before
    assert hub.partial_uploads() == []


def test_two_agencies_send_receive_ack_and_answer_with_a_status(hub: Hub, tmp_path: Path):
    province, government, department = hub.client(PROVINCE), hub.client(GOVERNMENT), hub.client(DEPARTMENT)
    assert isinstance(province, AxisTransport)
    doc_id = _doc_id()
    package = document_package(tmp_path / "doc.edxml", recipients=(GOVERNMENT, DEPARTMENT), document_id=doc_id)

    receipt = province.send(package, idempotency_key=new_idempotency_key())
    assert (receipt.document_id, receipt.recipients, receipt.kind, receipt.replayed) == (
        doc_id,
        (GOVERNMENT, DEPARTMENT),
        "document",
        False,
    )

    waiting = [r for r in government.list_received() if r.message_id == receipt.message_id]
    assert len(waiting) == 1
    ref = waiting[0]
    assert (ref.from_organ_id, ref.document_id, ref.kind, ref.status_code) == (PROVINCE, doc_id, "document", None)
    out = io.BytesIO()
    assert government.get(receipt.message_id, out) == package.stat().st_size
    assert out.getvalue() == package.read_bytes()
    _refused(lambda: province.get(receipt.message_id, io.BytesIO()), "not_found")  # the sender is no recipient

    government.ack(receipt.message_id)
    government.ack(receipt.message_id)  # idempotent
    assert receipt.message_id not in {r.message_id for r in government.list_received()}
    assert receipt.message_id in {r.message_id for r in department.list_received()}
    states = {d.recipient: d.state for d in province.sent_status(receipt.message_id).deliveries}
    assert states == {GOVERNMENT: "delivered", DEPARTMENT: "pending"}
    _refused(lambda: government.sent_status(receipt.message_id), "not_found")

    status = status_package(tmp_path / "status.edxml", sender=GOVERNMENT, document_id=doc_id, code="03")
    status_receipt = government.update_status(status, idempotency_key=new_idempotency_key())
    assert (status_receipt.kind, status_receipt.recipients) == ("status", (PROVINCE,))
    answers = [r for r in province.list_received() if r.message_id == status_receipt.message_id]
    assert [(a.kind, a.status_code, a.document_id, a.from_organ_id) for a in answers] == [
        ("status", "03", doc_id, GOVERNMENT)
    ]
    # A second status about the same document (05: in processing) is not a duplicate.
    later = status_package(tmp_path / "status5.edxml", sender=GOVERNMENT, document_id=doc_id, code="05")
    assert government.send(later, idempotency_key=new_idempotency_key()).kind == "status"


def test_several_packages_are_acknowledged_in_one_request(hub: Hub, tmp_path: Path):
    province, government = hub.client(PROVINCE), hub.client(GOVERNMENT)
    ids = [province.send(document_package(tmp_path / f"d{i}.edxml", recipients=(GOVERNMENT,), document_id=_doc_id()),
                         idempotency_key=new_idempotency_key()).message_id for i in range(3)]
    assert set(ids) <= {r.message_id for r in government.list_received(limit=1000)}
    government.ack_many(ids[:2])
    government.ack_many(ids[:2])  # idempotent
    pending = {r.message_id for r in government.list_received(limit=1000)}
    assert ids[2] in pending and not set(ids[:2]) & pending
    # An id not addressed to the caller is not_found; the others in the request are acknowledged all the same.
    error = _refused(lambda: government.ack_many([ids[2], "0" * 32]), "not_found")
    assert error.detail["unknown"] == ["0" * 32]
    assert ids[2] not in {r.message_id for r in government.list_received(limit=1000)}
    _refused(lambda: province.ack_many(ids[:1]), "not_found")  # the sender is no recipient
    assert {d.state for d in province.sent_status(ids[0]).deliveries} == {"delivered"}


def test_agency_directory(hub: Hub):
    agencies = hub.client(DEPARTMENT).list_agencies()
    assert [a.organ_id for a in agencies] == sorted([PROVINCE, DEPARTMENT, GOVERNMENT])
    assert Agency(GOVERNMENT, "Văn phòng Chính phủ") in agencies


def test_wrong_secret_or_agency_is_unauthorized(hub: Hub, tmp_path: Path):
    before = hub.stored_packages()
    package = document_package(tmp_path / "doc.edxml", document_id=_doc_id())
    impostor = hub.client(PROVINCE, secret="not-the-secret-" + "x" * 30)
    _refused(impostor.list_agencies, "unauthorized")
    _refused(lambda: impostor.send(package, idempotency_key=new_idempotency_key()), "unauthorized")
    # The government's real secret, claiming to be the province.
    claims_other = hub.client(PROVINCE, secret=hub.secrets[GOVERNMENT])
    _refused(claims_other.list_received, "unauthorized")
    response = httpx.get(hub.url + "/v1/agencies")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    _nothing_stored(hub, before)


def test_sender_must_be_the_authenticated_agency(hub: Hub, tmp_path: Path):
    before = hub.stored_packages()
    forged = document_package(tmp_path / "doc.edxml", sender=DEPARTMENT, document_id=_doc_id(DEPARTMENT))
    error = _refused(
        lambda: hub.client(PROVINCE).send(forged, idempotency_key=new_idempotency_key()), "sender_mismatch"
    )
    assert error.detail["from_organ_id"] == DEPARTMENT
    _nothing_stored(hub, before)


def test_unknown_recipient_is_refused_and_nothing_is_delivered(hub: Hub, tmp_path: Path):
    before = hub.stored_packages()
    package = document_package(tmp_path / "doc.edxml", recipients=(GOVERNMENT, "000.00.99.H41"), document_id=_doc_id())
    error = _refused(
        lambda: hub.client(PROVINCE).send(package, idempotency_key=new_idempotency_key()), "unknown_recipient"
    )
    assert error.detail["unknown"] == ["000.00.99.H41"]
    _nothing_stored(hub, before)
    assert package.name not in {r.document_id for r in hub.client(GOVERNMENT).list_received(1000)}


def test_retry_returns_the_original_receipt_and_a_reused_document_id_is_a_duplicate(hub: Hub, tmp_path: Path):
    province, government = hub.client(PROVINCE), hub.client(GOVERNMENT)
    doc_id = _doc_id()
    package = document_package(tmp_path / "doc.edxml", document_id=doc_id)
    key = new_idempotency_key()
    first = province.send(package, idempotency_key=key)
    stored = hub.stored_packages()

    retry = province.send(package, idempotency_key=key)  # as after a lost response
    assert (retry.message_id, retry.recipients, retry.replayed) == (first.message_id, first.recipients, True)

    # The same DocumentId in a genuinely new package (another key, other bytes) is refused.
    again = document_package(tmp_path / "again.edxml", document_id=doc_id, attachment_bytes=4096)
    error = _refused(lambda: province.send(again, idempotency_key=new_idempotency_key()), "duplicate_document")
    assert error.detail["message_id"] == first.message_id and error.detail["recipients"] == [GOVERNMENT]
    # ... and so is re-using the key for different bytes.
    _refused(lambda: province.send(again, idempotency_key=key), "idempotency_conflict")
    assert hub.stored_packages() == stored
    assert [r.message_id for r in government.list_received(1000) if r.document_id == doc_id] == [first.message_id]

    # A revocation (BussinessDocType 1) refers to the delivered DocumentId and is not a duplicate.
    revoke = document_package(tmp_path / "revoke.edxml", document_id=doc_id, business_type="1")
    assert province.send(revoke, idempotency_key=new_idempotency_key()).message_id != first.message_id


def test_oversize_is_refused_before_and_while_uploading(hub: Hub, tmp_path: Path):
    before = hub.stored_packages()
    big = document_package(tmp_path / "big.edxml", document_id=_doc_id(), attachment_bytes=2 * 1024**2)
    province = hub.client(PROVINCE)
    # The hub's limit (1 MiB) applies to a client that did not check locally.
    unchecked = hub.client(PROVINCE, max_package_bytes=10 * 1024**2)
    _refused(lambda: unchecked.send(big, idempotency_key=new_idempotency_key()), "too_large")
    # A client configured like the hub refuses before sending.
    local = hub.client(PROVINCE, max_package_bytes=1024**2)
    error = _refused(lambda: local.send(big, idempotency_key=new_idempotency_key()), "too_large")
    assert error.detail["size"] == big.stat().st_size
    # Without a Content-Length (chunked), the hub stops at its limit.
    data = big.read_bytes()[: 1024**2 + 200_000]
    response = httpx.post(
        hub.url + "/v1/messages",
        content=iter([data[i : i + 65536] for i in range(0, len(data), 65536)]),
        headers={"Authorization": f"Bearer {hub.secrets[PROVINCE]}", "Idempotency-Key": "k" * 16},
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    _nothing_stored(hub, before)
    assert province.list_agencies()  # the hub is still serving


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><unclosed>', "malformed_xml"),
        (b"<edXML><unclosed/></edXML>", "wrong_namespace"),
        (b"not xml at all", "malformed_xml"),
        (
            b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&b;</edXML>',
            "hostile_xml",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&x;</edXML>',
            "hostile_xml",
        ),
    ],
)
def test_malformed_and_hostile_packages_are_refused_and_nothing_is_stored(hub: Hub, body: bytes, reason: str):
    before = hub.stored_packages()
    error = _refused(
        lambda: hub.client(PROVINCE).send(io.BytesIO(body), idempotency_key=new_idempotency_key()), "invalid_package"
    )
    assert error.detail["reason"] == reason
    _nothing_stored(hub, before)


def test_package_cut_off_after_its_header_is_refused(hub: Hub, tmp_path: Path):
    before = hub.stored_packages()
    whole = document_package(tmp_path / "doc.edxml", document_id=_doc_id(), attachment_bytes=20_000).read_bytes()
    cut = whole[: whole.index(b"</edXML:edXMLHeader>") + 2000]
    error = _refused(
        lambda: hub.client(PROVINCE).send(io.BytesIO(cut), idempotency_key=new_idempotency_key()), "invalid_package"
    )
    assert error.detail["reason"] == "malformed_xml"
    _nothing_stored(hub, before)


def test_update_status_refuses_a_document_package(hub: Hub, tmp_path: Path):
    before = hub.stored_packages()
    package = document_package(tmp_path / "doc.edxml", document_id=_doc_id())
    error = _refused(
        lambda: hub.client(PROVINCE).update_status(package, idempotency_key=new_idempotency_key()), "invalid_package"
    )
    assert error.detail["reason"] == "wrong_kind"
    _nothing_stored(hub, before)


def test_unknown_message_is_not_found(hub: Hub):
    government = hub.client(GOVERNMENT)
    _refused(lambda: government.get(uuid.uuid4().hex, io.BytesIO()), "not_found")
    _refused(lambda: government.ack(uuid.uuid4().hex), "not_found")


def test_unreachable_hub_is_unavailable(tmp_path: Path):
    from tests.support.server import free_port

    hub = new_hub(tmp_path)
    hub.port = free_port()  # nothing listens there
    error = _refused(lambda: hub.client(PROVINCE, connect_timeout=2).list_agencies(), "unavailable")
    assert error.retryable


def test_concurrent_sends_of_one_document_deliver_one_copy(hub: Hub, tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    doc_id = _doc_id()
    package = document_package(tmp_path / "doc.edxml", document_id=doc_id, attachment_bytes=50_000)
    key = new_idempotency_key()

    def send(use_same_key: bool):
        try:
            return hub.client(PROVINCE).send(package, idempotency_key=key if use_same_key else new_idempotency_key())
        except TransportError as exc:
            return exc

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(send, [True, True, True, False, False, False]))
    receipts = [o for o in outcomes if not isinstance(o, TransportError)]
    errors = [o for o in outcomes if isinstance(o, TransportError)]
    assert {r.message_id for r in receipts} and len({r.message_id for r in receipts}) == 1
    assert {e.code for e in errors} <= {"duplicate_document"}
    assert [r.message_id for r in hub.client(GOVERNMENT).list_received(1000) if r.document_id == doc_id] == [
        receipts[0].message_id
    ]
    assert hub.partial_uploads() == []


@pytest.mark.parametrize("code", ["003", "999", "07"])
def test_a_status_code_outside_the_standard_is_refused_and_nothing_is_stored(hub: Hub, tmp_path: Path, code: str):
    """Three digits would not fit the hub's two-character column (a DataError, a 500 on PostgreSQL);
    a reserved code (07-12, 14) means nothing to the recipient. Both are a 422 with a stable reason."""
    before = hub.stored_packages()
    status = status_package(tmp_path / "status.edxml", sender=GOVERNMENT, document_id=_doc_id(), code=code)
    error = _refused(
        lambda: hub.client(GOVERNMENT).update_status(status, idempotency_key=new_idempotency_key()), "invalid_package"
    )
    assert error.detail["reason"] == "unknown_status_code"
    response = httpx.post(
        hub.url + "/v1/messages",
        content=status.read_bytes(),
        headers={"Authorization": f"Bearer {hub.secrets[GOVERNMENT]}", "Idempotency-Key": new_idempotency_key(),
                 "Content-Type": "application/xml"},
    )
    assert response.status_code == 422, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["detail"]["reason"]) == (
        "invalid_package", "unknown_status_code")
    _nothing_stored(hub, before)
    assert hub.client(GOVERNMENT).list_agencies()  # still serving


def test_a_status_goes_to_its_to_and_a_recall_without_one_to_the_recipients_of_the_document(hub: Hub,
                                                                                             tmp_path: Path):
    """ResponseFor/OrganId is the original sender (§1.9): it routes a recipient's answer, not a recall
    13 the original sender sends itself. A To in the status decides; without one, such a recall
    goes to every agency the hub delivered the document to; each recipient's copy has its own state."""
    province, government, department = hub.client(PROVINCE), hub.client(GOVERNMENT), hub.client(DEPARTMENT)
    doc_id = _doc_id()
    province.send(document_package(tmp_path / "doc.edxml", recipients=(GOVERNMENT, DEPARTMENT), document_id=doc_id),
                  idempotency_key=new_idempotency_key())

    to_one = status_package(tmp_path / "13-to.edxml", sender=PROVINCE, original_sender=PROVINCE, document_id=doc_id,
                            code="13", to=(DEPARTMENT,))
    addressed = province.update_status(to_one, idempotency_key=new_idempotency_key())
    assert addressed.recipients == (DEPARTMENT,)
    assert addressed.message_id not in {r.message_id for r in government.list_received(1000)}
    assert addressed.message_id not in {r.message_id for r in province.list_received(1000)}
    department.ack(addressed.message_id)
    assert [(d.recipient, d.state) for d in province.sent_status(addressed.message_id).deliveries] == [
        (DEPARTMENT, "delivered")]

    bare = status_package(tmp_path / "13.edxml", sender=PROVINCE, original_sender=PROVINCE, document_id=doc_id,
                          code="13")
    broadcast = province.update_status(bare, idempotency_key=new_idempotency_key())
    assert sorted(broadcast.recipients) == sorted((GOVERNMENT, DEPARTMENT))
    government.ack(broadcast.message_id)
    states = {d.recipient: d.state for d in province.sent_status(broadcast.message_id).deliveries}
    assert states == {GOVERNMENT: "delivered", DEPARTMENT: "pending"}

    # The recipient's answer (15) needs no To: it goes to ResponseFor/OrganId, the original sender.
    answer = status_package(tmp_path / "15.edxml", sender=GOVERNMENT, original_sender=PROVINCE, document_id=doc_id,
                            code="15")
    assert government.update_status(answer, idempotency_key=new_idempotency_key()).recipients == (PROVINCE,)

    before = hub.stored_packages()
    unknown = status_package(tmp_path / "13-unknown.edxml", sender=PROVINCE, original_sender=PROVINCE,
                             document_id=doc_id, code="13", to=("000.00.99.H41",))
    error = _refused(lambda: province.update_status(unknown, idempotency_key=new_idempotency_key()),
                     "unknown_recipient")
    assert error.detail["unknown"] == ["000.00.99.H41"]
    never_sent = status_package(tmp_path / "13-never.edxml", sender=PROVINCE, original_sender=PROVINCE,
                                document_id=_doc_id(), code="13")
    error = _refused(lambda: province.update_status(never_sent, idempotency_key=new_idempotency_key()),
                     "invalid_package")
    assert error.detail["reason"] == "no_recipient"
    _nothing_stored(hub, before)

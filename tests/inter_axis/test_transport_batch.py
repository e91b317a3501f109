"""``send_many`` and ``get_many`` of ``HubAxisTransport`` against a real ``docsvc axis-hub`` process on
loopback (SQLite and PostgreSQL): one outcome per package, only the good ones stored, retries
replayed, the batch caps, and the framing of the wire format refused when it is not followed."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import httpx
import pytest

from inter_axis.client import HubAxisTransport
from inter_axis.transport import SendReceipt, TransportError, new_idempotency_key
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

MiB = 1024**2
#: The module's hub: packages up to 1 MiB, batches of at most 8 packages and 3 MiB.
CAPS = {"max_batch_packages": 8, "max_batch_bytes": 3 * MiB}
HOSTILE = (b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&x;</edXML>')


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hub(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"hub-batch-{request.param}")
    options = ("--max-batch-packages", str(CAPS["max_batch_packages"]), "--max-batch-bytes",
               str(CAPS["max_batch_bytes"]))
    if request.param == "sqlite":
        hub = new_hub(tmp, max_package_bytes=MiB, options=options).start()
        yield hub
        hub.stop()
        return
    with pg_database() as url:
        hub = new_hub(tmp, database_url=url, max_package_bytes=MiB, options=options).start()
        yield hub
        hub.stop()


def _client(hub: Hub, organ_id: str = PROVINCE, **spec) -> HubAxisTransport:
    """A client that knows the hub's caps (and checks no package size locally unless told)."""
    return hub.client(organ_id, **({"max_package_bytes": 10 * MiB} | CAPS | spec))


def _doc_id(sender: str = PROVINCE) -> str:
    return f"{sender},2025/03/14,{uuid.uuid4().hex[:12]}/CT-UBND"


def _doc(tmp_path: Path, name: str, **kwargs) -> Path:
    kwargs.setdefault("document_id", _doc_id(kwargs.get("sender", PROVINCE)))
    return document_package(tmp_path / f"{name}.edxml", **kwargs)


def _codes(outcomes: list) -> list[str]:
    """Each outcome as a word: an error's code, ``ok`` (a receipt or a path) or ``replayed``."""
    return [o.code if isinstance(o, TransportError) else ("replayed" if getattr(o, "replayed", False) else "ok")
            for o in outcomes]


def _inbox(hub: Hub, organ_id: str = GOVERNMENT) -> list[str]:
    return [r.message_id for r in hub.client(organ_id).list_received(1000)]


def test_a_mixed_batch_answers_per_package_and_stores_only_the_good_ones(hub: Hub, tmp_path: Path):
    province = _client(hub)
    earlier_id = _doc_id()
    earlier = province.send(_doc(tmp_path, "earlier", document_id=earlier_id), idempotency_key=new_idempotency_key())
    twice_id = _doc_id()
    good = _doc(tmp_path, "good", recipients=(GOVERNMENT, DEPARTMENT), attachment_bytes=20_000)
    status = status_package(tmp_path / "status.edxml", sender=PROVINCE, original_sender=GOVERNMENT,
                            document_id=_doc_id(GOVERNMENT), code="03")
    batch = [
        (good, new_idempotency_key()),
        (_doc(tmp_path, "dup", document_id=earlier_id, attachment_bytes=500), new_idempotency_key()),
        (_doc(tmp_path, "forged", sender=DEPARTMENT), new_idempotency_key()),
        (io.BytesIO(HOSTILE), new_idempotency_key()),
        (_doc(tmp_path, "big", attachment_bytes=2 * MiB), new_idempotency_key()),
        (status, new_idempotency_key()),
        (_doc(tmp_path, "unknown", recipients=(GOVERNMENT, "000.00.99.H41")), new_idempotency_key()),
        (_doc(tmp_path, "first", document_id=twice_id), new_idempotency_key()),
        (_doc(tmp_path, "second", document_id=twice_id, attachment_bytes=700), new_idempotency_key()),
        (tmp_path / "missing.edxml", new_idempotency_key()),
        (_doc(tmp_path, "last"), new_idempotency_key()),
    ]
    stored, government_inbox = hub.stored_packages(), _inbox(hub)

    outcomes = province.send_many(batch)

    assert _codes(outcomes) == ["ok", "duplicate_document", "sender_mismatch", "invalid_package", "too_large", "ok",
                                "unknown_recipient", "ok", "duplicate_document", "invalid_package", "ok"]
    assert outcomes[0].recipients == (GOVERNMENT, DEPARTMENT) and outcomes[0].kind == "document"
    assert outcomes[1].detail["message_id"] == earlier.message_id
    assert outcomes[3].detail["reason"] == "hostile_xml"
    assert outcomes[4].detail["limit"] == MiB
    assert (outcomes[5].kind, outcomes[5].recipients) == ("status", (GOVERNMENT,))
    assert outcomes[6].detail["unknown"] == ["000.00.99.H41"]
    # The same new DocumentId twice in one batch: the second is a duplicate of the first, as sent one by one.
    assert outcomes[8].detail["message_id"] == outcomes[7].message_id
    good_ids = [o.message_id for o in outcomes if isinstance(o, SendReceipt)]
    assert len(set(good_ids)) == 4
    assert len(hub.stored_packages()) == len(stored) + 4 and hub.partial_uploads() == []
    assert sorted(set(_inbox(hub)) - set(government_inbox)) == sorted(good_ids)
    assert outcomes[0].message_id in _inbox(hub, DEPARTMENT)
    # Listed in the batch's order, each with the digest of the bytes sent.
    refs = {r.message_id: r for r in hub.client(GOVERNMENT).list_received(1000)}
    assert [m for m in refs if m in good_ids] == good_ids
    out = io.BytesIO()
    hub.client(GOVERNMENT).get(outcomes[0].message_id, out)
    assert out.getvalue() == good.read_bytes()

    # The retry of the whole batch (its response lost; its stream read again from where it began):
    # the same answers, replayed, nothing twice.
    again = province.send_many(batch)
    assert _codes(again) == ["replayed", "duplicate_document", "sender_mismatch", "invalid_package", "too_large",
                             "replayed", "unknown_recipient", "replayed", "duplicate_document", "invalid_package",
                             "replayed"]
    assert [o.message_id for o in again if isinstance(o, SendReceipt)] == good_ids
    assert len(hub.stored_packages()) == len(stored) + 4 and hub.partial_uploads() == []
    assert sorted(set(_inbox(hub)) - set(government_inbox)) == sorted(good_ids)


def test_a_key_reused_in_or_across_batches(hub: Hub, tmp_path: Path):
    province = _client(hub)
    key, other = new_idempotency_key(), new_idempotency_key()
    package, different = _doc(tmp_path, "a"), _doc(tmp_path, "b")
    # Within one batch: the same key and bytes twice is a retry (here even the same stream object);
    # other bytes under it a conflict.
    stream = io.BytesIO(b"<!-- before -->" + package.read_bytes())
    stream.seek(len(b"<!-- before -->"))
    first, repeat, conflict = province.send_many([(stream, key), (stream, key), (different, key)])
    assert (first.replayed, repeat.replayed, repeat.message_id) == (False, True, first.message_id)
    assert conflict.code == "idempotency_conflict" and conflict.detail["message_id"] == first.message_id
    # Across batches, and mixed with a single send under the same key.
    assert province.send(package, idempotency_key=key).message_id == first.message_id
    fresh, clash = province.send_many([(different, other), (different, key)])
    assert fresh.replayed is False and clash.code == "idempotency_conflict"
    assert _inbox(hub).count(first.message_id) == 1


def test_statuses_travel_in_batches_and_a_recall_follows_its_document(hub: Hub, tmp_path: Path):
    province, government = _client(hub), _client(hub, GOVERNMENT)
    doc_id = _doc_id()
    document = _doc(tmp_path, "doc", document_id=doc_id, recipients=(GOVERNMENT, DEPARTMENT))
    recall = status_package(tmp_path / "13.edxml", sender=PROVINCE, original_sender=PROVINCE, document_id=doc_id,
                            code="13")
    # The recall without To goes where the document went, the document being earlier in the same batch.
    sent, recalled = province.send_many([(document, new_idempotency_key()), (recall, new_idempotency_key())])
    assert sorted(recalled.recipients) == sorted(sent.recipients) == sorted((GOVERNMENT, DEPARTMENT))
    answer = status_package(tmp_path / "15.edxml", sender=GOVERNMENT, original_sender=PROVINCE, document_id=doc_id,
                            code="15")
    bad_code = status_package(tmp_path / "07.edxml", sender=GOVERNMENT, original_sender=PROVINCE, document_id=doc_id,
                              code="07")
    answered, refused = government.send_many([(answer, new_idempotency_key()), (bad_code, new_idempotency_key())])
    assert answered.recipients == (PROVINCE,) and refused.code == "invalid_package"
    assert refused.detail["reason"] == "unknown_status_code"
    assert answered.message_id in _inbox(hub, PROVINCE)


def test_a_package_marked_status_in_a_batch_is_checked_as_update_status_checks_it(hub: Hub, tmp_path: Path):
    # What update_status guarantees alone holds in a batch: a document sent as a status is refused,
    # and so is a status sent as a document; the others of the batch go through.
    province, government = _client(hub), _client(hub, GOVERNMENT)
    doc_id = _doc_id()
    document = _doc(tmp_path, "doc", document_id=doc_id)
    province.send(document, idempotency_key=new_idempotency_key())
    answer = status_package(tmp_path / "03.edxml", sender=GOVERNMENT, original_sender=PROVINCE, document_id=doc_id,
                            code="03")
    stray = _doc(tmp_path, "stray", sender=GOVERNMENT, recipients=(PROVINCE,), document_id=_doc_id(GOVERNMENT))
    stored = hub.stored_packages()
    as_status, as_document, good = government.send_many([
        (stray, new_idempotency_key(), "status"), (answer, new_idempotency_key(), "document"),
        (answer, new_idempotency_key(), "status")])
    assert as_status.code == as_document.code == "invalid_package"
    assert good.recipients == (PROVINCE,) and len(hub.stored_packages()) == len(stored) + 1


def test_the_client_keeps_within_the_caps_in_order_and_sends_a_package_too_big_for_a_batch_alone(hub: Hub,
                                                                                              tmp_path: Path):
    province = _client(hub, max_batch_packages=3, max_batch_bytes=300_000)
    packages = [_doc(tmp_path, f"p{i}", attachment_bytes=60_000) for i in range(7)]
    packages[4] = _doc(tmp_path, "alone", attachment_bytes=400_000)  # over the client's batch bytes, under 1 MiB
    batches, singles = hub.requests("POST", "/v1/messages/batch"), hub.requests("POST", "/v1/messages")
    outcomes = province.send_many([(p, new_idempotency_key()) for p in packages])
    assert _codes(outcomes) == ["ok"] * 7
    # [p0 p1 p2] [p3] alone [p5 p6]: three batches and one single send, the outcomes in the caller's order.
    assert hub.requests("POST", "/v1/messages/batch") - batches == 3
    assert hub.requests("POST", "/v1/messages") - singles == 1
    listed = [m for m in _inbox(hub) if m in {o.message_id for o in outcomes}]
    assert listed == [o.message_id for o in outcomes]
    assert province.send_many([]) == []


def test_the_hub_refuses_a_batch_over_its_caps_with_a_stable_code(hub: Hub, tmp_path: Path):
    stored = hub.stored_packages()
    packages = [(_doc(tmp_path, f"c{i}"), new_idempotency_key()) for i in range(CAPS["max_batch_packages"] + 1)]
    unaware = hub.client(PROVINCE)  # believes the default caps (100 packages, 32 MiB)
    error = _refused(lambda: unaware.send_many(packages), "too_large")
    assert (error.detail["reason"], error.detail["limit"]) == ("batch_count", CAPS["max_batch_packages"])
    big = [(_doc(tmp_path, f"b{i}", attachment_bytes=900_000), new_idempotency_key()) for i in range(4)]
    error = _refused(lambda: unaware.send_many(big), "too_large")
    assert (error.detail["reason"], error.detail["limit"]) == ("batch_bytes", CAPS["max_batch_bytes"])
    # Without a Content-Length the hub decides from the manifest, before reading any package.
    manifest = {"packages": [{"idempotency_key": key, "size": 900_000} for _, key in big]}
    response = httpx.post(hub.url + "/v1/messages/batch", headers=_auth(hub),
                          content=iter([json.dumps(manifest).encode() + b"\n", b"x" * 1000]))
    assert response.status_code == 413 and response.json()["error"]["detail"]["reason"] == "batch_bytes"
    assert hub.stored_packages() == stored and hub.partial_uploads() == []
    assert unaware.send_many(packages[:2])  # still serving


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"packages": [{"idempotency_key": "kkkkkkkkkk", "size": 10}]}\n0123456789extra', "batch_framing"),
    (b'{"packages": [{"idempotency_key": "kkkkkkkkkk", "size": 10}]}\n01234', "batch_framing"),
    (b'{"packages": [{"idempotency_key": "kkkkkkkkkk", "size": -1}]}\n', "batch_manifest"),
    (b'{"packages": {}}\n', "batch_manifest"),
    (b"not json\n", "batch_manifest"),
    (b"no manifest line at all", "batch_manifest"),
])
def test_a_body_that_does_not_follow_the_format_is_refused_whole(hub: Hub, body: bytes, reason: str):
    stored = hub.stored_packages()
    for content in (body, iter([body])):  # with a Content-Length, and chunked
        response = httpx.post(hub.url + "/v1/messages/batch", headers=_auth(hub), content=content)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == {"code": "invalid_package", "message": response.json()["error"]["message"],
                                            "detail": {"reason": reason}}
    assert hub.stored_packages() == stored and hub.partial_uploads() == []


def test_a_bad_key_or_an_empty_package_is_refused_alone(hub: Hub, tmp_path: Path):
    package = _doc(tmp_path, "ok")
    outcomes = _client(hub).send_many([(package, "short"), (io.BytesIO(b""), new_idempotency_key()),
                                       (package, new_idempotency_key())])
    assert _codes(outcomes) == ["invalid_package", "invalid_package", "ok"]
    assert outcomes[0].detail["reason"] == "idempotency_key" and outcomes[1].detail["reason"] == "malformed_xml"


def test_a_batch_from_an_unknown_agency_or_to_a_hub_that_is_down_raises(hub: Hub, tmp_path: Path):
    from tests.support.server import free_port

    batch = [(_doc(tmp_path, "a"), new_idempotency_key())]
    _refused(lambda: hub.client(PROVINCE, secret="wrong-" + "x" * 40).send_many(batch), "unauthorized")
    down = new_hub(tmp_path / "down")
    down.port = free_port()
    error = _refused(lambda: down.client(PROVINCE, secret="s" * 43, connect_timeout=2).send_many(batch), "unavailable")
    assert error.retryable
    _refused(lambda: down.client(PROVINCE, secret="s" * 43, connect_timeout=2).get_many(["a" * 32], tmp_path),
             "unavailable")


# -- get_many ---------------------------------------------------------------------------------------
def test_get_many_writes_each_package_checked_and_answers_per_id(hub: Hub, tmp_path: Path):
    province, government = _client(hub), _client(hub, GOVERNMENT, max_get_many=3)
    packages = [_doc(tmp_path, f"g{i}", attachment_bytes=30_000 * i) for i in range(5)]
    ids = [o.message_id for o in province.send_many([(p, new_idempotency_key()) for p in packages])]
    to_department = province.send(_doc(tmp_path, "d", recipients=(DEPARTMENT,)), idempotency_key=new_idempotency_key())
    out = tmp_path / "inbox"
    out.mkdir()
    wanted = [ids[0], "0" * 32, ids[1], to_department.message_id, "../../escape", ids[2], ids[3], ids[4], ids[0]]
    fetches = hub.requests("POST", "/v1/messages/contents")

    outcomes = government.get_many(wanted, out)

    assert _codes(outcomes[:5]) == ["ok", "not_found", "ok", "not_found", "not_found"]
    for outcome, message_id, package in zip([outcomes[i] for i in (0, 2, 5, 6, 7, 8)],
                                            [ids[i] for i in (0, 1, 2, 3, 4, 0)],
                                            [packages[i] for i in (0, 1, 2, 3, 4, 0)], strict=True):
        assert outcome == out / f"{message_id}.edxml" and outcome.read_bytes() == package.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{m}.edxml" for m in ids)  # nothing else, no part files
    assert hub.requests("POST", "/v1/messages/contents") - fetches == 3  # 8 ids asked for, 3 per request
    assert government.get_many([], out) == []


def test_get_many_detects_damaged_bytes_and_leaves_no_file_for_them(hub: Hub, tmp_path: Path):
    province, government = _client(hub), _client(hub, GOVERNMENT)
    receipts = province.send_many([(_doc(tmp_path, f"x{i}", attachment_bytes=10_000), new_idempotency_key())
                                   for i in range(3)])
    ids = [r.message_id for r in receipts]
    flipped, truncated = (hub.data_dir / "packages" / i[:2] / f"{i}.edxml" for i in ids[:2])
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    truncated.write_bytes(truncated.read_bytes()[:-100])
    out = tmp_path / "inbox"
    out.mkdir()
    outcomes = government.get_many(ids, out)
    assert _codes(outcomes) == ["unavailable", "unavailable", "ok"]
    assert "SHA-256" in outcomes[0].message and outcomes[0].retryable
    assert [p.name for p in out.iterdir()] == [f"{ids[2]}.edxml"]


def _auth(hub: Hub, organ_id: str = PROVINCE) -> dict[str, str]:
    return {"Authorization": f"Bearer {hub.secrets[organ_id]}"}


def _refused(call, code: str) -> TransportError:
    with pytest.raises(TransportError) as info:
        call()
    assert info.value.code == code, info.value
    return info.value


def test_concurrent_batches_of_the_same_packages_deliver_each_once(hub: Hub, tmp_path: Path):
    """Threads race the same batch (same keys) and copies of it under other keys: whichever commits
    first wins each package; the others get its receipt (same key) or duplicate_document."""
    from concurrent.futures import ThreadPoolExecutor

    packages = [_doc(tmp_path, f"r{i}", attachment_bytes=20_000) for i in range(4)]
    keys = [new_idempotency_key() for _ in packages]

    def send(same_keys: bool):
        batch = [(p, k if same_keys else new_idempotency_key()) for p, k in zip(packages, keys, strict=True)]
        return _client(hub).send_many(batch)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(send, [True, False, True, False, True, False]))
    inbox = _inbox(hub)
    for i in range(len(packages)):
        outcomes = [r[i] for r in results]
        receipts = {o.message_id for o in outcomes if isinstance(o, SendReceipt)}
        assert len(receipts) == 1, outcomes
        assert {o.code for o in outcomes if isinstance(o, TransportError)} <= {"duplicate_document"}
        assert [m for m in inbox if m in receipts] == list(receipts)
        # The batches under the same keys are retries of one another: all get the receipt, or
        # (another key won) all are duplicates.
        same_key = [type(o) for o in outcomes[0::2]]
        assert len(set(same_key)) == 1, outcomes
    assert hub.partial_uploads() == []
    assert len(hub.stored_packages()) == len(set(hub.stored_packages()))


@pytest.mark.parametrize("body", [
    b'{"message_ids": "abc"}', b'{"ids": []}', b"[]", b"not json", b'{"message_ids": ["a/b"]}',
    b'{"message_ids": [' + b",".join([b'"' + b"a" * 32 + b'"'] * 101) + b"]}",
])
def test_a_get_many_request_the_hub_cannot_read_is_refused(hub: Hub, body: bytes):
    response = httpx.post(hub.url + "/v1/messages/contents", headers=_auth(hub, GOVERNMENT), content=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["detail"] == {"reason": "message_ids"}


def test_the_package_routes_authenticate_and_check_their_parameters(hub: Hub, tmp_path: Path):
    receipt = _client(hub).send(_doc(tmp_path, "auth"), idempotency_key=new_idempotency_key())
    impostor = {"Authorization": "Bearer " + "x" * 43}
    claims_other = _auth(hub, GOVERNMENT) | {"X-Agency-Id": PROVINCE}
    for headers in (impostor, claims_other, {}):
        for method, path, body in (("GET", f"/v1/messages/{receipt.message_id}/content", None),
                                   ("POST", "/v1/messages/contents", b'{"message_ids": []}'),
                                   ("POST", "/v1/messages/batch", b'{"packages": []}\n'),
                                   ("POST", "/v1/messages", b"<edXML/>")):
            response = httpx.request(method, hub.url + path, headers=headers, content=body)
            assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized", path
    response = httpx.post(hub.url + "/v1/messages?kind=letter", content=b"<edXML/>",
                          headers=_auth(hub) | {"Idempotency-Key": new_idempotency_key()})
    assert response.status_code == 422 and response.json()["error"]["detail"] == {"reason": "kind"}
    # The recipient fetches it; the sender, or an id of another shape, finds nothing.
    assert httpx.get(hub.url + f"/v1/messages/{receipt.message_id}/content",
                     headers=_auth(hub, GOVERNMENT)).status_code == 200
    for organ_id, message_id in ((PROVINCE, receipt.message_id), (GOVERNMENT, "x" * 65)):
        response = httpx.get(hub.url + f"/v1/messages/{message_id}/content", headers=_auth(hub, organ_id))
        assert response.status_code == 404

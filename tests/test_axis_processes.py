"""End to end with real processes on loopback: one ``docsvc axis-hub`` and two ``docsvc serve``
agencies (each with its embedded worker and beat). The province issues a document to the Government
Office; it is delivered, verified, registered with an arrival number; 01/03 come back by themselves;
04/05/06, recall 13 and its answer 15 travel; a hub killed (SIGKILL) mid-send and restarted leaves
exactly one delivered copy; a hostile package is rejected without losing the good ones."""

from __future__ import annotations

import time

import pytest

from inter_axis.transport import new_idempotency_key
from tests.support.axis_hub import EXAMPLES, GOVERNMENT, PROVINCE, document_package, new_hub
from tests.support.axis_processes import start_agency, stop_agency, wait_for
from tests.support.signing import (
    PDF,
    PIN,
    decree30_pdf,
    enrol_key,
    fresh_otp,
    shared_pki_dir,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/standards/examples is not beside the checkout")


@pytest.fixture
def world(tmp_path, shared_pki_dir):  # noqa: F811
    hub = new_hub(tmp_path / "axis").start()
    started = []
    try:
        province = start_agency(tmp_path / "province", shared_pki_dir, hub, PROVINCE, "Ủy ban nhân dân tỉnh Nghệ An")
        started.append(province)
        government = start_agency(tmp_path / "government", shared_pki_dir, hub, GOVERNMENT, "Văn phòng Chính phủ")
        started.append(government)
        enrol_key(province.client, province.clerk)
        yield hub, province, government
    finally:
        for agency in started:
            stop_agency(agency)
        hub.stop()


def _issue(agency, subject: str) -> dict:
    body = {"direction": "outgoing", "doc_type": "cong_van", "subject": subject, "drafting_unit": "VX",
            "recipients": [f"{GOVERNMENT} - Văn phòng Chính phủ", "Lưu: VT, VX"]}
    doc = agency.post("/documents", json=body).json()["id"]
    assert agency.client.post(f"/documents/{doc}/versions?filename=cv.pdf", content=decree30_pdf(),
                              headers={**agency.clerk.headers, **PDF}).status_code == 201
    issued = agency.post(f"/documents/{doc}/issue", json={"pin": PIN, "otp": fresh_otp(agency.client, agency.clerk)})
    assert issued.status_code == 201, issued.text
    return issued.json()["document"]


def _exchange(agency, doc: int) -> dict | None:
    rows = agency.get(f"/documents/{doc}/axis").json()
    return rows[0] if rows else None


def _incoming(agency) -> list[dict]:
    return agency.get("/documents?direction=incoming").json()


def test_two_agencies_exchange_end_to_end(world):
    hub, province, government = world
    logs = lambda: province.server.log() + government.server.log()  # noqa: E731
    issued = _issue(province, "Về việc báo cáo chuyển đổi số")

    sent = wait_for(lambda: (e := _exchange(province, issued["id"])) and e["last_status"] == "03" and e,
                    what="01 and 03 back at the sender", logs=logs)
    assert [s["code"] for s in sent["statuses"]] == ["01", "03"] and sent["state"] == "sent"
    (received,) = _incoming(government)
    assert received["arrival_number"] == 1 and received["status"] == "registered"
    assert (received["number"], received["symbol"]) == (issued["number"], issued["symbol"])
    exchange = _exchange(government, received["id"])
    assert (exchange["verified"], exchange["signature_status"], exchange["pades_status"]) == (
        True, "valid", "TOTAL-PASSED")

    for code in ("04", "05", "06"):
        assert government.post(f"/documents/{received['id']}/axis/status", json={"code": code}).status_code == 202
    wait_for(lambda: _exchange(province, issued["id"])["last_status"] == "06", what="06 at the sender", logs=logs)

    assert province.post(f"/documents/{issued['id']}/axis/recall", json={"reason": "Sai sót"}).status_code == 202
    wait_for(lambda: _exchange(government, received["id"])["state"] == "recall_requested", what="13 received",
             logs=logs)
    assert government.post(f"/documents/{received['id']}/axis/recall-answer", json={"code": "15"}).status_code == 202
    final = wait_for(lambda: (e := _exchange(province, issued["id"]))["last_status"] == "15" and e,
                     what="15 at the sender", logs=logs)
    assert [s["code"] for s in final["statuses"]] == ["01", "03", "04", "05", "06", "13", "15"]
    assert government.get(f"/documents/{received['id']}").json()["status"] == "revoked"


def test_hub_killed_mid_send_and_restarted_delivers_exactly_once(world):
    hub, province, government = world
    logs = lambda: province.server.log() + government.server.log() + hub.log()  # noqa: E731
    issued = _issue(province, "Về việc kiểm tra giao nhận")
    time.sleep(0.05)
    hub.kill()  # SIGKILL while the worker is (or is about to be) sending
    time.sleep(1.5)
    hub.start()
    wait_for(lambda: (e := _exchange(province, issued["id"])) and e["last_status"] == "03", what="delivery",
             logs=logs)
    time.sleep(3)  # a few more poll rounds: any second copy would show up now
    incoming = [d for d in _incoming(government) if d["symbol"] == issued["symbol"] and d["number"] == issued["number"]]
    assert len(incoming) == 1
    assert len(hub.stored_packages()) == 3  # the document once, statuses 01 and 03


def test_hostile_package_is_rejected_and_nothing_is_lost(world, tmp_path):
    hub, province, government = world
    logs = lambda: province.server.log() + government.server.log()  # noqa: E731
    broken = document_package(tmp_path / "broken.edxml", sender=PROVINCE, recipients=(GOVERNMENT,),
                              document_id=f"{PROVINCE},2025/03/14,99/CT-UBND")
    text = broken.read_text(encoding="utf-8")
    start, end = text.index("<AttachmentEncoded>"), text.index("</AttachmentEncoded>") + len("</AttachmentEncoded>")
    broken.write_text(text[:start] + text[end:], encoding="utf-8")
    hub.client(PROVINCE).send(broken, idempotency_key=new_idempotency_key())
    issued = _issue(province, "Văn bản hợp lệ sau gói hỏng")

    wait_for(lambda: _exchange(province, issued["id"])["last_status"] == "03", what="good package", logs=logs)
    rejected = government.get("/axis/inbox?outcome=rejected").json()
    assert [(e["error_code"], e["document_id"]) for e in rejected] == [("missing_attachment", None)]
    assert [d["number"] for d in _incoming(government)] == [issued["number"]]
    assert hub.client(GOVERNMENT).list_received() == []  # everything acknowledged: nothing loops

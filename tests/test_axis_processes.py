"""End to end with real processes on loopback: one ``docsvc axis-hub`` and two ``docsvc serve``
agencies (each with its embedded worker and beat). The province issues a document to the Government
Office; it is delivered, verified, registered with an arrival number; 01/03 come back by themselves;
04/05/06, recall 13 and its answer 15 travel; a hub killed (SIGKILL) while a large package is being
uploaded, then restarted, leaves exactly one delivered copy; a hostile package is rejected without
losing the good ones."""

from __future__ import annotations

import hashlib
import os
import threading
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
    hub = new_hub(tmp_path / "axis", max_package_bytes=128 * 1024**2).start()  # room for a 40 MB attachment
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


def _kill_when_an_upload_is_in_flight(hub) -> tuple[threading.Thread, threading.Event]:
    """Watch the hub's upload directory and SIGKILL the hub as soon as a package is arriving (a
    partial file with bytes in it), as tests/inter_axis/test_hub_crash.py does from the client side."""
    killed = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for part in hub.partial_uploads():
                try:
                    arriving = part.stat().st_size > 0
                except FileNotFoundError:  # finished (renamed) between the listing and the stat
                    continue
                if arriving:
                    hub.kill()
                    killed.set()
                    return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher, killed


def test_hub_killed_mid_send_and_restarted_delivers_exactly_once(world):
    """A 40 MB attachment makes the upload (and the hub's check of it) last long enough to SIGKILL the
    hub while the province's worker is sending. That attempt fails (retrying, unavailable); the hub
    restarts and sweeps the half-received file; the retry, with the same key and bytes, delivers the
    document once: one registered incoming document, one document delivery for the recipient."""
    hub, province, government = world
    logs = lambda: province.server.log() + government.server.log() + hub.log()  # noqa: E731
    body = {"direction": "outgoing", "doc_type": "cong_van", "subject": "Về việc kiểm tra giao nhận",
            "drafting_unit": "VX", "recipients": [f"{GOVERNMENT} - Văn phòng Chính phủ", "Lưu: VT, VX"]}
    doc = province.post("/documents", json=body).json()["id"]
    assert province.client.post(f"/documents/{doc}/versions?filename=cv.pdf", content=decree30_pdf(),
                                headers={**province.clerk.headers, **PDF}).status_code == 201
    attachment = os.urandom(40 * 1024**2)  # random: base64 of it cannot be compressed or skipped
    uploaded = province.client.post(f"/documents/{doc}/attachments?filename=so-lieu.zip", content=attachment,
                                    headers={**province.clerk.headers, "Content-Type": "application/zip"})
    assert uploaded.status_code == 201, uploaded.text

    watcher, killed = _kill_when_an_upload_is_in_flight(hub)
    issued = province.post(f"/documents/{doc}/issue",
                           json={"pin": PIN, "otp": fresh_otp(province.client, province.clerk)})
    assert issued.status_code == 201, issued.text
    issued = issued.json()["document"]
    assert killed.wait(120), f"no upload seen in flight\n{logs()[-4000:]}"
    watcher.join()
    first = wait_for(lambda: (e := _exchange(province, doc)) and e["state"] == "retrying" and e,
                     what="the interrupted attempt recorded", logs=logs)
    assert (first["error_code"], first["message_id"]) == ("unavailable", None) and first["attempts"] >= 1

    hub.start()
    assert "left by an interrupted upload" in hub.log()  # the half-received package was swept
    sent = wait_for(lambda: (e := _exchange(province, doc)) and e["last_status"] == "03" and e,
                    what="delivery after the restart", logs=logs)
    assert sent["state"] == "sent" and sent["attempts"] >= 2
    time.sleep(3)  # a few more poll and retry rounds: any second copy would show up now
    incoming = [d for d in _incoming(government) if d["symbol"] == issued["symbol"] and d["number"] == issued["number"]]
    assert len(incoming) == 1
    assert [(kind, state) for _id, kind, state in hub.deliveries(GOVERNMENT, kind="document")] == [
        ("document", "delivered")]
    assert len(hub.stored_packages()) == 3  # the document once, statuses 01 and 03
    files = government.get(f"/documents/{incoming[0]['id']}/files").json()
    assert [f["sha256"] for f in files if f["kind"] == "attachment"] == [hashlib.sha256(attachment).hexdigest()]


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

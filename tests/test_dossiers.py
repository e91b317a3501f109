"""Dossiers (hồ sơ) through the HTTP API, on SQLite and PostgreSQL: creation and identifier
validation, status transitions, filing documents, components with their scans, tenancy."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from docsvc.principal import Role
from tests.conftest import make_settings
from tests.support.factories import make_person, tiny_pdf

CITIZEN = "040095001234"  # Nghệ An birth registration
UPLOAD_LIMIT = 64 * 1024


@pytest.fixture
def settings(tmp_path, database_url):
    """A small upload limit, so the size limit of component scans can be tested cheaply."""
    return make_settings(tmp_path, database_url, max_upload_bytes=UPLOAD_LIMIT)


def procedure_body(**overrides) -> dict:
    body = {"kind": "procedure", "title": "Cấp giấy phép xuất bản bản tin", "procedure_code": "1.004662",
            "applicant_id_type": "personal_id", "applicant_id": CITIZEN, "applicant_name": "Lê Văn Cường",
            "due_at": "2099-01-15T17:00:00+07:00"}
    body.update(overrides)
    return body


def create_dossier(client, person, **overrides) -> dict:
    response = client.post("/dossiers", json=procedure_body(**overrides), headers=person.headers)
    assert response.status_code == 201, response.text
    return response.json()


def registered_document(client, clerk, subject: str = "Cấp giấy phép xuất bản bản tin") -> int:
    doc = client.post("/documents", json={"direction": "outgoing", "doc_type": "quyet_dinh", "subject": subject},
                      headers=clerk.headers)
    assert doc.status_code == 201, doc.text
    reg = client.post(f"/documents/{doc.json()['id']}/register", headers=clerk.headers)
    assert reg.status_code == 200, reg.text
    return doc.json()["id"]


def set_status(client, person, dossier_id: int, status: str, reason: str | None = None):
    return client.post(f"/dossiers/{dossier_id}/status", json={"status": status, "reason": reason},
                       headers=person.headers)


def audit_actions(client, admin, dossier_id: int) -> list[str]:
    events = client.get("/audit/events", params={"object_type": "dossier", "object_id": str(dossier_id)},
                        headers=admin.headers)
    assert events.status_code == 200, events.text
    return [e["action"] for e in events.json()]


def error_code(response) -> str:
    return response.json()["error"]["code"]


def flip_first_byte(client, sha256: str) -> None:
    path = client.runtime.settings.objects_path / "sha256" / sha256[:2] / sha256
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))


def test_codes_are_generated_per_kind_and_year_and_reads_are_audited(client, province):
    clerk, admin = province["clerk"], province["admin"]
    first = create_dossier(client, clerk, received_at="2026-03-02T08:00:00")  # naive = Vietnam time
    second = create_dossier(client, clerk, received_at="2026-03-03T08:00:00")
    work = client.post("/dossiers", json={"kind": "work", "title": "Hồ sơ hội nghị chuyển đổi số 2026",
                                          "retention": "10 năm", "received_at": "2026-01-05T09:00:00+07:00"},
                       headers=clerk.headers)
    assert work.status_code == 201, work.text

    assert first["code"] == "000.00.12.H41.2026.TTHC.000001"
    assert second["code"] == "000.00.12.H41.2026.TTHC.000002"
    assert work.json()["code"] == "000.00.12.H41.2026.001"
    assert (first["status"], work.json()["status"]) == ("received", "open")
    assert datetime.fromisoformat(first["received_at"]) == datetime(2026, 3, 2, 8, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    assert first["applicant_id"] == CITIZEN and first["finished_at"] is None

    detail = client.get(f"/dossiers/{first['id']}", headers=clerk.headers)
    assert detail.status_code == 200
    assert detail.json()["components"] == [] and detail.json()["documents"] == []
    assert audit_actions(client, admin, first["id"]) == ["dossier.created", "dossier.read"]


def test_explicit_codes_are_unique_per_organisation(client, province):
    clerk, other = province["clerk"], province["other_clerk"]
    mine = create_dossier(client, clerk, code="H41-STTTT-0001")
    duplicate = client.post("/dossiers", json=procedure_body(code="H41-STTTT-0001"), headers=clerk.headers)
    theirs = client.post("/dossiers", json=procedure_body(code="H41-STTTT-0001"), headers=other.headers)
    generated = create_dossier(client, clerk)

    assert duplicate.status_code == 409 and error_code(duplicate) == "conflict"
    assert theirs.status_code == 201  # another organisation's code space
    assert generated["code"].endswith(".TTHC.000001")
    listed = client.get("/dossiers", headers=clerk.headers).json()
    assert [d["id"] for d in listed] == [generated["id"], mine["id"]]


def test_applicant_ids_and_procedure_fields_are_validated(client, province):
    clerk = province["clerk"]
    refused = {
        "11 digits": ({"applicant_id": "04009500123"}, "invalid_identifier"),
        "13 digits": ({"applicant_id": "0400950012345"}, "invalid_identifier"),
        "a letter": ({"applicant_id": "04009500123A"}, "invalid_identifier"),
        "tax code as personal id": ({"applicant_id": "0101234567"}, "invalid_identifier"),
        "9-digit tax code": ({"applicant_id_type": "tax_code", "applicant_id": "010123456"}, "invalid_identifier"),
        "bad branch suffix": ({"applicant_id_type": "tax_code", "applicant_id": "0101234567-01"}, "invalid_identifier"),
        "no applicant id": ({"applicant_id": None}, "validation_failed"),
        "no procedure code": ({"procedure_code": None}, "validation_failed"),
        "unknown id type": ({"applicant_id_type": "passport"}, "validation_failed"),
        "due before received": ({"received_at": "2026-03-02T08:00:00+07:00", "due_at": "2026-03-01T08:00:00+07:00"},
                                "validation_failed"),
        "unknown kind": ({"kind": "folder"}, "validation_failed"),
        "title of wrong type": ({"title": ["not", "text"]}, "validation_failed"),
        "procedure fields on a work file": ({"kind": "work"}, "validation_failed"),
    }
    for case, (overrides, code) in refused.items():
        response = client.post("/dossiers", json=procedure_body(**overrides), headers=clerk.headers)
        assert (response.status_code, error_code(response)) == (422, code), case

    assert client.get("/dossiers", headers=clerk.headers).json() == []  # nothing was created
    company = create_dossier(client, clerk, applicant_id_type="tax_code", applicant_id="0101234567")
    branch = create_dossier(client, clerk, applicant_id_type="tax_code", applicant_id="0101234567-001")
    person = create_dossier(client, clerk)
    assert (company["applicant_id"], branch["applicant_id"], person["applicant_id"]) == (
        "0101234567", "0101234567-001", CITIZEN)


def test_list_filters_by_kind_status_and_applicant(client, province):
    clerk = province["clerk"]
    citizen = create_dossier(client, clerk)
    other = create_dossier(client, clerk, applicant_id="040095009999")
    work = client.post("/dossiers", json={"kind": "work", "title": "Hồ sơ công việc"}, headers=clerk.headers).json()
    assert set_status(client, clerk, other["id"], "processing").status_code == 200

    def ids(**params) -> list[int]:
        response = client.get("/dossiers", params=params, headers=clerk.headers)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()]

    assert ids(kind="work") == [work["id"]]
    assert ids(status="processing") == [other["id"]]
    assert ids(applicant_id=CITIZEN) == [citizen["id"]]
    bad_id = client.get("/dossiers", params={"applicant_id": "12345"}, headers=clerk.headers)
    bad_status = client.get("/dossiers", params={"status": "lost"}, headers=clerk.headers)
    assert (bad_id.status_code, error_code(bad_id)) == (422, "invalid_identifier")
    assert (bad_status.status_code, error_code(bad_status)) == (422, "validation_failed")


def test_procedure_and_work_file_status_transitions(client, province):
    clerk, leader, admin = province["clerk"], province["leader"], province["admin"]
    dossier = create_dossier(client, clerk)
    skip = set_status(client, clerk, dossier["id"], "finished")
    assert (skip.status_code, error_code(skip)) == (409, "invalid_state")
    assert skip.json()["error"]["detail"]["allowed"] == ["processing", "rejected"]

    assert set_status(client, clerk, dossier["id"], "processing").status_code == 200
    no_result = set_status(client, leader, dossier["id"], "finished")
    assert (no_result.status_code, error_code(no_result)) == (409, "invalid_state")
    assert "result" in no_result.json()["error"]["message"]

    result = registered_document(client, clerk)
    assert client.post(f"/dossiers/{dossier['id']}/documents", json={"document_id": result, "role": "result"},
                       headers=clerk.headers).status_code == 201
    finished = set_status(client, leader, dossier["id"], "finished")
    assert finished.status_code == 200 and finished.json()["status"] == "finished"
    assert finished.json()["finished_at"] is not None
    reopened = set_status(client, leader, dossier["id"], "processing")
    assert (reopened.status_code, error_code(reopened)) == (409, "invalid_state")
    assert client.get(f"/dossiers/{dossier['id']}", headers=clerk.headers).json()["status"] == "finished"
    assert audit_actions(client, admin, dossier["id"]).count("dossier.status_changed") == 2

    refused = create_dossier(client, clerk)
    no_reason = set_status(client, clerk, refused["id"], "rejected")
    assert (no_reason.status_code, error_code(no_reason)) == (422, "validation_failed")
    rejected = set_status(client, clerk, refused["id"], "rejected", reason="Thiếu bản sao giấy phép")
    assert rejected.status_code == 200 and rejected.json()["finished_at"] is not None

    work = client.post("/dossiers", json={"kind": "work", "title": "Hồ sơ hội nghị"}, headers=clerk.headers).json()
    wrong = set_status(client, clerk, work["id"], "processing")
    assert (wrong.status_code, error_code(wrong)) == (409, "invalid_state")
    assert set_status(client, clerk, work["id"], "closed").json()["status"] == "closed"
    again = set_status(client, clerk, work["id"], "open")
    assert (again.status_code, error_code(again)) == (409, "invalid_state")


def test_filing_documents_checks_readability_role_and_state(client, province):
    clerk, other_clerk = province["clerk"], province["other_clerk"]
    dossier = create_dossier(client, clerk)
    url = f"/dossiers/{dossier['id']}/documents"
    member = registered_document(client, clerk, "Phiếu tiếp nhận hồ sơ")
    draft = client.post("/documents", json={"direction": "outgoing", "doc_type": "quyet_dinh", "subject": "Dự thảo"},
                        headers=clerk.headers).json()["id"]
    theirs = registered_document(client, other_clerk, "Văn bản của Sở Tư pháp")
    shared = registered_document(client, other_clerk, "Ý kiến thẩm định của Sở Tư pháp")
    assert client.post(f"/documents/{shared}/shares", json={"organisation_id": province.dept},
                       headers=other_clerk.headers).status_code == 204

    filed = client.post(url, json={"document_id": member}, headers=clerk.headers)
    assert filed.status_code == 201, filed.text
    assert filed.json()["role"] == "member" and filed.json()["number_symbol"] == "01/QĐ-STTTT"
    refusals = {
        "twice": ({"document_id": member}, 409, "conflict"),
        "draft as result": ({"document_id": draft, "role": "result"}, 409, "invalid_state"),
        "another organisation's": ({"document_id": theirs}, 404, "not_found"),
        "unknown": ({"document_id": 987654}, 404, "not_found"),
        "unknown role": ({"document_id": draft, "role": "owner"}, 422, "validation_failed"),
        "id of wrong type": ({"document_id": "first"}, 422, "validation_failed"),
    }
    for case, (body, status, code) in refusals.items():
        response = client.post(url, json=body, headers=clerk.headers)
        assert (response.status_code, error_code(response)) == (status, code), case
    assert client.post(url, json={"document_id": shared}, headers=clerk.headers).status_code == 201

    documents = client.get(f"/dossiers/{dossier['id']}", headers=clerk.headers).json()["documents"]
    assert [(d["document_id"], d["role"]) for d in documents] == [(member, "member"), (shared, "member")]
    assert client.delete(f"{url}/{shared}", headers=clerk.headers).status_code == 204
    gone = client.delete(f"{url}/{shared}", headers=clerk.headers)
    assert (gone.status_code, error_code(gone)) == (404, "not_found")

    work = client.post("/dossiers", json={"kind": "work", "title": "Hồ sơ"}, headers=clerk.headers).json()
    as_result = client.post(f"/dossiers/{work['id']}/documents", json={"document_id": member, "role": "result"},
                            headers=clerk.headers)
    assert (as_result.status_code, error_code(as_result)) == (422, "validation_failed")
    set_status(client, clerk, work["id"], "closed")
    closed = client.post(f"/dossiers/{work['id']}/documents", json={"document_id": member}, headers=clerk.headers)
    assert (closed.status_code, error_code(closed)) == (409, "invalid_state")
    assert client.get(f"/dossiers/{work['id']}", headers=clerk.headers).json()["documents"] == []


def test_other_organisations_and_other_roles_cannot_touch_a_dossier(client, province):
    clerk, other_clerk, admin = province["clerk"], province["other_clerk"], province["admin"]
    dossier = create_dossier(client, clerk)
    component = client.post(f"/dossiers/{dossier['id']}/components", json={"name": "Tờ khai"},
                            headers=clerk.headers).json()
    before = audit_actions(client, admin, dossier["id"])
    base = f"/dossiers/{dossier['id']}"
    attempts = [
        ("GET", base, None), ("POST", f"{base}/status", {"status": "processing"}),
        ("POST", f"{base}/documents", {"document_id": 1}), ("POST", f"{base}/components", {"name": "Bản sao"}),
        ("GET", f"{base}/components/{component['id']}/content", None),
        ("DELETE", f"{base}/documents/1", None),
    ]
    for method, url, body in attempts:
        response = client.request(method, url, json=body, headers=other_clerk.headers)
        assert (response.status_code, error_code(response)) == (404, "not_found"), url
    upload = client.put(f"{base}/components/{component['id']}/content?filename=x.png", content=b"scan",
                        headers={**other_clerk.headers, "Content-Type": "image/png"})
    assert (upload.status_code, error_code(upload)) == (404, "not_found")
    assert client.get("/dossiers", headers=other_clerk.headers).json() == []

    dept_admin = make_person(client, "admin.sttt", province.dept, Role.ADMIN)
    for response in (client.get(base, headers=dept_admin.headers),
                     client.post("/dossiers", json=procedure_body(), headers=dept_admin.headers)):
        assert (response.status_code, error_code(response)) == (403, "permission_denied")
    key = client.post("/api-clients", json={"name": "Cổng DVC", "organisation_id": province.dept},
                      headers=admin.headers).json()["api_key"]
    as_system = client.get(base, headers={"X-API-Key": key})
    assert (as_system.status_code, error_code(as_system)) == (403, "permission_denied")
    anonymous = client.get(base)
    assert (anonymous.status_code, error_code(anonymous)) == (401, "authentication_failed")

    after = client.get(base, headers=clerk.headers).json()
    assert after["status"] == "received" and [c["name"] for c in after["components"]] == ["Tờ khai"]
    assert after["components"][0]["has_file"] is False
    assert audit_actions(client, admin, dossier["id"]) == before + ["dossier.read"]


def test_component_scan_round_trip_and_size_limit(client, province):
    clerk, specialist, admin = province["clerk"], province["specialist"], province["admin"]
    dossier = create_dossier(client, clerk)
    base = f"/dossiers/{dossier['id']}/components"
    card = client.post(base, json={"name": "Bản sao căn cước", "copies": 2}, headers=clerk.headers)
    assert card.status_code == 201 and card.json()["copies"] == 2 and card.json()["has_file"] is False
    scan = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)
    up = client.put(f"{base}/{card.json()['id']}/content?filename=can-cuoc.png", content=scan,
                    headers={**clerk.headers, "Content-Type": "image/png"})
    assert up.status_code == 200, up.text
    assert up.json()["sha256"] == hashlib.sha256(scan).hexdigest() and up.json()["size"] == len(scan)

    got = client.get(f"{base}/{card.json()['id']}/content", headers=specialist.headers)
    assert got.status_code == 200 and got.content == scan
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-sha256"] == hashlib.sha256(scan).hexdigest()
    assert "can-cuoc.png" in got.headers["content-disposition"]
    again = client.put(f"{base}/{card.json()['id']}/content", content=b"rescan",
                       headers={**clerk.headers, "Content-Type": "image/png"})
    assert (again.status_code, error_code(again)) == (409, "invalid_state")

    form = client.post(base, json={"name": "Đơn đề nghị"}, headers=clerk.headers).json()
    multipart = client.put(f"{base}/{form['id']}/content", files={"file": ("don.pdf", tiny_pdf(), "application/pdf")},
                           headers=clerk.headers)
    assert multipart.status_code == 200 and multipart.json()["filename"] == "don.pdf"
    big = client.post(base, json={"name": "Bản vẽ"}, headers=clerk.headers).json()
    too_big = client.put(f"{base}/{big['id']}/content", content=b"x" * (UPLOAD_LIMIT + 1),
                         headers={**clerk.headers, "Content-Type": "application/octet-stream"})
    assert (too_big.status_code, error_code(too_big)) == (413, "payload_too_large")
    missing = client.get(f"{base}/{big['id']}/content", headers=clerk.headers)
    assert (missing.status_code, error_code(missing)) == (404, "not_found")
    unknown = client.get(f"{base}/987654/content", headers=clerk.headers)
    assert (unknown.status_code, error_code(unknown)) == (404, "not_found")

    components = client.get(f"/dossiers/{dossier['id']}", headers=clerk.headers).json()["components"]
    assert [(c["name"], c["has_file"]) for c in components] == [
        ("Bản sao căn cước", True), ("Đơn đề nghị", True), ("Bản vẽ", False)]
    assert audit_actions(client, admin, dossier["id"]).count("dossier.component_read") == 1


def test_corrupted_component_scan_is_refused(client, province):
    clerk, admin = province["clerk"], province["admin"]
    dossier = create_dossier(client, clerk)
    component = client.post(f"/dossiers/{dossier['id']}/components", json={"name": "Giấy ủy quyền"},
                            headers=clerk.headers).json()
    url = f"/dossiers/{dossier['id']}/components/{component['id']}/content"
    up = client.put(f"{url}?filename=uy-quyen.jpg", content=b"\xff\xd8\xff" + os.urandom(3000),
                    headers={**clerk.headers, "Content-Type": "image/jpeg"})
    assert up.status_code == 200, up.text

    flip_first_byte(client, up.json()["sha256"])
    response = client.get(url, headers=clerk.headers)
    assert (response.status_code, error_code(response)) == (500, "file_integrity_failed")
    actions = audit_actions(client, admin, dossier["id"])
    assert "file.integrity_failed" in actions and "dossier.component_read" not in actions

"""Reuse of stored results by citizen id ("nobody is asked for the same paper twice"): system
clients with real API keys look up finished procedure results in their organisation's subtree
and download them; every lookup is audited."""

from __future__ import annotations

import hashlib
import os

from docsvc.principal import Role
from tests.support.factories import make_person, tiny_pdf

CITIZEN = "040095001234"
NEIGHBOUR = "040095005678"


def error_code(response) -> str:
    return response.json()["error"]["code"]


def api_key(client, admin, organisation_id: int, name: str) -> dict[str, str]:
    created = client.post("/api-clients", json={"name": name, "organisation_id": organisation_id},
                          headers=admin.headers)
    assert created.status_code == 201, created.text
    return {"X-API-Key": created.json()["api_key"]}


def result_document(client, clerk, subject: str, pdf: bytes | None) -> int:
    """A registered Quyết định, with ``pdf`` as its first version when given."""
    doc = client.post("/documents", json={"direction": "outgoing", "doc_type": "quyet_dinh", "subject": subject},
                      headers=clerk.headers).json()["id"]
    assert client.post(f"/documents/{doc}/register", headers=clerk.headers).status_code == 200
    if pdf is not None:
        up = client.post(f"/documents/{doc}/versions?filename=quyet-dinh.pdf", content=pdf,
                         headers={**clerk.headers, "Content-Type": "application/pdf"})
        assert up.status_code == 201, up.text
    return doc


def procedure(client, clerk, applicant_id: str, result: int | None, finish: bool = True) -> int:
    """A procedure dossier of ``applicant_id``, taken to ``finished`` with ``result`` filed."""
    dossier = client.post("/dossiers", json={
        "kind": "procedure", "title": "Cấp giấy phép", "procedure_code": "1.004662",
        "applicant_id_type": "personal_id", "applicant_id": applicant_id, "applicant_name": "Lê Văn Cường"},
        headers=clerk.headers).json()["id"]
    assert client.post(f"/dossiers/{dossier}/status", json={"status": "processing"},
                       headers=clerk.headers).status_code == 200
    if result is not None:
        assert client.post(f"/dossiers/{dossier}/documents", json={"document_id": result, "role": "result"},
                           headers=clerk.headers).status_code == 201
    if finish:
        finished = client.post(f"/dossiers/{dossier}/status", json={"status": "finished"}, headers=clerk.headers)
        assert finished.status_code == 200, finished.text
    return dossier


def lookups(client, admin) -> list[dict]:
    events = client.get("/audit/events", params={"action": "reuse.lookup"}, headers=admin.headers)
    assert events.status_code == 200, events.text
    return events.json()


def build_results(client, province) -> dict:
    """Finished results of CITIZEN at the department and at the district, plus noise that must
    not be returned: an unfinished dossier, a member document and another citizen's result."""
    clerk = province["clerk"]
    district_clerk = make_person(client, "vanthu.huyen", province.district, Role.CLERK)
    pdf = tiny_pdf("Giay phep xuat ban ban tin")
    licence = result_document(client, clerk, "Cấp giấy phép xuất bản bản tin", pdf)
    licence_dossier = procedure(client, clerk, CITIZEN, licence)
    pending = result_document(client, clerk, "Cấp lại giấy phép", tiny_pdf("pending"))
    procedure(client, clerk, CITIZEN, pending, finish=False)
    neighbour = result_document(client, clerk, "Giấy phép của người khác", tiny_pdf("neighbour"))
    procedure(client, clerk, NEIGHBOUR, neighbour)
    district_pdf = tiny_pdf("Xac nhan cua huyen")
    district_result = result_document(client, district_clerk, "Xác nhận của huyện", district_pdf)
    district_dossier = procedure(client, district_clerk, CITIZEN, district_result)
    return {"pdf": pdf, "licence": licence, "licence_dossier": licence_dossier, "pending": pending,
            "neighbour": neighbour, "district_pdf": district_pdf, "district_result": district_result,
            "district_dossier": district_dossier}


def test_province_portal_reuses_results_across_the_province(client, province):
    admin = province["admin"]
    data = build_results(client, province)
    portal = api_key(client, admin, province.root, "Cổng dịch vụ công tỉnh")

    found = client.get("/reuse/results", params={"applicant_id": CITIZEN}, headers=portal)
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["applicant_id"], body["applicant_id_type"], body["count"]) == (CITIZEN, "personal_id", 2)
    by_id = {d["id"]: d for d in body["dossiers"]}
    assert set(by_id) == {data["licence_dossier"], data["district_dossier"]}
    licence = by_id[data["licence_dossier"]]
    assert licence["organ_id"] == "000.00.12.H41" and licence["finished_at"] is not None
    [result] = licence["results"]
    assert (result["id"], result["number_symbol"], result["subject"]) == (
        data["licence"], "01/QĐ-STTTT", "Cấp giấy phép xuất bản bản tin")
    assert result["issued_date"] is not None
    assert result["file"]["sha256"] == hashlib.sha256(data["pdf"]).hexdigest()

    download = client.get(result["file"]["download_path"], headers=portal)
    assert download.status_code == 200 and download.content == data["pdf"]
    assert download.headers["x-content-sha256"] == result["file"]["sha256"]
    for not_a_reusable_result in (data["pending"], 987654):  # unfinished dossier's result; unknown
        refused = client.get(f"/reuse/documents/{not_a_reusable_result}/content", headers=portal)
        assert (refused.status_code, error_code(refused)) == (404, "not_found")
    # The portal still cannot read the department's documents through /documents.
    assert client.get(f"/documents/{data['licence']}", headers=portal).status_code == 404

    [event] = lookups(client, admin)
    assert (event["actor_type"], event["actor_name"]) == ("system", "Cổng dịch vụ công tỉnh")
    assert (event["detail"]["applicant_id"], event["detail"]["count"]) == (CITIZEN, 2)
    reads = client.get("/audit/events", params={"action": "reuse.result_read"}, headers=admin.headers).json()
    assert [e["object_id"] for e in reads] == [str(data["licence"])]


def test_district_client_does_not_see_department_results(client, province):
    admin, district_admin = province["admin"], province["district_admin"]
    data = build_results(client, province)
    district_portal = api_key(client, district_admin, province.district, "Một cửa huyện Quỳnh Lưu")

    found = client.get("/reuse/results", params={"applicant_id": CITIZEN}, headers=district_portal).json()
    assert found["count"] == 1
    assert [d["id"] for d in found["dossiers"]] == [data["district_dossier"]]
    assert [r["id"] for r in found["dossiers"][0]["results"]] == [data["district_result"]]
    own = client.get(found["dossiers"][0]["results"][0]["file"]["download_path"], headers=district_portal)
    assert own.status_code == 200 and own.content == data["district_pdf"]
    department = client.get(f"/reuse/documents/{data['licence']}/content", headers=district_portal)
    assert (department.status_code, error_code(department)) == (404, "not_found")

    [event] = lookups(client, admin)
    assert (event["organisation_id"], event["detail"]["count"]) == (province.district, 1)
    assert event["detail"]["dossier_ids"] == [data["district_dossier"]]


def test_officials_reuse_within_their_organisation_and_bad_lookups_are_refused(client, province):
    clerk, admin = province["clerk"], province["admin"]
    data = build_results(client, province)
    portal = api_key(client, admin, province.root, "Cổng dịch vụ công tỉnh")

    mine = client.get("/reuse/results", params={"applicant_id": CITIZEN}, headers=clerk.headers)
    assert mine.status_code == 200
    assert [d["id"] for d in mine.json()["dossiers"]] == [data["licence_dossier"]]
    assert client.get("/reuse/results", params={"applicant_id": "0101234567"}, headers=portal).json()["count"] == 0

    for bad in ("04009500123", "0400950012345", "04009500123A", "", "040 095 001 234"):
        response = client.get("/reuse/results", params={"applicant_id": bad}, headers=portal)
        assert (response.status_code, error_code(response)) == (422, "invalid_identifier"), bad
    no_param = client.get("/reuse/results", headers=portal)
    assert (no_param.status_code, error_code(no_param)) == (422, "validation_failed")
    not_admins = client.get("/reuse/results", params={"applicant_id": CITIZEN}, headers=admin.headers)
    assert (not_admins.status_code, error_code(not_admins)) == (403, "permission_denied")
    for headers in ({}, {"X-API-Key": "dsk_not-a-real-key"}):
        response = client.get("/reuse/results", params={"applicant_id": CITIZEN}, headers=headers)
        assert (response.status_code, error_code(response)) == (401, "authentication_failed")

    # Only the two lookups that were answered are in the log: the clerk's and the tax code's.
    assert [(e["actor_type"], e["detail"]["count"]) for e in lookups(client, admin)] == [("user", 1), ("system", 0)]


def test_corrupted_result_file_is_refused_and_audited(client, province):
    admin = province["admin"]
    data = build_results(client, province)
    portal = api_key(client, admin, province.root, "Cổng dịch vụ công tỉnh")
    sha256 = hashlib.sha256(data["pdf"]).hexdigest()
    path = client.runtime.settings.objects_path / "sha256" / sha256[:2] / sha256
    os.chmod(path, 0o644)
    path.write_bytes(data["pdf"].replace(b"Giay phep", b"Giay phap"))

    response = client.get(f"/reuse/documents/{data['licence']}/content", headers=portal)
    assert (response.status_code, error_code(response)) == (500, "file_integrity_failed")
    failures = client.get("/audit/events", params={"action": "file.integrity_failed"}, headers=admin.headers).json()
    assert [(e["object_type"], e["object_id"]) for e in failures] == [("document", str(data["licence"]))]
    reads = client.get("/audit/events", params={"action": "reuse.result_read"}, headers=admin.headers).json()
    assert reads == []

"""Official documents: drafting, numbering, incoming registration, tenancy, sharing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from docsvc.audit.models import AuditEvent
from docsvc.documents.models import Document

OUTGOING = {"direction": "outgoing", "doc_type": "chi_thi", "subject": "Về tăng cường công tác phòng, chống lụt bão",
            "signer_name": "Nguyễn Văn An", "signer_position": "PHÓ GIÁM ĐỐC", "signer_competence": "KT.",
            "recipients": ["Như trên", "Lưu: VT, VX"], "priority": "khan"}


def _create(client, person, **overrides):
    response = client.post("/documents", json={**OUTGOING, **overrides}, headers=person.headers)
    assert response.status_code == 201, response.text
    return response.json()


def _count(client, model=Document) -> int:
    with client.runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_registration_numbers_run_per_year_and_form_decree_30_symbols(client, province):
    clerk = province["clerk"]
    numbers = []
    for doc_type in ("chi_thi", "quyet_dinh", "cong_van"):
        doc = _create(client, clerk, doc_type=doc_type, drafting_unit="VP" if doc_type == "cong_van" else None)
        registered = client.post(f"/documents/{doc['id']}/register", json={"issued_date": "2026-03-14"},
                                 headers=clerk.headers).json()
        numbers.append(registered["number_symbol"])
        assert registered["status"] == "registered" and registered["year"] == 2026
    assert numbers == ["01/CT-STTTT", "02/QĐ-STTTT", "03/STTTT-VP"]
    next_year = _create(client, clerk)
    got = client.post(f"/documents/{next_year['id']}/register", json={"issued_date": "2027-01-01"},
                      headers=clerk.headers).json()
    assert got["number_symbol"] == "01/CT-STTTT"  # restarts on 1 January


def test_each_organisation_has_its_own_register(client, province):
    mine = _create(client, province["clerk"])
    theirs = _create(client, province["other_clerk"])
    a = client.post(f"/documents/{mine['id']}/register", headers=province["clerk"].headers).json()
    b = client.post(f"/documents/{theirs['id']}/register", headers=province["other_clerk"].headers).json()
    assert (a["number"], a["symbol"]) == (1, "CT-STTTT")
    assert (b["number"], b["symbol"]) == (1, "CT-STP")


def test_registering_twice_is_refused_and_changes_nothing(client, province):
    clerk = province["clerk"]
    doc = _create(client, clerk)
    first = client.post(f"/documents/{doc['id']}/register", headers=clerk.headers).json()
    again = client.post(f"/documents/{doc['id']}/register", headers=clerk.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_registration"
    now = client.get(f"/documents/{doc['id']}", headers=clerk.headers).json()
    assert now["number"] == first["number"] == 1


def test_only_clerks_register(client, province):
    doc = _create(client, province["specialist"])
    refused = client.post(f"/documents/{doc['id']}/register", headers=province["leader"].headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert client.get(f"/documents/{doc['id']}", headers=province["leader"].headers).json()["number"] is None


def test_archivists_and_system_clients_cannot_draft(client, province):
    refused = client.post("/documents", json=OUTGOING, headers=province["archivist"].headers)
    assert refused.status_code == 403
    assert _count(client) == 0


def test_incoming_documents_get_arrival_numbers_and_duplicates_are_caught(client, province):
    clerk = province["clerk"]
    incoming = {"direction": "incoming", "doc_type": "cong_van", "subject": "Về việc triển khai chuyển đổi số",
                "sender_name": "Ủy ban nhân dân tỉnh Nghệ An", "number": 12, "symbol": "UBND-VX",
                "issued_date": "2026-11-20"}
    first = _create(client, clerk, **incoming)
    assert first["status"] == "received"
    reg = client.post(f"/documents/{first['id']}/register", headers=clerk.headers).json()
    assert reg["arrival_number"] == 1 and reg["number_symbol"] == "12/UBND-VX"
    other = _create(client, clerk, **{**incoming, "number": 13})
    assert client.post(f"/documents/{other['id']}/register", headers=clerk.headers).json()["arrival_number"] == 2
    dup = _create(client, clerk, **incoming)
    refused = client.post(f"/documents/{dup['id']}/register", headers=clerk.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "duplicate_registration"
    assert refused.json()["error"]["detail"]["existing_document_id"] == first["id"]
    assert client.get(f"/documents/{dup['id']}", headers=clerk.headers).json()["arrival_number"] is None


def test_incoming_number_from_another_issuer_does_not_clash_with_ours(client, province):
    clerk = province["clerk"]
    ours = _create(client, clerk)
    client.post(f"/documents/{ours['id']}/register", json={"issued_date": "2026-05-01"}, headers=clerk.headers)
    theirs = _create(client, clerk, direction="incoming", sender_name="Sở Tư pháp", number=1, symbol="CT-STTTT",
                     issued_date="2026-05-02")
    assert client.post(f"/documents/{theirs['id']}/register", headers=clerk.headers).status_code == 200


def test_bad_document_input_gets_clear_errors_and_stores_nothing(client, province):
    clerk = province["clerk"]
    cases = [
        ({**OUTGOING, "doc_type": "thu_tinh"}, "validation_failed"),
        ({**OUTGOING, "priority": "rat_gap"}, "validation_failed"),
        ({**OUTGOING, "signer_competence": "XX."}, "validation_failed"),
        ({**OUTGOING, "subject": ""}, "validation_failed"),
        ({**OUTGOING, "subject": "x" * 501}, "validation_failed"),
        ({**OUTGOING, "due_date": "31/12/2026"}, "validation_failed"),
        ({**OUTGOING, "number": 5}, "validation_failed"),  # outgoing numbers come from the register
        ({**OUTGOING, "direction": "incoming"}, "validation_failed"),  # incoming needs sender and number
        ({**OUTGOING, "recipients": "Như trên"}, "validation_failed"),
    ]
    for body, code in cases:
        response = client.post("/documents", json=body, headers=clerk.headers)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == code
    assert client.post("/documents", content=b"{not json", headers={**clerk.headers,
                       "Content-Type": "application/json"}).status_code == 422
    assert _count(client) == 0


def test_another_organisations_document_is_not_found_rather_than_forbidden(client, province):
    doc = _create(client, province["clerk"])
    stranger = province["other_clerk"]
    for method, path in [("get", f"/documents/{doc['id']}"), ("post", f"/documents/{doc['id']}/register"),
                         ("get", f"/documents/{doc['id']}/files"), ("patch", f"/documents/{doc['id']}"),
                         ("get", f"/documents/{doc['id']}/versions/1/content")]:
        kwargs = {"json": {"subject": "đổi"}} if method == "patch" else {}
        response = getattr(client, method)(path, headers=stranger.headers, **kwargs)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    unknown = client.get("/documents/999999", headers=stranger.headers)
    assert unknown.json() == client.get(f"/documents/{doc['id']}", headers=stranger.headers).json()
    assert client.get("/documents", headers=stranger.headers).json() == []
    assert client.get(f"/documents/{doc['id']}", headers=province["clerk"].headers).json()["subject"] == OUTGOING["subject"]


def test_sharing_lets_the_addressee_read_but_not_change(client, province):
    clerk, stranger = province["clerk"], province["other_clerk"]
    doc = _create(client, clerk)
    assert client.post(f"/documents/{doc['id']}/shares", json={"organisation_id": province.other_dept},
                       headers=stranger.headers).status_code == 404
    assert client.post(f"/documents/{doc['id']}/shares", json={"organisation_id": province.other_dept},
                       headers=clerk.headers).status_code == 204
    assert client.get(f"/documents/{doc['id']}", headers=stranger.headers).status_code == 200
    assert [d["id"] for d in client.get("/documents", headers=stranger.headers).json()] == [doc["id"]]
    change = client.patch(f"/documents/{doc['id']}", json={"subject": "sửa"}, headers=stranger.headers)
    assert change.status_code == 403
    assert client.post(f"/documents/{doc['id']}/register", headers=stranger.headers).status_code == 403
    assert client.post(f"/documents/{doc['id']}/shares", json={"organisation_id": 999999},
                       headers=clerk.headers).status_code == 404


def test_drafts_can_be_edited_registered_documents_cannot(client, province):
    clerk = province["clerk"]
    doc = _create(client, clerk)
    edited = client.patch(f"/documents/{doc['id']}", json={"subject": "Về công tác chuyển đổi số"}, headers=clerk.headers)
    assert edited.json()["subject"] == "Về công tác chuyển đổi số"
    client.post(f"/documents/{doc['id']}/register", headers=clerk.headers)
    late = client.patch(f"/documents/{doc['id']}", json={"subject": "khác"}, headers=clerk.headers)
    assert late.status_code == 409 and late.json()["error"]["code"] == "invalid_state"


def test_every_state_change_and_read_is_audited(client, province):
    clerk = province["clerk"]
    doc = _create(client, clerk)
    client.post(f"/documents/{doc['id']}/register", headers=clerk.headers)
    client.get(f"/documents/{doc['id']}", headers=clerk.headers)
    with client.runtime.sessions() as session:
        actions = list(session.scalars(select(AuditEvent.action).where(
            AuditEvent.object_type == "document", AuditEvent.object_id == str(doc["id"])).order_by(AuditEvent.seq)))
    assert actions == ["document.created", "document.registered", "document.read"]
    events = client.get("/audit/events", params={"object_type": "document", "object_id": doc["id"]},
                        headers=province["admin"].headers).json()
    assert [e["action"] for e in events] == actions and events[0]["actor_name"] == "vanthu"
    assert client.get("/audit/events", headers=clerk.headers).status_code == 403


def test_issue_date_defaults_to_today_in_vietnam(client, province):
    clerk = province["clerk"]
    doc = _create(client, clerk)
    got = client.post(f"/documents/{doc['id']}/register", headers=clerk.headers).json()
    vn_today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date().isoformat()
    assert got["issued_date"] == vn_today


def test_list_filters_are_validated(client, province):
    clerk = province["clerk"]
    _create(client, clerk)
    assert len(client.get("/documents", params={"direction": "outgoing", "status": "draft"},
                          headers=clerk.headers).json()) == 1
    for params in ({"direction": "sideways"}, {"status": "lost"}, {"limit": 0}, {"limit": 501}, {"year": "năm"}):
        response = client.get("/documents", params=params, headers=clerk.headers)
        assert response.status_code == 422 and response.json()["error"]["code"] == "validation_failed", params

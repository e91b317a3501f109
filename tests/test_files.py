"""Document files: immutable versions, attachments, streaming uploads, integrity on read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from docsvc.app import create_app
from docsvc.documents.models import DocumentFile
from tests.conftest import make_settings
from tests.support.factories import build_province, tiny_pdf

PDF = {"Content-Type": "application/pdf"}


def _doc(client, person) -> int:
    body = {"direction": "outgoing", "doc_type": "ke_hoach", "subject": "Kế hoạch chuyển đổi số năm 2026"}
    return client.post("/documents", json=body, headers=person.headers).json()["id"]


def _stored_objects(client) -> list[Path]:
    root = client.runtime.settings.objects_path / "sha256"
    return [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".json")] if root.exists() else []


def _file_rows(client) -> int:
    with client.runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(DocumentFile))


def test_versions_are_immutable_and_numbered(client, province):
    clerk = province["clerk"]
    doc = _doc(client, clerk)
    first, second = tiny_pdf("ban nhap"), tiny_pdf("ban ky so")
    v1 = client.post(f"/documents/{doc}/versions?filename=du-thao.pdf", content=first, headers={**clerk.headers, **PDF})
    v2 = client.post(f"/documents/{doc}/versions?filename=ban-ky.pdf&note=signed", content=second,
                     headers={**clerk.headers, **PDF})
    assert (v1.json()["seq"], v2.json()["seq"]) == (1, 2)
    assert v1.json()["sha256"] == hashlib.sha256(first).hexdigest()
    assert client.get(f"/documents/{doc}/versions/1/content", headers=clerk.headers).content == first
    latest = client.get(f"/documents/{doc}/versions/2/content", headers=clerk.headers)
    assert latest.content == second
    assert latest.headers["x-content-sha256"] == hashlib.sha256(second).hexdigest()
    assert "ban-ky.pdf" in latest.headers["content-disposition"]
    assert [f["seq"] for f in client.get(f"/documents/{doc}/files", headers=clerk.headers).json()] == [1, 2]


def test_multipart_uploads_and_attachments_of_any_type(client, province):
    clerk = province["clerk"]
    doc = _doc(client, clerk)
    pdf = tiny_pdf("phu luc")
    up = client.post(f"/documents/{doc}/versions", files={"file": ("Kế hoạch.pdf", pdf, "application/pdf")},
                     headers=clerk.headers)
    assert up.status_code == 201 and up.json()["filename"] == "Kế hoạch.pdf"
    sheet = b"STT,Don vi\n1,So TTTT\n"
    att = client.post(f"/documents/{doc}/attachments?filename=danh-sach.csv", content=sheet,
                      headers={**clerk.headers, "Content-Type": "text/csv"})
    assert att.status_code == 201 and att.json()["kind"] == "attachment"
    app = client.post(f"/documents/{doc}/attachments?appendix=true&filename=phu-luc.pdf", content=pdf,
                      headers={**clerk.headers, **PDF})
    assert app.json()["kind"] == "appendix" and app.json()["seq"] == 1
    got = client.get(f"/documents/{doc}/attachments/1/content", headers=clerk.headers)
    assert got.content == sheet and got.headers["content-type"].startswith("text/csv")


@pytest.mark.parametrize("body,content_type", [
    (b"GIF89a not a pdf at all", "application/pdf"),
    (b"%PDF-1.7\n1 0 obj<<>>endobj\n", "application/pdf"),  # truncated: no %%EOF
    (b"", "application/pdf"),
    (tiny_pdf(), "image/png"),
])
def test_a_non_pdf_version_is_refused_and_nothing_is_stored(client, province, body, content_type):
    clerk = province["clerk"]
    doc = _doc(client, clerk)
    response = client.post(f"/documents/{doc}/versions", content=body,
                           headers={**clerk.headers, "Content-Type": content_type})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "not_a_pdf"
    assert _file_rows(client) == 0 and _stored_objects(client) == []


def test_oversized_uploads_get_413_and_leave_nothing(tmp_path, database_url):
    settings = make_settings(tmp_path, database_url, max_upload_bytes=4096)
    with TestClient(create_app(settings, relay_outbox=False)) as client:
        client.runtime = client.app.state.runtime
        clerk = build_province(client)["clerk"]
        doc = _doc(client, clerk)
        big = tiny_pdf() + b"%" + b"x" * 8192 + b"\n%%EOF\n"
        declared = client.post(f"/documents/{doc}/versions", content=big, headers={**clerk.headers, **PDF})
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "payload_too_large"

        def chunked():  # no Content-Length: the limit is enforced while streaming
            for i in range(0, len(big), 1000):
                yield big[i:i + 1000]

        streamed = client.post(f"/documents/{doc}/versions", content=chunked(), headers={**clerk.headers, **PDF})
        assert streamed.status_code == 413
        assert _file_rows(client) == 0 and _stored_objects(client) == []
        assert list((settings.objects_path / "tmp").glob("*")) == []


def test_reading_a_file_checks_its_recorded_sha256(client, province):
    clerk = province["clerk"]
    doc = _doc(client, clerk)
    client.post(f"/documents/{doc}/versions", content=tiny_pdf(), headers={**clerk.headers, **PDF})
    [stored] = _stored_objects(client)
    data = bytearray(stored.read_bytes())
    data[20] ^= 0xFF
    stored.chmod(0o644)
    stored.write_bytes(bytes(data))
    response = client.get(f"/documents/{doc}/versions/1/content", headers=clerk.headers)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "file_integrity_failed"
    events = client.get("/audit/events", params={"action": "file.integrity_failed"},
                        headers=province["admin"].headers).json()
    assert len(events) == 1 and events[0]["object_id"] == str(doc)


def test_file_reads_are_audited_and_refused_across_organisations(client, province):
    clerk = province["clerk"]
    doc = _doc(client, clerk)
    client.post(f"/documents/{doc}/versions", content=tiny_pdf(), headers={**clerk.headers, **PDF})
    client.get(f"/documents/{doc}/versions/1/content", headers=clerk.headers)
    stranger = client.get(f"/documents/{doc}/versions/1/content", headers=province["other_clerk"].headers)
    assert stranger.status_code == 404
    upload = client.post(f"/documents/{doc}/versions", content=tiny_pdf(),
                         headers={**province["other_clerk"].headers, **PDF})
    assert upload.status_code == 404
    reads = client.get("/audit/events", params={"action": "file.read"}, headers=province["admin"].headers).json()
    assert [(e["actor_name"], e["detail"]["seq"]) for e in reads] == [("vanthu", 1)]


def test_unknown_versions_and_kinds_are_clear_errors(client, province):
    clerk = province["clerk"]
    doc = _doc(client, clerk)
    assert client.get(f"/documents/{doc}/versions/3/content", headers=clerk.headers).json()["error"]["code"] == "not_found"
    assert client.get(f"/documents/{doc}/versions/abc/content", headers=clerk.headers).status_code == 422
    assert client.get(f"/documents/{doc}/bananas/1/content", headers=clerk.headers).status_code in (404, 422)


def test_an_upload_enqueues_a_fixity_check_after_commit(client, province):
    from docsvc.jobs.models import OutboxMessage

    clerk = province["clerk"]
    doc = _doc(client, clerk)
    row = client.post(f"/documents/{doc}/versions", content=tiny_pdf(), headers={**clerk.headers, **PDF}).json()
    with client.runtime.sessions() as session:
        [message] = session.scalars(select(OutboxMessage)).all()
    assert (message.task, message.args) == ("docsvc.verify_file", [row["id"]])
    assert message.dispatched_at is not None  # handed to the broker once the commit succeeded

"""The API with the production object store: S3 (a real SeaweedFS server on loopback)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from archive.interfaces import key_for_digest
from docsvc.app import create_app
from docsvc.documents.models import DocumentFile
from tests.conftest import make_settings
from tests.support.factories import build_province, tiny_pdf
from tests.support.seaweed import run_seaweedfs

pytestmark = pytest.mark.s3
PDF = {"Content-Type": "application/pdf"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with run_seaweedfs(tmp_path_factory.mktemp("seaweed")) as endpoint:
        yield endpoint


@pytest.fixture
def s3_client(tmp_path, database_url, s3, request):
    bucket = f"docsvc-{request.node.name.split('[')[-1].rstrip(']')}-{abs(hash(request.node.nodeid)) % 10**8}"
    settings = make_settings(tmp_path, database_url, object_store={
        "kind": "s3", "endpoint": s3.endpoint, "access_key": s3.access_key, "secret_key": s3.secret_key,
        "bucket": bucket, "secure": False})
    app = create_app(settings, relay_outbox=False)
    with TestClient(app) as client:
        client.runtime = app.state.runtime
        client.runtime.store.create_bucket_if_missing()  # what bootstrap does on a fresh MinIO
        yield client


def _doc(client, clerk) -> int:
    return client.post("/documents", json={"direction": "outgoing", "doc_type": "to_trinh",
                                           "subject": "Tờ trình phê duyệt đề án"}, headers=clerk.headers).json()["id"]


def test_versions_round_trip_through_s3(s3_client, s3):
    client = s3_client
    clerk = build_province(client)["clerk"]
    doc = _doc(client, clerk)
    pdf = tiny_pdf("to trinh")
    up = client.post(f"/documents/{doc}/versions?filename=to-trinh.pdf", content=pdf, headers={**clerk.headers, **PDF})
    assert up.status_code == 201
    raw = s3.client()
    bucket = client.runtime.settings.object_store.bucket
    names = [o.object_name for o in raw.list_objects(bucket, recursive=True)]
    assert key_for_digest(up.json()["sha256"]) in names
    assert client.get(f"/documents/{doc}/versions/1/content", headers=clerk.headers).content == pdf


def test_a_tampered_s3_object_is_refused_on_read(s3_client, s3):
    import io

    client = s3_client
    clerk = build_province(client)["clerk"]
    doc = _doc(client, clerk)
    sha = client.post(f"/documents/{doc}/versions", content=tiny_pdf(), headers={**clerk.headers, **PDF}).json()["sha256"]
    forged = tiny_pdf("forged")
    s3.client().put_object(client.runtime.settings.object_store.bucket, key_for_digest(sha), io.BytesIO(forged),
                           len(forged))
    response = client.get(f"/documents/{doc}/versions/1/content", headers=clerk.headers)
    assert response.status_code == 500 and response.json()["error"]["code"] == "file_integrity_failed"


def test_a_rejected_upload_leaves_no_object_and_no_row_on_s3(s3_client, s3):
    client = s3_client
    clerk = build_province(client)["clerk"]
    doc = _doc(client, clerk)
    bad = client.post(f"/documents/{doc}/versions", content=b"%PDF-1.4 truncated", headers={**clerk.headers, **PDF})
    assert bad.status_code == 415
    bucket = client.runtime.settings.object_store.bucket
    assert list(s3.client().list_objects(bucket, recursive=True)) == []
    with client.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DocumentFile)) == 0


def test_wrong_s3_credentials_give_503_not_a_crash(tmp_path, sqlite_url, s3):
    settings = make_settings(tmp_path, sqlite_url, object_store={
        "kind": "s3", "endpoint": s3.endpoint, "access_key": s3.access_key, "secret_key": "wrong-secret",
        "bucket": "docsvc-wrongcreds", "secure": False})
    with TestClient(create_app(settings, relay_outbox=False)) as client:
        client.runtime = client.app.state.runtime
        clerk = build_province(client)["clerk"]
        doc = _doc(client, clerk)
        response = client.post(f"/documents/{doc}/versions", content=tiny_pdf(), headers={**clerk.headers, **PDF})
        assert response.status_code == 503 and response.json()["error"]["code"] == "storage_unavailable"

"""Registration numbers under concurrency: 50 clerks at once get 50 consecutive numbers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from docsvc.app import create_app
from tests.conftest import make_settings
from tests.support.factories import build_province


@pytest.fixture
def pg_client(tmp_path, pg_url):
    with TestClient(create_app(make_settings(tmp_path, pg_url), relay_outbox=False)) as client:
        client.runtime = client.app.state.runtime
        yield client


def test_fifty_concurrent_registrations_get_fifty_consecutive_numbers(pg_client):
    client = pg_client
    province = build_province(client)
    clerk = province["clerk"]
    body = {"direction": "outgoing", "doc_type": "quyet_dinh", "subject": "Quyết định khen thưởng"}
    ids = [client.post("/documents", json=body, headers=clerk.headers).json()["id"] for _ in range(50)]
    incoming = {"direction": "incoming", "doc_type": "cong_van", "subject": "Công văn đến", "sender_name": "Sở Y tế",
                "symbol": "SYT-NVY", "issued_date": "2026-11-02"}
    in_ids = [client.post("/documents", json={**incoming, "number": i + 1}, headers=clerk.headers).json()["id"]
              for i in range(20)]

    def register(doc_id: int) -> dict:
        # Each registration is its own HTTP request; TestClient runs sync routes in a
        # thread pool, so these really overlap on separate PostgreSQL connections.
        response = client.post(f"/documents/{doc_id}/register", json={"issued_date": "2026-11-23"},
                               headers=clerk.headers)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(register, ids + in_ids))
    numbers = sorted(r["number"] for r in results[:50])
    assert numbers == list(range(1, 51))
    assert sorted(r["arrival_number"] for r in results[50:]) == list(range(1, 21))
    assert {r["symbol"] for r in results[:50]} == {"QĐ-STTTT"}

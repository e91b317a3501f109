"""Background jobs with real Celery workers: over Redis (production) and over the embedded
SQLite transport (``make run``); sent only after commit; idempotent; nothing lost when the
broker is down."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from archive.interfaces import key_for_digest
from docsvc.app import create_app
from docsvc.audit.models import AuditEvent
from docsvc.jobs import tasks
from docsvc.jobs.models import JobRun, OutboxMessage
from docsvc.runtime import Runtime
from tests.conftest import make_settings
from tests.support.factories import build_province, tiny_pdf
from tests.support.worker import celery_worker, wait_for_run, worker_env

PDF = {"Content-Type": "application/pdf"}


@pytest.fixture
def redis_url():
    db = random.randint(1, 15)
    url = f"redis://127.0.0.1:6379/{db}"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def _client(settings) -> TestClient:
    client = TestClient(create_app(settings, relay_outbox=False))
    client.runtime = client.app.state.runtime
    return client


def _upload(client, clerk, text: str = "thong bao") -> dict:
    doc = client.post("/documents", json={"direction": "outgoing", "doc_type": "thong_bao",
                                          "subject": "Thông báo lịch tiếp công dân"}, headers=clerk.headers).json()
    response = client.post(f"/documents/{doc['id']}/versions", content=tiny_pdf(text),
                           headers={**clerk.headers, **PDF})
    assert response.status_code == 201
    return response.json()


@pytest.mark.parametrize("broker", ["redis", "embedded"])
def test_an_upload_is_verified_by_a_real_worker(tmp_path, sqlite_url, broker, request):
    broker_url = request.getfixturevalue("redis_url") if broker == "redis" else None
    settings = make_settings(tmp_path, sqlite_url, broker_url=broker_url)
    assert settings.resolved_broker_url.startswith("redis://" if broker == "redis" else "sqla+sqlite://")
    with _client(settings) as client, celery_worker(settings):
        clerk = build_province(client)["clerk"]
        row = _upload(client, clerk)
        run = wait_for_run(client.runtime, f"verify_file:{row['id']}")
    assert run.status == "ok" and run.result == {"file_id": row["id"], "ok": True, "sha256": row["sha256"]}


def test_jobs_queued_while_the_broker_is_down_are_relayed_later(tmp_path, sqlite_url, redis_url):
    down = make_settings(tmp_path, sqlite_url, broker_url="redis://127.0.0.1:1/0")
    with _client(down) as client:
        clerk = build_province(client)["clerk"]
        row = _upload(client, clerk)  # the upload itself succeeds
        with client.runtime.sessions() as session:
            [pending] = session.scalars(select(OutboxMessage)).all()
        assert pending.dispatched_at is None
    up = make_settings(tmp_path, sqlite_url, broker_url=redis_url)
    relay = subprocess.run([sys.executable, "-m", "docsvc", "jobs", "relay"], env=worker_env(up),
                           capture_output=True, text=True, timeout=60)
    assert relay.returncode == 0 and "sent 1 pending job" in relay.stdout, relay.stderr
    runtime = Runtime(up)
    with celery_worker(up):
        run = wait_for_run(runtime, f"verify_file:{row['id']}")
    assert run.status == "ok"
    runtime.dispose()


def test_a_job_is_not_sent_when_its_transaction_rolls_back(runtime):
    from docsvc.jobs import outbox

    sent = []
    factory = runtime.sessions
    outbox.install_after_commit(factory, sent.append)
    with factory() as session:
        outbox.enqueue(session, "docsvc.verify_file", 1)
        session.rollback()
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert sent == []


def test_tasks_are_idempotent_when_delivered_twice(client, province, monkeypatch):
    clerk = province["clerk"]
    row = _upload(client, clerk)
    monkeypatch.setattr(tasks, "_runtime", client.runtime)
    # Corrupt the object so the task has something to report, then deliver it twice.
    path = client.runtime.settings.objects_path / key_for_digest(row["sha256"])
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"thong bao", b"THONG BAO"))
    first = tasks.verify_file.run(row["id"])
    second = tasks.verify_file.run(row["id"])
    assert first == second == {"file_id": row["id"], "ok": False, "sha256": row["sha256"]}
    with client.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(JobRun)) == 1
        alarms = session.scalar(select(func.count()).select_from(AuditEvent)
                                .where(AuditEvent.action == "file.integrity_failed"))
    assert alarms == 1


def test_reconcile_reports_orphans_and_missing_objects(client, province, monkeypatch):
    clerk = province["clerk"]
    kept, lost = _upload(client, clerk, "giu lai"), _upload(client, clerk, "bi mat")
    store = client.runtime.store
    orphan = store.put([b"left behind by a crashed upload"])
    half_written = client.runtime.settings.objects_path / "tmp" / "put-killed"
    half_written.write_bytes(b"%PDF-1.7 half of an upload whose process was killed")
    two_days_ago = time.time() - 2 * 86400
    os.utime(half_written, (two_days_ago, two_days_ago))
    store.delete(key_for_digest(lost["sha256"]))
    monkeypatch.setattr(tasks, "_runtime", client.runtime)
    result = tasks.reconcile_objects.run("reconcile:test")
    assert result["clean"] is False
    assert result["orphans"] == [orphan.key]
    assert [m["id"] for m in result["missing"]] == [lost["id"]]
    assert kept["id"] not in [m["id"] for m in result["missing"]]
    assert result["abandoned_uploads_removed"] == 1 and not half_written.exists()
    status = client.get("/admin/jobs/reconcile:test", headers=province["admin"].headers).json()
    assert status["status"] == "drift" and status["result"]["orphans"] == [orphan.key]
    cli = subprocess.run([sys.executable, "-m", "docsvc", "reconcile"], env=worker_env(client.runtime.settings),
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1 and orphan.key in cli.stdout


def test_a_job_the_broker_lost_is_sent_again_and_then_marked_done(tmp_path, sqlite_url, redis_url):
    settings = make_settings(tmp_path, sqlite_url, broker_url=redis_url, jobs={"redeliver_after_seconds": 1})
    with _client(settings) as client:
        clerk = build_province(client)["clerk"]
        row = _upload(client, clerk)
        redis.Redis.from_url(redis_url).flushdb()  # the broker loses the message (or a worker died with it)
        time.sleep(1.5)
        assert client.runtime.relay_outbox() == 1
        with celery_worker(settings):
            run = wait_for_run(client.runtime, f"verify_file:{row['id']}")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with client.runtime.sessions() as session:
                    message = session.scalars(select(OutboxMessage)).one()
                if message.completed_at is not None:
                    break
                time.sleep(0.2)
        assert run.status == "ok"
        assert message.completed_at is not None and message.attempts == 2
        time.sleep(1.5)
        assert client.runtime.relay_outbox() == 0  # done: never sent again


def test_a_job_held_by_a_killed_embedded_worker_is_sent_again(tmp_path, sqlite_url):
    """kombu's SQLite transport hides a message when a worker takes it and only shows it again
    on a clean shutdown; a worker killed with -9 leaves it hidden for ever. The outbox relay
    is what brings such a job back."""
    settings = make_settings(tmp_path, sqlite_url, broker_url=None, jobs={"redeliver_after_seconds": 2})
    with _client(settings) as client:
        clerk = build_province(client)["clerk"]
        row = _upload(client, clerk)
        broker = sa.create_engine(settings.resolved_broker_url.removeprefix("sqla+"))
        with broker.begin() as conn:  # the state a worker killed mid-task leaves behind
            assert conn.exec_driver_sql("UPDATE kombu_message SET visible = 0").rowcount == 1
        broker.dispose()
        with celery_worker(settings):
            time.sleep(3)
            with client.runtime.sessions() as session:
                assert session.scalar(select(func.count()).select_from(JobRun)) == 0  # nobody ran it
            assert client.runtime.relay_outbox() == 1
            run = wait_for_run(client.runtime, f"verify_file:{row['id']}")
    assert run.status == "ok"

"""The service as a newcomer runs it: ``docsvc serve`` on a fresh data directory (what
``make run`` does), with its embedded worker; and a 1 GB upload streamed through it."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import httpx
import psutil
import pytest
from sqlalchemy import select

from docsvc.jobs.models import JobRun
from docsvc.organisations.models import Organisation
from docsvc.principal import SERVICE_ACTOR, Role
from docsvc.runtime import Runtime
from docsvc.settings import Settings
from docsvc.users import service as users
from docsvc.users.schemas import UserCreate
from tests.support.factories import PASSWORD, tiny_pdf
from tests.support.server import start_server

ENV = {"DOCSVC_AUTH__ARGON2_TIME_COST": "1", "DOCSVC_AUTH__ARGON2_MEMORY_KIB": "8192"}


def _tree_rss(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _token(url: str, username: str, password: str) -> dict[str, str]:
    response = httpx.post(url + "/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_first_start_creates_an_admin_with_a_one_time_password_and_runs_jobs(tmp_path):
    server = start_server(tmp_path / "data", env=ENV)
    try:
        password = server.admin_password()
        assert password and len(password) >= 16
        admin = _token(server.url, "admin", password)
        me = httpx.get(server.url + "/auth/me", headers=admin).json()
        assert me["roles"] == ["admin"]
        root = httpx.get(server.url + "/organisations", headers=admin).json()[0]
        assert root["organ_id"] == "000.00.00.H41"
        user = httpx.post(server.url + "/users", headers=admin, json={
            "username": "vanthu", "full_name": "Trần Thị Bình", "organisation_id": root["id"], "roles": ["clerk"],
            "password": PASSWORD}).json()
        clerk = _token(server.url, "vanthu", PASSWORD)
        doc = httpx.post(server.url + "/documents", headers=clerk, json={
            "direction": "outgoing", "doc_type": "cong_van", "subject": "Về việc đôn đốc", "drafting_unit": "VP"}).json()
        up = httpx.post(f"{server.url}/documents/{doc['id']}/versions", content=tiny_pdf(),
                        headers={**clerk, "Content-Type": "application/pdf"}).json()
        runtime = Runtime(Settings(data_dir=tmp_path / "data"))
        deadline, run = time.monotonic() + 60, None
        while run is None and time.monotonic() < deadline:  # the embedded worker polls once a second
            with runtime.sessions() as session:
                run = session.scalar(select(JobRun).where(JobRun.key == f"verify_file:{up['id']}"))
            time.sleep(0.3)
        assert run is not None and run.status == "ok", server.log()[-3000:]
        assert user["id"] > me["id"]
        runtime.dispose()
        children = psutil.Process(server.proc.pid).children(recursive=True)
        assert any("celery" in " ".join(c.cmdline()) for c in children)
    finally:
        server.stop()
    assert server.proc.returncode is not None
    restarted = start_server(tmp_path / "data", "--no-worker", env=ENV)
    try:
        assert restarted.admin_password() is None  # shown once, on the first start only
    finally:
        restarted.stop()
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, child.cmdline()


@pytest.mark.timeout(600)
def test_a_1_gb_upload_streams_through_without_sitting_in_memory(tmp_path):
    data_dir = tmp_path / "data"
    runtime = Runtime(Settings(data_dir=data_dir, **{"max_upload_bytes": 2 * 1024**3}))
    from docsvc.bootstrap import bootstrap

    bootstrap(runtime)
    with runtime.sessions() as session:
        root = session.scalar(select(Organisation))
        users.create_user(session, SERVICE_ACTOR, UserCreate(username="vanthu", full_name="Văn thư",
                                                             organisation_id=root.id, roles=[Role.CLERK],
                                                             password=PASSWORD))
    runtime.dispose()
    server = start_server(data_dir, "--no-worker", env={**ENV, "DOCSVC_MAX_UPLOAD_BYTES": str(2 * 1024**3)})
    size, block = 1024**3, os.urandom(1024 * 1024)
    digest = hashlib.sha256()

    def body():
        yield b"%PDF-1.7\n%"
        digest.update(b"%PDF-1.7\n%")
        for i in range(size // len(block)):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            yield chunk
        digest.update(b"\n%%EOF\n")
        yield b"\n%%EOF\n"

    peak, stop = 0, threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(server.proc.pid))
            time.sleep(0.05)

    try:
        clerk = _token(server.url, "vanthu", PASSWORD)
        doc = httpx.post(server.url + "/documents", headers=clerk, json={
            "direction": "outgoing", "doc_type": "bao_cao", "subject": "Báo cáo số hóa hồ sơ"}).json()
        baseline = _tree_rss(server.proc.pid)
        sampler = threading.Thread(target=sample)
        sampler.start()
        response = httpx.post(f"{server.url}/documents/{doc['id']}/versions?filename=lon.pdf", content=body(),
                              headers={**clerk, "Content-Type": "application/pdf"}, timeout=600)
        stop.set()
        sampler.join()
        assert response.status_code == 201, response.text
        assert response.json()["size"] == size + len(b"%PDF-1.7\n%") + len(b"\n%%EOF\n")
        assert response.json()["sha256"] == digest.hexdigest()
        growth = peak - baseline
        assert growth < 100 * 1024**2, f"server grew by {growth / 1024**2:.0f} MiB during a 1 GiB upload"
    finally:
        stop.set()
        server.stop()

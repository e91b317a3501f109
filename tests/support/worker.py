"""Run a real Celery worker process for tests, against the same database and store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

from docsvc.jobs.models import JobRun
from docsvc.settings import Settings


def worker_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "DOCSVC_DATABASE_URL": settings.resolved_database_url,
            "DOCSVC_DATA_DIR": str(settings.data_dir), "DOCSVC_BROKER_URL": settings.resolved_broker_url,
            "DOCSVC_SECRET_KEY": settings.secret_key.get_secret_value(), "DOCSVC_ENVIRONMENT": "test"}


@contextmanager
def celery_worker(settings: Settings, *extra: str) -> Iterator[subprocess.Popen]:
    cmd = [sys.executable, "-m", "celery", "-A", "docsvc.jobs.worker", "worker", "--pool", "solo",
           "--loglevel", "INFO", "--without-mingle", "--without-gossip", *extra]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = open(settings.data_dir / "worker.log", "ab")
    proc = subprocess.Popen(cmd, env=worker_env(settings), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_for_run(runtime, key: str, timeout: float = 45.0) -> JobRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with runtime.sessions() as session:
            run = session.scalar(select(JobRun).where(JobRun.key == key))
            if run is not None:
                return run
        time.sleep(0.2)
    log = (runtime.settings.data_dir / "worker.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"job {key} did not finish within {timeout}s; worker log tail:\n{log}")

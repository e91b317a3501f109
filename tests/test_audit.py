"""The hash-chained audit log: verification, tamper detection, append-only enforcement."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from docsvc.audit import service as audit
from docsvc.principal import SERVICE_ACTOR


def _cli_verify(settings) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCSVC_DATABASE_URL": settings.resolved_database_url,
           "DOCSVC_DATA_DIR": str(settings.data_dir), "DOCSVC_BROKER_URL": "memory://"}
    return subprocess.run([sys.executable, "-m", "docsvc", "audit", "verify"], env=env,
                          capture_output=True, text=True, timeout=120)


def _seed(runtime, n=5) -> None:
    with runtime.sessions() as session:
        for i in range(n):
            audit.record(session, SERVICE_ACTOR, "test.event", object_type="thing", object_id=i, note=f"sự kiện {i}")
        session.commit()


def _tamper(runtime, *statements: str) -> None:
    """Act as a database owner who bypasses the append-only trigger."""
    with runtime.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
        for statement in statements:
            conn.exec_driver_sql(statement)


def test_an_intact_chain_verifies_and_the_cli_exits_zero(runtime):
    _seed(runtime)
    with runtime.sessions() as session:
        report = audit.verify_chain(session)
    assert report.ok and report.checked == 5
    result = _cli_verify(runtime.settings)
    assert result.returncode == 0, result.stderr
    assert "intact: 5 events" in result.stdout


@pytest.mark.parametrize("statements,bad_seq,word", [
    (["UPDATE audit_events SET detail = '{\"note\": \"đã sửa\"}' WHERE seq = 3"], 3, "edited"),
    (["DELETE FROM audit_events WHERE seq = 2"], 3, "deleted"),
    (["UPDATE audit_events SET seq = 100 WHERE seq = 2", "UPDATE audit_events SET seq = 2 WHERE seq = 4",
      "UPDATE audit_events SET seq = 4 WHERE seq = 100"], 4, "reordered"),
    (["UPDATE audit_events SET action = 'test.other', hash = 'x' WHERE seq = 5"], 5, "edited"),
])
def test_tampering_is_detected_and_the_first_bad_event_named(runtime, statements, bad_seq, word):
    _seed(runtime)
    _tamper(runtime, *statements)
    with runtime.sessions() as session:
        report = audit.verify_chain(session)
    assert not report.ok
    assert report.first_bad_seq == bad_seq
    assert word in report.reason
    result = _cli_verify(runtime.settings)
    assert result.returncode == 1
    assert f"broken at event #{bad_seq}" in result.stderr


def test_the_database_refuses_updates_and_deletes_of_audit_events(runtime):
    _seed(runtime, 2)
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            with runtime.engine.begin() as conn:
                conn.exec_driver_sql(statement)
    with runtime.sessions() as session:
        assert audit.verify_chain(session).checked == 2


def test_concurrent_appends_keep_one_linear_chain(runtime):
    from concurrent.futures import ThreadPoolExecutor

    def append(i: int) -> None:
        with runtime.sessions() as session:
            audit.record(session, SERVICE_ACTOR, "test.concurrent", object_id=i)
            session.commit()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(append, range(40)))
    with runtime.sessions() as session:
        report = audit.verify_chain(session)
        seqs = list(session.scalars(sa.text("SELECT seq FROM audit_events ORDER BY seq")))
    assert report.ok and report.checked == 40
    assert seqs == list(range(1, 41))

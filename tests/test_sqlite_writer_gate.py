"""SQLite transactions from many threads of one process queue on the writer gate and all
complete; a failed or abandoned transaction never keeps the gate."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from docsvc.db.session import make_engine


def _engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gate.sqlite3'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE counter (n INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO counter VALUES (0)")
    return engine


def test_read_modify_write_from_many_threads_loses_no_update(tmp_path):
    engine = _engine(tmp_path)

    def bump(_):
        with engine.begin() as conn:  # read, then write: safe only because BEGIN took the lock
            n = conn.exec_driver_sql("SELECT n FROM counter").scalar_one()
            conn.execute(sa.text("UPDATE counter SET n = :n"), {"n": n + 1})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(bump, range(400)))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM counter").scalar_one() == 400
    engine.dispose()


def test_failed_and_abandoned_transactions_release_the_gate(tmp_path):
    engine = _engine(tmp_path)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE counter SET n = 1")
            raise RuntimeError("the request failed")
    except RuntimeError:
        pass
    conn = engine.connect()
    conn.exec_driver_sql("UPDATE counter SET n = 2")  # begun, never committed: closed as is
    conn.close()
    with engine.begin() as again:  # would wait 30 s if the gate were still held
        assert again.exec_driver_sql("SELECT n FROM counter").scalar_one() == 0
    engine.dispose()

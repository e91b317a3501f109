"""Engine and session factories for SQLite (embedded, WAL) and PostgreSQL (production)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and write-locking transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _begin_immediate).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    _install_writer_gate(engine, timeout=30.0)
    return engine


def _install_writer_gate(engine: Engine, timeout: float) -> None:
    """Queue this process's SQLite writers on a lock instead of SQLite's busy handler.

    Nearly every request writes (reads are audit events too), so each transaction takes the
    write lock at BEGIN (BEGIN IMMEDIATE), which also avoids the read-then-upgrade failure
    SQLite reports as "database is locked". Waiting threads would otherwise poll with sleeps
    of up to 100 ms, so a freed lock sits idle while they sleep; a Python lock hands it over
    at once. Other processes (the worker) still meet SQLite's own busy timeout."""
    gate = threading.Lock()

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn) -> None:
        if not gate.acquire(timeout=timeout):
            raise sqlite3.OperationalError("database is locked (waited for another writer in this process)")
        conn.info["holds_writer_gate"] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(conn)
            raise

    def _release(conn_or_record) -> None:
        if conn_or_record is not None and conn_or_record.info.pop("holds_writer_gate", False):
            gate.release()

    # A connection reset, invalidated or closed without a rollback event frees the gate too.
    @event.listens_for(engine.pool, "reset")
    def _on_reset(_dbapi_conn, record, _reset_state) -> None:
        _release(record)

    @event.listens_for(engine.pool, "invalidate")
    def _on_invalidate(_dbapi_conn, record, _exception) -> None:
        _release(record)

    @event.listens_for(engine.pool, "close")
    def _on_close(_dbapi_conn, record) -> None:
        _release(record)

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def flush_or_raise(session: Session, error: Exception) -> None:
    """Flush pending inserts; a unique-constraint violation rolls back and raises ``error``
    (a domain error such as "this username is taken") instead of a database error."""
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise error from exc


"""Shared fixtures: real SQLite and PostgreSQL databases, a real filesystem store, the app.

Each test gets its own database: a copy of a migrated SQLite template file, or a PostgreSQL
database created from a migrated template (``CREATE DATABASE … TEMPLATE``), so tests never
share state and the migrations themselves are exercised on both backends."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from docsvc.app import create_app
from docsvc.db import migrate
from docsvc.db.session import make_engine
from docsvc.runtime import Runtime
from docsvc.settings import Settings

PG_ADMIN_URL = os.environ.get("DOCSVC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def _pg_admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _pg_url(name: str) -> str:
    return sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file we copy
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"docsvc_tpl_{uuid.uuid4().hex[:8]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(_pg_url(name))
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def pg_url(pg_template) -> Iterator[str]:
    name = f"docsvc_t_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _pg_url(name)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path) -> str:
    path = tmp_path / "docsvc.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def make_settings(tmp_path: Path, database_url: str, **overrides) -> Settings:
    values = dict(environment="test", data_dir=tmp_path / "data", database_url=database_url,
                  broker_url="memory://", secret_key=TEST_SECRET,
                  auth={"argon2_time_cost": 1, "argon2_memory_kib": 8 * 1024})
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def runtime(settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    yield rt
    rt.dispose()


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    app = create_app(settings, relay_outbox=False)
    with TestClient(app) as c:
        c.runtime = app.state.runtime
        yield c


@pytest.fixture
def province(client):
    """A small province: root UBND tỉnh, two departments, a district and a commune, with
    users of every role. See ``tests.support.factories.Province``."""
    from tests.support.factories import build_province

    return build_province(client)

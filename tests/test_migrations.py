"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import docsvc.db.models  # noqa: F401
from docsvc.db import migrate
from docsvc.db.base import Base
from docsvc.db.session import make_engine


def test_migrated_schema_matches_the_models(database_url):
    engine = make_engine(database_url)
    migrate.upgrade(engine)  # already at head: a second run is a no-op
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    assert diff == []
    assert head == "0005"

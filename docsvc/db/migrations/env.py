"""Alembic environment: runs against the connection handed in by ``docsvc.db.migrate``."""

from alembic import context

import docsvc.db.models  # noqa: F401  (registers every table on Base.metadata)
from docsvc.db.base import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

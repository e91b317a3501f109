"""Database layer: SQLAlchemy 2 models' base, engine/session factories, Alembic migrations."""

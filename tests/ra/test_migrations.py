"""Alembic migrations on SQLite and PostgreSQL: up, down, and in step with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from ra.db import Base, make_engine
from ra.migrations import downgrade_database, upgrade_database


def test_upgrade_creates_every_table_and_downgrade_removes_them(database_url: str) -> None:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    downgrade_database(database_url)
    assert not set(Base.metadata.tables) & set(inspect(engine).get_table_names())
    engine.dispose()


def test_models_match_migrations(database_url: str) -> None:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []

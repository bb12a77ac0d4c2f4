"""Database engine, session factory and declarative base (SQLAlchemy 2).

SQLite is the embedded default (``ra.db_sqlite``: WAL, foreign keys, writers queued on a lock
file then ``BEGIN IMMEDIATE``, so that they are serialised up front instead of failing on lock
upgrade); PostgreSQL is the production database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import DateTime, MetaData, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from ra.db_driver import DriverTransaction
from ra.db_sqlite import CONNECT_ARGS, configure_sqlite

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


MAX_ID = 2**31 - 1  # ids from URLs and forms beyond the integer columns' range name nothing


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def make_engine(url: str, **kwargs: object) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args=CONNECT_ARGS, **kwargs)
        configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def read_session(factory: sessionmaker[Session]) -> Session:
    """A session for long read-only work: on SQLite it does not take the write lock."""
    bind = factory.kw["bind"]
    return factory(bind=bind.execution_options(readonly=True))


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def driver_transaction(factory: sessionmaker[Session]) -> DriverTransaction:
    """A transaction of constant Core statements run on the driver's cursor (issuance's hot path)."""
    return DriverTransaction(factory.kw["bind"])

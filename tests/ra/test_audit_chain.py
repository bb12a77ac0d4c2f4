"""The audit log is a hash chain: a changed, deleted or reordered row is found."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from ra import audit
from ra.db import make_engine, make_session_factory, transaction
from ra.migrations import upgrade_database
from ra.models import AuditEvent


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        for i in range(5):
            audit.record(session, actor="alice", action="test.act", object_type="thing",
                         object_id=i, details={"n": i, "é": "ü"})
    yield factory
    engine.dispose()


def check(factory: sessionmaker[Session]) -> audit.ChainReport:
    with factory() as session:
        return audit.verify(session)


def test_intact_chain_verifies(factory: sessionmaker[Session]) -> None:
    report = check(factory)
    assert report.ok and report.rows == 5


def test_changed_row_is_named(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(actor="mallory"))
    report = check(factory)
    assert report.first_broken_seq == 3 and "hash" in (report.reason or "")


def test_deleted_row_is_named(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq == 2))
    assert check(factory).first_broken_seq == 3


def test_reordered_rows_are_named(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:  # swap the contents of rows 2 and 4, keeping seq
        rows = {e.seq: e for e in session.query(AuditEvent).filter(AuditEvent.seq.in_([2, 4]))}
        fields = ("at", "actor", "action", "object_type", "object_id", "details", "prev_hash", "hash")
        two = {f: getattr(rows[2], f) for f in fields}
        four = {f: getattr(rows[4], f) for f in fields}
        session.execute(delete(AuditEvent).where(AuditEvent.seq.in_([2, 4])))
        session.flush()
        session.add(AuditEvent(seq=2, **four))
        session.add(AuditEvent(seq=4, **two))
    assert check(factory).first_broken_seq == 2

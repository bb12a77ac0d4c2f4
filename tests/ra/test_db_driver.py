"""Statements on the driver's cursor store and read what the ORM stores and reads, on both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from ra import audit
from ra.db import driver_transaction, make_engine, make_session_factory
from ra.db_driver import DriverTransaction
from ra.migrations import upgrade_database
from ra.models import AuditEvent, Authority, Certificate, CertificateState

CERTIFICATES = Certificate.__table__
INSERT = insert(CERTIFICATES).returning(CERTIFICATES.c.id)
UPDATE = update(CERTIFICATES).where(CERTIFICATES.c.id == bindparam("certificate_id"))
BY_SERIAL = select(CERTIFICATES.c.id, CERTIFICATES.c.state, CERTIFICATES.c.reserved_at, CERTIFICATES.c.der) \
    .where(CERTIFICATES.c.serial == bindparam("serial"))
PARIS = timezone(timedelta(hours=1))
AUTHORITY_ID = 7


@contextmanager
def migrated_engine(url: str) -> Iterator[Engine]:
    """An engine on a migrated database holding one authority, disposed afterwards."""
    upgrade_database(url)
    engine = make_engine(url)
    try:
        add_authority(engine)
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    with migrated_engine(database_url) as engine:
        yield engine


def add_authority(engine: Engine) -> None:
    with make_session_factory(engine)() as session:
        session.add(Authority(id=AUTHORITY_ID, slug="ac", name="AC", token_label="t", key_label="k", key_id="01", key_spec="rsa3072",
                              certificate_der=b"\x30", not_before=datetime(2026, 1, 1, tzinfo=timezone.utc),
                              not_after=datetime(2036, 1, 1, tzinfo=timezone.utc)))
        session.commit()


def row(serial: str, **overrides: object) -> dict[str, object]:
    values: dict[str, object] = dict(
        authority_id=AUTHORITY_ID, serial=serial, state=CertificateState.RESERVED, profile="p",
        subject="CN=Marie DUBOIS", email="m@example.fr", public_key_der=b"\x30\x00",
        not_before=datetime(2026, 11, 21, 10, 0, tzinfo=PARIS), not_after=datetime(2029, 11, 20, tzinfo=timezone.utc),
        reserved_at=datetime(2026, 11, 21, 9, 0, 0, 123456, tzinfo=timezone.utc),
    )
    values.update(overrides)
    return values


def test_rows_written_on_the_driver_read_back_through_the_orm(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with driver_transaction(factory) as tx:
        new_id = tx.execute(INSERT, row("a1")).scalar_one()
        tx.execute(UPDATE, {"certificate_id": new_id, "state": CertificateState.ISSUED, "der": b"\x30\x03abc",
                            "issued_at": datetime(2026, 11, 21, 9, 0, 1, tzinfo=timezone.utc)})
        seq = audit.record(tx, actor="test", action="certificate.issue", object_type="certificate",
                           object_id="a1", details={"é": "ü"})
    with factory() as session:
        stored = session.get(Certificate, new_id)
        assert stored is not None
        assert (stored.serial, stored.state, stored.der) == ("a1", CertificateState.ISSUED, b"\x30\x03abc")
        assert stored.not_before == datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)  # 10:00 in Paris
        assert stored.reserved_at == datetime(2026, 11, 21, 9, 0, 0, 123456, tzinfo=timezone.utc)
        assert stored.reserved_at.tzinfo is not None
        assert session.get(AuditEvent, seq).details == '{"é":"ü"}'
        assert audit.verify(session).ok


def test_selected_values_come_back_as_the_orm_gives_them(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with factory() as session:
        session.add(Certificate(**row("b2")))
        session.commit()
    with driver_transaction(factory) as tx:
        found = tx.execute(BY_SERIAL, {"serial": "b2"}).all()
        missing = tx.execute(BY_SERIAL, {"serial": "none"}).first()
    assert missing is None
    [(_id, state, reserved_at, der)] = found
    assert state == CertificateState.RESERVED and der is None
    assert reserved_at == datetime(2026, 11, 21, 9, 0, 0, 123456, tzinfo=timezone.utc)
    assert reserved_at.tzinfo is not None


def test_a_driver_error_is_sqlalchemys_and_rolls_the_transaction_back(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with driver_transaction(factory) as tx:
        tx.execute(INSERT, row("c3"))
    with pytest.raises(IntegrityError):
        with driver_transaction(factory) as tx:
            tx.execute(INSERT, row("c4"))  # written, then rolled back with the rest
            tx.execute(INSERT, row("c3"))  # the serial is unique
    with factory() as session:
        assert sorted(session.scalars(select(Certificate.serial))) == ["c3"]
    with driver_transaction(factory) as tx:  # the pool hands out a usable connection again
        tx.execute(INSERT, row("c5"))
    with factory() as session:
        assert sorted(session.scalars(select(Certificate.serial))) == ["c3", "c5"]


def test_any_exception_rolls_back(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with pytest.raises(RuntimeError):
        with driver_transaction(factory) as tx:
            tx.execute(INSERT, row("d1"))
            raise RuntimeError("stop")
    with factory() as session:
        assert session.scalar(select(Certificate.id)) is None


def test_expanding_parameters_are_refused_clearly(engine: Engine) -> None:
    statement = select(CERTIFICATES.c.id).where(CERTIFICATES.c.state.in_(["reserved", "issued"]))
    with pytest.raises(ValueError, match="IN lists"):
        with DriverTransaction(engine) as tx:
            tx.execute(statement)


def test_sqlite_driver_transactions_queue_on_the_writer_lock(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with migrated_engine(f"sqlite:///{tmp_path / 'driver.db'}") as engine:
        order: list[str] = []
        inside = threading.Event()

        def second() -> None:
            inside.wait()
            with DriverTransaction(engine) as tx:
                order.append("second begins")
                tx.execute(INSERT, row("e2"))

        thread = threading.Thread(target=second)
        thread.start()
        with DriverTransaction(engine) as tx:
            tx.execute(INSERT, row("e1"))
            inside.set()
            thread.join(timeout=0.3)
            assert thread.is_alive()  # waiting for the writer lock, not failing with "database is locked"
            order.append("first commits")
        thread.join(timeout=10)
        assert order == ["first commits", "second begins"]
        with make_session_factory(engine)() as session:
            assert sorted(session.scalars(select(Certificate.serial))) == ["e1", "e2"]

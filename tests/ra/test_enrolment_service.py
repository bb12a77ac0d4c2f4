"""Server side of token enrolment and the token lifecycle, on a real CA instance and databases."""

from __future__ import annotations

import itertools
import secrets
import subprocess
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from cryptography import x509
from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from ca.crl import Reason
from ra.config import ISSUING_SLUG
from ra.db import utcnow
from ra.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import (
    AuditEvent, Certificate, CertificateState, Order, OrderState, Role, StaffAccount, TokenEvent, TokenState,
    UsbToken,
)
from ra.services import enrolment
from ra.services.crl import publish_crl
from ra.services.issuance import STALE_RESERVATION
from ra.services.revocation import revoke_certificate
from ra.services.tokens import TRANSITIONS, change_token_state
from tests.ra.enrolment_setup import (
    Ready, csr_pem, deliver, make_holder, make_order, make_session, new_serial, ready_order, record_check,
)
from tests.ra.web import make_account, make_entity

TODAY = date.today()


@pytest.fixture
def ready(db_session: Session, cipher: FieldCipher) -> Ready:
    prepared = ready_order(db_session, cipher)
    db_session.commit()
    return prepared


def account(session: Session, account_id: int) -> StaffAccount:
    found = session.get(StaffAccount, account_id)
    assert found is not None
    return found


def register(pki: Instance, cipher: FieldCipher, ready: Ready, *, serial: str | None = None,
             so_pin: str | None = "so-pin-123456", actor_id: int | None = None) -> UsbToken:
    with pki.factory() as session:
        token = enrolment.register_token(
            session, account(session, actor_id or ready.operator.account.id), ready.order.id,
            serial=serial or new_serial(), model="SoftHSM v2", so_pin=so_pin, cipher=cipher, today=TODAY)
        session.commit()
        return token


def submit(pki: Instance, ready: Ready, csr: bytes | None = None, *, actor_id: int | None = None,
           today: date = TODAY) -> Certificate:
    return enrolment.submit_csr(pki.factory, pki.ca, actor_id or ready.operator.account.id, ready.order.id,
                                csr or csr_pem(), today=today)


def confirm(pki: Instance, ready: Ready, serial: str) -> enrolment.Delivery:
    with pki.factory() as session:
        done = enrolment.confirm_delivery(session, account(session, ready.operator.account.id), ready.order.id,
                                          token_serial=serial, today=TODAY)
        session.commit()
        return done


def order_row(pki: Instance, order_id: int) -> Order:
    with pki.factory() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order


def certificates_of(pki: Instance, order_id: int) -> list[Certificate]:
    with pki.factory() as session:
        return list(session.scalars(select(Certificate).where(Certificate.order_id == order_id)))


def audit_rows_mentioning(pki: Instance, secret: str) -> int:
    with pki.factory() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(or_(
            AuditEvent.details.contains(secret), AuditEvent.object_id.contains(secret),
            AuditEvent.actor.contains(secret)))) or 0


# --- today's worklist ------------------------------------------------------------------------

def test_worklist_holds_only_todays_identity_verified_orders_of_this_operator_in_scope(
        pki: Instance, db_session: Session, cipher: FieldCipher) -> None:
    ready = ready_order(db_session, cipher)
    entity, operator = ready.entity, ready.operator.account
    holder = make_holder(db_session)
    scheduled = make_order(db_session, entity, holder, operator, state=OrderState.SCHEDULED, delivery=ready.delivery)
    cancelled = make_order(db_session, entity, holder, operator, state=OrderState.CANCELLED, delivery=ready.delivery)
    issued = make_order(db_session, entity, holder, operator, state=OrderState.ISSUED, delivery=ready.delivery)
    for day in (TODAY - timedelta(days=1), TODAY + timedelta(days=1)):
        make_order(db_session, entity, holder, operator, delivery=make_session(db_session, operator, day=day))
    colleague = make_account(db_session, cipher, Role.MC, entity=entity).account
    make_order(db_session, entity, holder, operator, delivery=make_session(db_session, colleague))
    elsewhere = make_entity(db_session)
    make_order(db_session, elsewhere, holder, operator, delivery=ready.delivery)  # outside the MC's scope
    db_session.commit()

    with pki.factory() as session:
        items = enrolment.today_worklist(session, account(session, operator.id), TODAY)
    assert {item.order_id for item in items} == {ready.order.id, issued.id}  # issued: to finish the delivery
    assert scheduled.id not in {i.order_id for i in items} and cancelled.id not in {i.order_id for i in items}
    item = next(i for i in items if i.order_id == ready.order.id)
    assert (item.holder, item.entity, item.session_id) == ("Annaïg LE GOFF", entity.name, ready.delivery.id)
    assert item.token_choice == "new" and item.token_serial is None


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.OPERATOR])
def test_worklist_is_refused_to_roles_that_do_not_deliver(pki: Instance, db_session: Session,
                                                          cipher: FieldCipher, role: Role) -> None:
    person = make_account(db_session, cipher, role)
    db_session.commit()
    with pki.factory() as session, pytest.raises(Forbidden):
        enrolment.today_worklist(session, account(session, person.account.id), TODAY)


# --- registering the token -------------------------------------------------------------------

def test_new_token_escrows_its_so_pin_encrypted(pki: Instance, ready: Ready, cipher: FieldCipher) -> None:
    so_pin = "SO" + secrets.token_hex(10)
    serial = new_serial()
    token = register(pki, cipher, ready, serial=serial, so_pin=so_pin)
    assert token.state == TokenState.INITIALISED
    assert (token.holder_id, token.entity_id) == (ready.holder.id, ready.entity.id)
    assert order_row(pki, ready.order.id).token_id == token.id
    with pki.factory() as session:
        raw = session.execute(text("SELECT so_pin_escrow FROM usb_tokens WHERE serial = :s"), {"s": serial}).scalar_one()
        events = session.scalars(select(TokenEvent).where(TokenEvent.token_id == token.id)).all()
    raw = bytes(raw)
    assert so_pin.encode() not in raw and so_pin.encode().hex().encode() not in raw
    assert cipher.decrypt(raw, purpose=enrolment.SO_PIN_PURPOSE) == so_pin
    assert [(e.from_state, e.to_state) for e in events] == [("blank", "initialised")]
    assert audit_rows_mentioning(pki, so_pin) == 0
    if pki.settings.database_url.startswith("sqlite"):
        path = Path(pki.settings.database_url.removeprefix("sqlite:///"))
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():  # read by another process: closing a descriptor on the database file
                # here would drop this process's SQLite locks (POSIX), and the next writer would
                # checkpoint the WAL under our connections' feet ("database disk image is malformed")
                content = subprocess.run(["cat", str(file)], capture_output=True, check=True).stdout
                assert so_pin.encode() not in content


def test_new_token_without_so_pin_is_refused(pki: Instance, ready: Ready, cipher: FieldCipher) -> None:
    with pytest.raises(InvalidInput):
        register(pki, cipher, ready, so_pin=None)
    assert order_row(pki, ready.order.id).token_id is None


def test_interrupted_enrolment_registers_the_same_token_again(pki: Instance, ready: Ready,
                                                              cipher: FieldCipher) -> None:
    serial = new_serial()
    first = register(pki, cipher, ready, serial=serial, so_pin="first-so-pin")
    again = register(pki, cipher, ready, serial=serial, so_pin="second-so-pin")  # token re-initialised
    assert again.id == first.id
    with pki.factory() as session:
        assert enrolment.escrowed_so_pin(session, account(session, ready.operator.account.id), serial,
                                         cipher) == "second-so-pin"


@pytest.mark.parametrize("state,error", [(TokenState.ACTIVE, InvalidInput), (TokenState.INITIALISED, InvalidInput),
                                         (TokenState.BLOCKED, InvalidInput), (TokenState.LOST, IllegalTransition)])
def test_a_token_in_service_is_not_taken_as_new(pki: Instance, db_session: Session, cipher: FieldCipher,
                                                state: TokenState, error: type[Exception]) -> None:
    ready = ready_order(db_session, cipher)
    serial = new_serial()
    db_session.add(UsbToken(serial=serial, model="m", state=state, entity_id=ready.entity.id))
    db_session.commit()
    with pytest.raises(error):
        register(pki, cipher, ready, serial=serial)
    assert order_row(pki, ready.order.id).token_id is None


def test_a_retired_token_may_serve_again_as_new(pki: Instance, db_session: Session, cipher: FieldCipher) -> None:
    ready = ready_order(db_session, cipher)
    serial = new_serial()
    db_session.add(UsbToken(serial=serial, model="m", state=TokenState.RETIRED))
    db_session.commit()
    assert register(pki, cipher, ready, serial=serial).state == TokenState.INITIALISED


def reuse_setup(db_session: Session, cipher: FieldCipher, state: TokenState) -> tuple[Ready, UsbToken]:
    entity = make_entity(db_session)
    holder = make_holder(db_session)
    old = UsbToken(serial=new_serial(), model="m", state=state, entity_id=entity.id, holder_id=holder.id,
                   so_pin_escrow=cipher.encrypt("old-so-pin", purpose=enrolment.SO_PIN_PURPOSE))
    db_session.add(old)
    db_session.flush()
    ready = ready_order(db_session, cipher, entity=entity, holder=holder, reused=old)
    db_session.commit()
    return ready, old


@pytest.mark.parametrize("state", [TokenState.ACTIVE, TokenState.BLOCKED])
def test_reused_token_must_be_the_one_ordered(pki: Instance, db_session: Session, cipher: FieldCipher,
                                              state: TokenState) -> None:
    ready, old = reuse_setup(db_session, cipher, state)
    with pytest.raises(InvalidInput):
        register(pki, cipher, ready, serial=new_serial())
    token = register(pki, cipher, ready, serial=old.serial, so_pin=None)
    assert token.id == old.id and token.state == TokenState.INITIALISED
    with pki.factory() as session:  # the escrow of the reused token is kept (the station wipes with it)
        assert enrolment.escrowed_so_pin(session, account(session, ready.operator.account.id), old.serial,
                                         cipher) == "old-so-pin"


@pytest.mark.parametrize("state", [TokenState.LOST, TokenState.RETIRED])
def test_a_lost_or_retired_token_cannot_be_reused(pki: Instance, db_session: Session, cipher: FieldCipher,
                                                  state: TokenState) -> None:
    ready, old = reuse_setup(db_session, cipher, state)
    with pytest.raises(IllegalTransition):
        register(pki, cipher, ready, serial=old.serial)
    with pki.factory() as session:
        assert session.get(UsbToken, old.id).state == state  # type: ignore[union-attr]


# --- the escrowed SO PIN -----------------------------------------------------------------------

def test_reading_the_escrowed_so_pin_is_audited_and_scoped(pki: Instance, db_session: Session,
                                                           cipher: FieldCipher) -> None:
    ready = ready_order(db_session, cipher)
    outsider = make_account(db_session, cipher, Role.MC, entity=make_entity(db_session))
    auditor = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    serial = new_serial()
    register(pki, cipher, ready, serial=serial, so_pin="escrowed-1234")
    with pki.factory() as session:
        assert enrolment.escrowed_so_pin(session, account(session, ready.operator.account.id), serial,
                                         cipher) == "escrowed-1234"
        session.commit()
        read = session.scalars(select(AuditEvent).where(AuditEvent.action == "token.so_pin_read",
                                                        AuditEvent.object_id == serial)).all()
        assert len(read) == 1 and read[0].actor == ready.operator.email
        with pytest.raises(NotFound):
            enrolment.escrowed_so_pin(session, account(session, outsider.account.id), serial, cipher)
        with pytest.raises(Forbidden):
            enrolment.escrowed_so_pin(session, account(session, auditor.account.id), serial, cipher)
        with pytest.raises(NotFound):
            enrolment.escrowed_so_pin(session, account(session, ready.operator.account.id), "unknown", cipher)
    assert audit_rows_mentioning(pki, "escrowed-1234") == 0


# --- submitting the CSR: every refusal ---------------------------------------------------------

def _not_today(db: Session, cipher: FieldCipher, r: Ready, delta: int) -> int:
    r.delivery.session_date = TODAY + timedelta(days=delta)
    return r.operator.account.id


def _another_operator(db: Session, cipher: FieldCipher, r: Ready) -> int:
    return make_account(db, cipher, Role.MC, entity=r.entity).account.id  # in scope, not the session's operator


def _face_to_face_by_someone_else(db: Session, cipher: FieldCipher, r: Ready) -> int:
    other = make_account(db, cipher, Role.AED, scope=(r.entity,)).account
    record_check(db, cipher, r.order, r.delivery, other)  # the latest check is someone else's
    return r.operator.account.id


def _out_of_scope(db: Session, cipher: FieldCipher, r: Ready) -> int:
    return make_account(db, cipher, Role.MC, entity=make_entity(db)).account.id


def _role(role: Role) -> Callable[[Session, FieldCipher, Ready], int]:
    return lambda db, cipher, r: make_account(db, cipher, role).account.id


def _unqualified(db: Session, cipher: FieldCipher, r: Ready) -> int:
    return make_account(db, cipher, Role.MC, entity=r.entity, qualified=False).account.id


REFUSALS: dict[str, tuple[Callable[..., int], type[Exception]]] = {
    "session-yesterday": (lambda db, c, r: _not_today(db, c, r, -1), IllegalTransition),
    "session-tomorrow": (lambda db, c, r: _not_today(db, c, r, 1), IllegalTransition),
    "another-operator": (_another_operator, Forbidden),
    "face-to-face-by-someone-else": (_face_to_face_by_someone_else, IllegalTransition),
    "out-of-scope-operator": (_out_of_scope, NotFound),
    "auditor": (_role(Role.AUDITOR), Forbidden),
    "ca-operator": (_role(Role.OPERATOR), Forbidden),
    "mc-without-training": (_unqualified, Forbidden),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_submit_csr_is_refused(pki: Instance, db_session: Session, cipher: FieldCipher, case: str) -> None:
    ready = ready_order(db_session, cipher)
    db_session.commit()
    register(pki, cipher, ready)
    arrange, error = REFUSALS[case]
    actor_id = arrange(db_session, cipher, ready)
    db_session.commit()
    with pytest.raises(error):
        submit(pki, ready, actor_id=actor_id)
    assert certificates_of(pki, ready.order.id) == []
    assert order_row(pki, ready.order.id).state == OrderState.IDENTITY_VERIFIED


@pytest.mark.parametrize("state", sorted(set(OrderState) - {OrderState.IDENTITY_VERIFIED}))
def test_submit_csr_needs_an_identity_verified_order(pki: Instance, db_session: Session, cipher: FieldCipher,
                                                     state: OrderState) -> None:
    ready = ready_order(db_session, cipher)
    db_session.commit()
    register(pki, cipher, ready)
    with pki.factory() as session:
        session.get(Order, ready.order.id).state = state  # type: ignore[union-attr]
        session.commit()
    with pytest.raises(IllegalTransition):
        submit(pki, ready)
    assert certificates_of(pki, ready.order.id) == []


def test_submit_csr_needs_the_token_registered_first(pki: Instance, ready: Ready) -> None:
    with pytest.raises(IllegalTransition, match="support"):
        submit(pki, ready)
    assert certificates_of(pki, ready.order.id) == []


# --- submitting the CSR: one certificate per order ----------------------------------------------

def test_the_same_csr_twice_gives_the_same_certificate(pki: Instance, ready: Ready, cipher: FieldCipher) -> None:
    register(pki, cipher, ready)
    csr = csr_pem()
    first = submit(pki, ready, csr)
    second = submit(pki, ready, csr)
    assert (second.id, second.serial, second.der) == (first.id, first.serial, first.der)
    rows = certificates_of(pki, ready.order.id)
    assert [c.id for c in rows] == [first.id] and rows[0].state == CertificateState.ISSUED
    order = order_row(pki, ready.order.id)
    assert (order.state, order.certificate_id) == (OrderState.ISSUED, first.id)
    subject = x509.load_der_x509_certificate(first.der).subject  # type: ignore[arg-type]
    assert subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "Annaïg LE GOFF"
    assert subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == ready.entity.name


def test_another_csr_after_issuance_is_refused(pki: Instance, ready: Ready, cipher: FieldCipher) -> None:
    register(pki, cipher, ready)
    first = submit(pki, ready)
    with pytest.raises(IllegalTransition):
        submit(pki, ready)
    assert [c.id for c in certificates_of(pki, ready.order.id)] == [first.id]


def _reservation(pki: Instance, ready: Ready, *, age: timedelta) -> int:
    """A certificate row left ``reserved`` for the order ``age`` ago (a process that stopped)."""
    with pki.factory() as session:
        authority_id = pki.ca.authority(session, ISSUING_SLUG).id
        row = Certificate(authority_id=authority_id, serial=format(2**126 + secrets.randbits(64), "x"),
                          state=CertificateState.RESERVED, profile="rgs2-entite-double", subject="CN=x",
                          email="x@example.fr", public_key_der=b"", not_before=utcnow(), not_after=utcnow(),
                          reserved_at=utcnow() - age, order_id=ready.order.id)
        session.add(row)
        session.commit()
        return row.id


def test_a_reservation_in_flight_refuses_a_second_issuance(pki: Instance, ready: Ready,
                                                           cipher: FieldCipher) -> None:
    register(pki, cipher, ready)
    in_flight = _reservation(pki, ready, age=STALE_RESERVATION / 5)
    with pytest.raises(IllegalTransition, match="en cours"):
        submit(pki, ready)
    rows = certificates_of(pki, ready.order.id)
    assert [(c.id, c.state) for c in rows] == [(in_flight, CertificateState.RESERVED)]
    assert order_row(pki, ready.order.id).state == OrderState.IDENTITY_VERIFIED


def test_an_abandoned_reservation_is_failed_and_the_order_issued(pki: Instance, ready: Ready,
                                                                 cipher: FieldCipher) -> None:
    register(pki, cipher, ready)
    abandoned = _reservation(pki, ready, age=STALE_RESERVATION + timedelta(minutes=1))
    issued = submit(pki, ready)
    rows = {c.id: c for c in certificates_of(pki, ready.order.id)}
    assert set(rows) == {abandoned, issued.id}
    assert rows[abandoned].state == CertificateState.FAILED
    assert rows[abandoned].failure == "abandoned reservation: stopped before storing"
    assert rows[issued.id].state == CertificateState.ISSUED
    order = order_row(pki, ready.order.id)
    assert (order.state, order.certificate_id) == (OrderState.ISSUED, issued.id)


def test_the_token_cannot_change_once_issued(pki: Instance, ready: Ready, cipher: FieldCipher) -> None:
    register(pki, cipher, ready)
    submit(pki, ready)
    with pytest.raises(IllegalTransition):
        register(pki, cipher, ready)


# --- confirming the delivery -------------------------------------------------------------------

def test_delivery_activates_the_token_and_hands_the_code_once(pki: Instance, ready: Ready,
                                                              cipher: FieldCipher) -> None:
    serial = new_serial()
    register(pki, cipher, ready, serial=serial)
    cert = submit(pki, ready)
    with pytest.raises(InvalidInput):
        confirm(pki, ready, new_serial())  # not the token the certificate was written on
    done = confirm(pki, ready, serial)
    assert (done.order.state, done.token.state, done.certificate.id) == (OrderState.DELIVERED, TokenState.ACTIVE,
                                                                          cert.id)
    code = done.revocation_code
    assert len(enrolment.normalise_code(code)) == 16
    with pki.factory() as session:
        stored = session.get(Certificate, cert.id)
        events = session.scalars(select(TokenEvent).where(TokenEvent.token_id == done.token.id)
                                 .order_by(TokenEvent.id)).all()
    assert stored is not None and stored.revocation_code_hash and code not in stored.revocation_code_hash
    assert PasswordHasher().verify(stored.revocation_code_hash, enrolment.normalise_code(code))
    with pytest.raises(VerificationError):
        PasswordHasher().verify(stored.revocation_code_hash, enrolment.normalise_code(enrolment.new_revocation_code()))
    assert [e.to_state for e in events] == ["initialised", "active"]
    assert audit_rows_mentioning(pki, code) == 0 and audit_rows_mentioning(pki, enrolment.normalise_code(code)) == 0
    with pytest.raises(IllegalTransition):
        confirm(pki, ready, serial)  # a second confirmation draws no second code
    with pki.factory() as session:
        assert session.get(Certificate, cert.id).revocation_code_hash == stored.revocation_code_hash  # type: ignore[union-attr]


def redraw(pki: Instance, ready: Ready, serial: str, *, actor_id: int | None = None) -> enrolment.Delivery:
    with pki.factory() as session:
        done = enrolment.redraw_revocation_code(session, account(session, actor_id or ready.operator.account.id),
                                                ready.order.id, token_serial=serial, today=TODAY)
        session.commit()
        return done


def stored_code_hash(pki: Instance, cert_id: int) -> str:
    with pki.factory() as session:
        return session.get_one(Certificate, cert_id).revocation_code_hash  # type: ignore[return-value]


def test_a_lost_delivery_answer_gets_a_new_code_and_the_unseen_one_stops_working(
        pki: Instance, ready: Ready, cipher: FieldCipher) -> None:
    serial = new_serial()
    register(pki, cipher, ready, serial=serial)
    with pytest.raises(IllegalTransition, match="à la remise"):
        redraw(pki, ready, serial)  # not delivered yet: the code comes with the delivery
    cert = submit(pki, ready)
    lost = confirm(pki, ready, serial).revocation_code
    with pytest.raises(InvalidInput):
        redraw(pki, ready, new_serial())  # the token must be the one at hand
    again = redraw(pki, ready, serial)
    assert again.revocation_code != lost and again.certificate.id == cert.id
    stored = stored_code_hash(pki, cert.id)
    assert PasswordHasher().verify(stored, enrolment.normalise_code(again.revocation_code))
    with pytest.raises(VerificationError):
        PasswordHasher().verify(stored, enrolment.normalise_code(lost))
    with pki.factory() as session:
        redraws = session.scalars(select(AuditEvent).where(AuditEvent.action == "order.revocation_code_redraw")
                                  .where(AuditEvent.object_id == ready.order.reference)).all()
    assert len(redraws) == 1 and audit_rows_mentioning(pki, enrolment.normalise_code(again.revocation_code)) == 0


def test_only_the_sessions_operator_redraws_a_code_and_never_for_a_revoked_certificate(
        pki: Instance, db_session: Session, ready: Ready, cipher: FieldCipher) -> None:
    serial = new_serial()
    register(pki, cipher, ready, serial=serial)
    cert = submit(pki, ready)
    confirm(pki, ready, serial)
    before = stored_code_hash(pki, cert.id)
    other = make_account(db_session, cipher, Role.OPERATOR)
    db_session.commit()
    with pytest.raises(Forbidden):
        redraw(pki, ready, serial, actor_id=other.account.id)
    with pki.factory() as session:
        revoke_certificate(session, session.get_one(Certificate, cert.id), reason=Reason.superseded, actor="test")
        session.commit()
    with pytest.raises(IllegalTransition, match="révoqué"):
        redraw(pki, ready, serial)
    assert stored_code_hash(pki, cert.id) == before


def test_delivery_before_issuance_is_refused(pki: Instance, ready: Ready, cipher: FieldCipher) -> None:
    serial = new_serial()
    register(pki, cipher, ready, serial=serial)
    with pytest.raises(IllegalTransition):
        confirm(pki, ready, serial)
    assert order_row(pki, ready.order.id).state == OrderState.IDENTITY_VERIFIED


# --- the token lifecycle -----------------------------------------------------------------------

PAIRS = list(itertools.product(TokenState, TokenState))


@pytest.mark.parametrize("start,to", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_token_transition_table(pki: Instance, db_session: Session, cipher: FieldCipher,
                                start: TokenState, to: TokenState) -> None:
    operator = make_account(db_session, cipher, Role.OPERATOR)
    token = UsbToken(serial=new_serial(), model="m", state=start, entity_id=make_entity(db_session).id)
    db_session.add(token)
    db_session.commit()
    allowed = to in TRANSITIONS[start]
    with pki.factory() as session:
        if allowed:
            change_token_state(session, account(session, operator.account.id), token.serial, to, note="essai")
            session.commit()
        else:
            with pytest.raises(IllegalTransition):
                change_token_state(session, account(session, operator.account.id), token.serial, to)
            session.rollback()
        stored = session.get(UsbToken, token.id)
        events = session.scalars(select(TokenEvent).where(TokenEvent.token_id == token.id)).all()
        audited = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "token.state", AuditEvent.object_id == token.serial))
    assert stored is not None
    if allowed:
        assert stored.state == to
        assert [(e.from_state, e.to_state, e.actor, e.note) for e in events] == [
            (str(start), str(to), operator.email, "essai")]
        assert audited == 1
    else:
        assert stored.state == start and events == [] and audited == 0


def test_lost_is_final_and_blocked_can_come_back() -> None:
    assert TRANSITIONS[TokenState.LOST] == frozenset()
    assert TokenState.ACTIVE in TRANSITIONS[TokenState.BLOCKED]
    assert all(TokenState.LOST in TRANSITIONS[s] for s in (TokenState.INITIALISED, TokenState.ACTIVE,
                                                             TokenState.BLOCKED))


def test_token_events_are_scoped(pki: Instance, db_session: Session, cipher: FieldCipher) -> None:
    entity = make_entity(db_session)
    token = UsbToken(serial=new_serial(), model="m", state=TokenState.ACTIVE, entity_id=entity.id)
    loose = UsbToken(serial=new_serial(), model="m", state=TokenState.BLANK)  # no entity yet
    db_session.add_all([token, loose])
    outsider = make_account(db_session, cipher, Role.MC, entity=make_entity(db_session))
    auditor = make_account(db_session, cipher, Role.AUDITOR)
    untrained = make_account(db_session, cipher, Role.MC, entity=entity, qualified=False)
    mc = make_account(db_session, cipher, Role.MC, entity=entity)
    db_session.commit()
    with pki.factory() as session:
        for person, error in ((outsider, NotFound), (auditor, Forbidden), (untrained, Forbidden)):
            with pytest.raises(error):
                change_token_state(session, account(session, person.account.id), token.serial, TokenState.BLOCKED)
            session.rollback()
        with pytest.raises(Forbidden):  # a token of no entity: CA operators only
            change_token_state(session, account(session, mc.account.id), loose.serial, TokenState.RETIRED)
        session.rollback()
        with pytest.raises(NotFound):
            change_token_state(session, account(session, mc.account.id), "no-such-token", TokenState.BLOCKED)
        session.rollback()
        change_token_state(session, account(session, mc.account.id), token.serial, TokenState.BLOCKED)
        session.commit()
        assert session.get(UsbToken, token.id).state == TokenState.BLOCKED  # type: ignore[union-attr]


def test_a_lost_token_has_its_certificates_revoked_and_listed_in_the_next_crl(
        pki: Instance, db_session: Session, cipher: FieldCipher) -> None:
    ready = ready_order(db_session, cipher)
    db_session.commit()
    delivered = deliver(pki, cipher, ready)
    with pki.factory() as session:
        change_token_state(session, account(session, ready.operator.account.id), delivered.token.serial,
                           TokenState.LOST, note="perdu dans le train")
        session.commit()
        cert = session.get(Certificate, delivered.certificate.id)
        assert cert is not None and cert.revoked_at is not None and cert.revocation_reason == 1
        details = session.scalars(select(AuditEvent.details).where(
            AuditEvent.action == "token.state", AuditEvent.object_id == delivered.token.serial)).one()
        assert cert.serial in details
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "certificate.revoke", AuditEvent.object_id == cert.serial)) == 1
    publish_crl(pki.factory, pki.ca, ISSUING_SLUG, actor="test", publication_dir=pki.settings.publication_dir,
                next_update_hours=24)
    crl = x509.load_der_x509_crl((pki.settings.publication_dir / f"{ISSUING_SLUG}.crl").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(int(delivered.certificate.serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    with pki.factory() as session, pytest.raises(IllegalTransition):  # lost is final
        change_token_state(session, account(session, ready.operator.account.id), delivered.token.serial,
                           TokenState.ACTIVE)

"""The face-to-face identity check: scheduled → identity_verified, on the session's day, by the
session's operator who is never the holder, with a valid ID whose number is stored encrypted.

Boundary: an ID whose expiry date is the session's day is valid that day (accepted); one that
expired the day before is refused.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ra.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from ra.fieldcrypt import FieldCipher
from ra.labels import STATE_LABELS
from ra.models import AuditEvent, DeliverySession, IdentityCheck, Order, OrderState, Role
from ra.services.identity import ID_NUMBER_PURPOSE, country_choices, record_identity_check
from ra.services.sessions import mark_absent
from tests.ra.session_setup import World, evidence, make_delivery, make_holder, make_order, make_world
from tests.ra.web import make_account

TODAY = date.today()


def _scheduled(db: Session, cipher: FieldCipher, *, operator: str = "mc", entity: str = "commune",
               **holder: str) -> tuple[World, DeliverySession, Order]:
    """A world, a session of today operated by ``operator``, and a scheduled order in it."""
    w = make_world(db, cipher)
    delivery = make_delivery(db, getattr(w, operator).account)
    order = make_order(db, getattr(w, entity), w.mc.account, state=OrderState.SCHEDULED, delivery=delivery,
                       holder=make_holder(db, **holder) if holder else None)
    db.commit()
    return w, delivery, order


def test_face_to_face_verifies_the_identity(db_session: Session, cipher: FieldCipher) -> None:
    w, delivery, order = _scheduled(db_session, cipher)
    check = record_identity_check(db_session, w.mc.account, delivery.id, order.id,
                                  evidence(document_type="passeport", document_number="20ab 12345",
                                           issuing_country="fra"), cipher=cipher)
    db_session.commit()
    assert order.state == OrderState.IDENTITY_VERIFIED
    assert (check.order_id, check.session_id, check.operator_id) == (order.id, delivery.id, w.mc.account.id)
    assert (check.document_type, check.issuing_country, check.names_match) == ("passeport", "FRA", True)
    assert check.checked_at is not None
    [event] = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "identity.check",
                                                          AuditEvent.object_id == order.reference))
    assert '"document_type":"passeport"' in event.details and '"issuing_country":"FRA"' in event.details
    assert "20AB12345" not in event.details and "document_number" not in event.details


def test_document_number_is_never_stored_in_clear(db_session: Session, cipher: FieldCipher,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    number = "Z9QK4T7M2"
    w, delivery, order = _scheduled(db_session, cipher)
    check = record_identity_check(db_session, w.mc.account, delivery.id, order.id,
                                  evidence(document_number=number), cipher=cipher)
    db_session.commit()
    raw = db_session.execute(text("SELECT document_number FROM identity_checks WHERE id = :id"),
                             {"id": check.id}).scalar_one()
    raw = bytes(raw)
    assert number.encode() not in raw and number.encode("utf-16-le") not in raw
    assert cipher.decrypt(raw, purpose=ID_NUMBER_PURPOSE) == number
    audit_rows = db_session.scalars(select(AuditEvent.details).where(AuditEvent.object_id == order.reference))
    assert all(number not in details for details in audit_rows)
    assert number not in caplog.text


def test_an_id_expiring_on_the_session_day_is_accepted(db_session: Session, cipher: FieldCipher) -> None:
    w, delivery, order = _scheduled(db_session, cipher)
    record_identity_check(db_session, w.mc.account, delivery.id, order.id, evidence(document_expiry=TODAY),
                          cipher=cipher)
    db_session.commit()
    assert order.state == OrderState.IDENTITY_VERIFIED


def test_an_id_expired_the_day_before_is_refused(db_session: Session, cipher: FieldCipher) -> None:
    w, delivery, order = _scheduled(db_session, cipher)
    with pytest.raises(InvalidInput, match="a expiré le"):
        record_identity_check(db_session, w.mc.account, delivery.id, order.id,
                              evidence(document_expiry=TODAY - timedelta(days=1)), cipher=cipher)
    db_session.rollback()
    assert db_session.get_one(Order, order.id).state == OrderState.SCHEDULED


@pytest.mark.parametrize("country", ["XXX", "FR", "", "FRANCE", "ZZZ"])
def test_unknown_issuing_country_is_refused(db_session: Session, cipher: FieldCipher, country: str) -> None:
    w, delivery, order = _scheduled(db_session, cipher)
    with pytest.raises(InvalidInput, match="Pays de délivrance inconnu"):
        record_identity_check(db_session, w.mc.account, delivery.id, order.id,
                              evidence(issuing_country=country), cipher=cipher)
    db_session.rollback()


def test_a_foreign_country_is_accepted(db_session: Session, cipher: FieldCipher) -> None:
    w, delivery, order = _scheduled(db_session, cipher)
    check = record_identity_check(db_session, w.mc.account, delivery.id, order.id,
                                  evidence(issuing_country="DEU"), cipher=cipher)
    assert check.issuing_country == "DEU"
    db_session.rollback()


def test_names_mismatch_needs_a_new_order(db_session: Session, cipher: FieldCipher) -> None:
    w, delivery, order = _scheduled(db_session, cipher)
    with pytest.raises(InvalidInput, match="nouvelle commande"):
        record_identity_check(db_session, w.mc.account, delivery.id, order.id, evidence(names_match=False),
                              cipher=cipher)
    db_session.rollback()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("in_person", False, "en personne"),
    ("document_type", "permis", "Type de pièce"),
    ("document_number", "", "Numéro"),
    ("document_number", "AB-12", "Numéro"),
    ("document_number", "X" * 21, "Numéro"),
    ("document_expiry", None, "obligatoire"),
])
def test_incomplete_evidence_is_refused(db_session: Session, cipher: FieldCipher, field: str, value: object,
                                        message: str) -> None:
    w, delivery, order = _scheduled(db_session, cipher)
    with pytest.raises(InvalidInput, match=message):
        record_identity_check(db_session, w.mc.account, delivery.id, order.id, evidence(**{field: value}),
                              cipher=cipher)
    db_session.rollback()


def test_operator_cannot_be_the_holder_by_email(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account)
    me = make_holder(db_session, email=f"  {w.mc.account.email.upper()} ")
    order = make_order(db_session, w.commune, w.aed.account, state=OrderState.SCHEDULED, delivery=delivery,
                       holder=me)
    db_session.commit()
    with pytest.raises(Forbidden, match="porteur"):
        record_identity_check(db_session, w.mc.account, delivery.id, order.id, evidence(), cipher=cipher)
    db_session.rollback()


@pytest.mark.parametrize("full_name", ["Annaig LE GOFF", "  annaïg   le-goff ", "LE GOFF Annaïg"])
def test_operator_cannot_be_the_holder_by_names(db_session: Session, cipher: FieldCipher, full_name: str) -> None:
    w = make_world(db_session, cipher)
    operator = make_account(db_session, cipher, Role.MC, entity=w.commune, name=full_name)
    delivery = make_delivery(db_session, operator.account)
    order = make_order(db_session, w.commune, w.aed.account, state=OrderState.SCHEDULED, delivery=delivery,
                       holder=make_holder(db_session, given_names="Annaïg", surname="Le Goff"))
    db_session.commit()
    with pytest.raises(Forbidden, match="porteur"):
        record_identity_check(db_session, operator.account, delivery.id, order.id, evidence(), cipher=cipher)
    db_session.rollback()


@pytest.mark.parametrize("offset", [-1, 1])
def test_only_on_the_session_day(db_session: Session, cipher: FieldCipher, offset: int) -> None:
    w, delivery, order = _scheduled(db_session, cipher)
    with pytest.raises(IllegalTransition, match="jour de la session"):
        record_identity_check(db_session, w.mc.account, delivery.id, order.id, evidence(), cipher=cipher,
                              today=TODAY + timedelta(days=offset))
    db_session.rollback()


def test_only_by_the_session_operator(db_session: Session, cipher: FieldCipher) -> None:
    w, delivery, order = _scheduled(db_session, cipher, operator="aed")
    colleague = make_account(db_session, cipher, Role.AED, epci=w.epci)  # same scope, not the operator
    db_session.commit()
    for other in (w.mc.account, colleague.account):  # both see the session, neither operates it
        with pytest.raises(Forbidden, match="opérateur de la session"):
            record_identity_check(db_session, other, delivery.id, order.id, evidence(), cipher=cipher)
        db_session.rollback()
    assert db_session.get_one(Order, order.id).state == OrderState.SCHEDULED


@pytest.mark.parametrize("state", [s for s in OrderState if s != OrderState.SCHEDULED])
def test_only_a_scheduled_order_gets_a_face_to_face(db_session: Session, cipher: FieldCipher,
                                                    state: OrderState) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account)
    order = make_order(db_session, w.commune, w.mc.account, state=state, delivery=delivery)
    db_session.commit()
    with pytest.raises(IllegalTransition, match=f"« {STATE_LABELS[state]} »"):
        record_identity_check(db_session, w.mc.account, delivery.id, order.id, evidence(), cipher=cipher)
    db_session.rollback()
    assert db_session.scalar(select(IdentityCheck).where(IdentityCheck.order_id == order.id)) is None


# (operator of the session, entity of the order, expected error or None)
MATRIX = [
    ("mc", "commune", None),
    ("mc", "outside", NotFound),
    ("mc_outside", "commune", NotFound),
    ("aed", "commune", None),
    ("aed", "ccas", None),
    ("aed", "outside", NotFound),
    ("aed_elsewhere", "commune", NotFound),
]


@pytest.mark.parametrize(("who", "where", "expected"), MATRIX)
def test_face_to_face_permission_matrix(db_session: Session, cipher: FieldCipher, who: str, where: str,
                                        expected: type[Exception] | None) -> None:
    """An order outside the operator's scope (its scope changed since, or a forged id) is 404."""
    w, delivery, order = _scheduled(db_session, cipher, operator=who, entity=where)
    officer = getattr(w, who).account
    if expected is None:
        record_identity_check(db_session, officer, delivery.id, order.id, evidence(), cipher=cipher)
        assert order.state == OrderState.IDENTITY_VERIFIED
    else:
        with pytest.raises(expected):
            record_identity_check(db_session, officer, delivery.id, order.id, evidence(), cipher=cipher)
    db_session.rollback()


@pytest.mark.parametrize("who", ["operator", "auditor"])
def test_ca_staff_cannot_record_a_face_to_face(db_session: Session, cipher: FieldCipher, who: str) -> None:
    w, delivery, order = _scheduled(db_session, cipher)
    with pytest.raises(Forbidden):
        record_identity_check(db_session, getattr(w, who).account, delivery.id, order.id, evidence(), cipher=cipher)
    db_session.rollback()


def test_a_late_holder_marked_absent_can_still_be_checked(db_session: Session, cipher: FieldCipher) -> None:
    w, delivery, order = _scheduled(db_session, cipher)
    mark_absent(db_session, w.mc.account, delivery.id, order.id)
    db_session.commit()
    record_identity_check(db_session, w.mc.account, delivery.id, order.id, evidence(), cipher=cipher)
    db_session.commit()
    assert (order.state, order.absent) == (OrderState.IDENTITY_VERIFIED, False)


def test_country_list_puts_france_first_and_names_in_french() -> None:
    choices = country_choices("fr")
    assert choices[0] == ("FRA", "France")
    assert ("DEU", "Allemagne") in choices and len({code for code, _ in choices}) == len(choices) > 240

"""Delivery sessions through the services: dates, rights and scope, the order transitions
approved ⇄ scheduled, absence, cancelling and closing, and the invoice lines from the BPU."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from ra.services.orders import REFUSALS, OrderAction
from ra.fieldcrypt import FieldCipher
from ra.labels import STATE_LABELS
from ra.models import AuditEvent, OrderState, Role, SessionStatus
from ra.pricing import PriceSchedule
from ra.services import sessions as service
from ra.services.identity import record_identity_check
from ra.services.session_invoice import session_invoice
from tests.ra.session_setup import ADDRESS, evidence, make_delivery, make_holder, make_order, make_world
from tests.ra.web import make_account, make_entity

TODAY = date.today()
OTHER_THAN_APPROVED = [s for s in OrderState if s != OrderState.APPROVED]
OTHER_THAN_SCHEDULED = [s for s in OrderState if s != OrderState.SCHEDULED]


def _audit(db: Session, action: str, object_id: object) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                    AuditEvent.object_id == str(object_id))))


# --- creating and editing a session -------------------------------------------------------------


def test_mc_plans_a_session_and_it_is_audited(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = service.create_session(db_session, w.mc.account, session_date=TODAY + timedelta(days=7),
                                      site_address="  Mairie,   2 rue du Port  ", on_site=True)
    db_session.commit()
    assert delivery.operator_id == w.mc.account.id and delivery.status == SessionStatus.PLANNED
    assert delivery.site_address == "Mairie, 2 rue du Port"
    assert len(_audit(db_session, "session.create", delivery.id)) == 1


def test_session_today_is_accepted(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = service.create_session(db_session, w.aed.account, session_date=TODAY, site_address=ADDRESS,
                                      on_site=False)
    assert delivery.session_date == TODAY and delivery.on_site is False
    db_session.rollback()


@pytest.mark.parametrize(("offset", "message"), [(-1, "passé"), (-400, "passé"), (367, "plus d'un an")])
def test_session_date_rules(db_session: Session, cipher: FieldCipher, offset: int, message: str) -> None:
    w = make_world(db_session, cipher)
    with pytest.raises(InvalidInput, match=message):
        service.create_session(db_session, w.mc.account, session_date=TODAY + timedelta(days=offset),
                               site_address=ADDRESS, on_site=True)
    db_session.rollback()


def test_session_needs_an_address(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    with pytest.raises(InvalidInput, match="adresse"):
        service.create_session(db_session, w.mc.account, session_date=TODAY, site_address="   ", on_site=True)
    db_session.rollback()


@pytest.mark.parametrize("who", ["operator", "auditor"])
def test_ca_staff_cannot_plan_sessions(db_session: Session, cipher: FieldCipher, who: str) -> None:
    w = make_world(db_session, cipher)
    with pytest.raises(Forbidden):
        service.create_session(db_session, getattr(w, who).account, session_date=TODAY, site_address=ADDRESS,
                               on_site=True)
    db_session.rollback()


def test_untrained_mc_cannot_plan_a_session(db_session: Session, cipher: FieldCipher) -> None:
    entity = make_entity(db_session)
    mc = make_account(db_session, cipher, Role.MC, entity=entity, qualified=False)
    with pytest.raises(Forbidden, match="formation"):
        service.create_session(db_session, mc.account, session_date=TODAY, site_address=ADDRESS, on_site=True)
    db_session.rollback()


def test_only_the_operator_edits_the_session(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.aed.account, day=TODAY + timedelta(days=3))
    make_order(db_session, w.commune, w.mc.account, state=OrderState.SCHEDULED, delivery=delivery)
    outsider = w.mc_outside.account
    db_session.commit()
    # The commune's MC sees the AED's session (an order of its entity is in it) but cannot change it.
    with pytest.raises(Forbidden, match="opérateur de la session"):
        service.update_session(db_session, w.mc.account, delivery.id, session_date=TODAY, site_address=ADDRESS,
                               on_site=True)
    db_session.rollback()
    with pytest.raises(NotFound):  # an MC of another entity does not even see it
        service.cancel_session(db_session, outsider, delivery.id)
    db_session.rollback()
    updated = service.update_session(db_session, w.aed.account, delivery.id, session_date=TODAY + timedelta(days=5),
                                     site_address="Salle des fêtes", on_site=False)
    db_session.commit()
    assert (updated.session_date, updated.site_address, updated.on_site) == (TODAY + timedelta(days=5),
                                                                              "Salle des fêtes", False)
    assert len(_audit(db_session, "session.update", delivery.id)) == 1


def test_cancelling_a_session_sends_its_orders_back_to_approved(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account, day=TODAY + timedelta(days=2))
    order = make_order(db_session, w.commune, w.mc.account, state=OrderState.SCHEDULED, delivery=delivery)
    db_session.commit()
    service.cancel_session(db_session, w.mc.account, delivery.id)
    db_session.commit()
    assert delivery.status == SessionStatus.CANCELLED
    assert (order.state, order.delivery_session_id) == (OrderState.APPROVED, None)
    assert len(_audit(db_session, "order.unschedule", order.reference)) == 1
    with pytest.raises(IllegalTransition, match="Annulée"):
        service.add_orders(db_session, w.mc.account, delivery.id, [order.id])
    db_session.rollback()


def test_a_session_with_face_to_face_done_cannot_be_cancelled(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account)
    make_order(db_session, w.commune, w.mc.account, state=OrderState.IDENTITY_VERIFIED, delivery=delivery)
    db_session.commit()
    with pytest.raises(IllegalTransition, match="clôturez"):
        service.cancel_session(db_session, w.mc.account, delivery.id)
    db_session.rollback()


def test_closing_only_from_the_session_day(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account, day=TODAY + timedelta(days=1))
    waiting = make_order(db_session, w.commune, w.mc.account, state=OrderState.SCHEDULED, delivery=delivery)
    checked = make_order(db_session, w.commune, w.mc.account, state=OrderState.IDENTITY_VERIFIED, delivery=delivery)
    db_session.commit()
    with pytest.raises(IllegalTransition, match="clôture"):
        service.close_session(db_session, w.mc.account, delivery.id)
    db_session.rollback()
    service.close_session(db_session, w.mc.account, delivery.id, today=TODAY + timedelta(days=2))
    db_session.commit()
    assert delivery.status == SessionStatus.CLOSED
    assert (waiting.state, waiting.delivery_session_id) == (OrderState.APPROVED, None)  # to reschedule
    assert (checked.state, checked.delivery_session_id) == (OrderState.IDENTITY_VERIFIED, delivery.id)


# --- approved → scheduled, and back ------------------------------------------------------------


def test_adding_approved_orders_schedules_them(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.aed.account, day=TODAY + timedelta(days=1))
    orders = [make_order(db_session, e, w.mc.account) for e in (w.commune, w.ccas)]
    db_session.commit()
    service.add_orders(db_session, w.aed.account, delivery.id, [o.id for o in orders])
    db_session.commit()
    for order in orders:
        assert (order.state, order.delivery_session_id) == (OrderState.SCHEDULED, delivery.id)
        assert len(_audit(db_session, "order.schedule", order.reference)) == 1


@pytest.mark.parametrize("state", OTHER_THAN_APPROVED)
def test_only_approved_orders_can_be_scheduled(db_session: Session, cipher: FieldCipher, state: OrderState) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account, day=TODAY + timedelta(days=1))
    order = make_order(db_session, w.commune, w.mc.account, state=state)
    db_session.commit()
    with pytest.raises(IllegalTransition) as refused:
        service.add_orders(db_session, w.mc.account, delivery.id, [order.id])
    for said in (order.reference, f"« {STATE_LABELS[state]} »", REFUSALS[OrderAction.SCHEDULE]):
        assert said in str(refused.value)
    db_session.rollback()
    assert db_session.get_one(type(order), order.id).state == state


@pytest.mark.parametrize("state", OTHER_THAN_SCHEDULED)
def test_only_scheduled_orders_can_be_removed(db_session: Session, cipher: FieldCipher, state: OrderState) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account, day=TODAY + timedelta(days=1))
    order = make_order(db_session, w.commune, w.mc.account, state=state, delivery=delivery)
    db_session.commit()
    with pytest.raises(IllegalTransition) as refused:
        service.remove_order(db_session, w.mc.account, delivery.id, order.id)
    for said in (order.reference, f"« {STATE_LABELS[state]} »", REFUSALS[OrderAction.UNSCHEDULE]):
        assert said in str(refused.value)
    db_session.rollback()


def test_removing_a_scheduled_order_makes_it_approved_again(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account, day=TODAY + timedelta(days=1))
    order = make_order(db_session, w.commune, w.mc.account, state=OrderState.SCHEDULED, delivery=delivery)
    db_session.commit()
    service.remove_order(db_session, w.mc.account, delivery.id, order.id)
    db_session.commit()
    assert (order.state, order.delivery_session_id) == (OrderState.APPROVED, None)


def test_an_order_of_another_session_cannot_be_removed_here(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    here = make_delivery(db_session, w.mc.account, day=TODAY + timedelta(days=1))
    there = make_delivery(db_session, w.mc.account, day=TODAY + timedelta(days=2))
    order = make_order(db_session, w.commune, w.mc.account, state=OrderState.SCHEDULED, delivery=there)
    db_session.commit()
    with pytest.raises(NotFound):
        service.remove_order(db_session, w.mc.account, here.id, order.id)
    db_session.rollback()


def test_nothing_to_add_and_orders_placed_after_the_session(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account, day=TODAY + timedelta(days=1))
    late = make_order(db_session, w.commune, w.mc.account, ordered_on=TODAY + timedelta(days=2))
    db_session.commit()
    with pytest.raises(InvalidInput, match="Cochez"):
        service.add_orders(db_session, w.mc.account, delivery.id, [])
    db_session.rollback()
    with pytest.raises(InvalidInput, match="après la date"):
        service.add_orders(db_session, w.mc.account, delivery.id, [late.id])
    db_session.rollback()


def test_a_past_session_takes_no_new_order(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account, day=TODAY - timedelta(days=1))
    order = make_order(db_session, w.commune, w.mc.account, ordered_on=TODAY - timedelta(days=5))
    db_session.commit()
    with pytest.raises(IllegalTransition, match="passé"):
        service.add_orders(db_session, w.mc.account, delivery.id, [order.id])
    db_session.rollback()


def test_the_operator_cannot_schedule_his_own_order(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    me = make_holder(db_session, email=w.mc.account.email.upper())
    delivery = make_delivery(db_session, w.mc.account, day=TODAY + timedelta(days=1))
    order = make_order(db_session, w.commune, w.mc.account, holder=me)
    db_session.commit()
    with pytest.raises(Forbidden, match="porteur"):
        service.add_orders(db_session, w.mc.account, delivery.id, [order.id])
    db_session.rollback()


# --- who may schedule what ---------------------------------------------------------------------

# (officer, entity of the order, expected): None = allowed, else the error.
SCHEDULE_MATRIX = [
    ("mc", "commune", None),
    ("mc", "outside", NotFound),
    ("mc_outside", "outside", None),
    ("mc_outside", "commune", NotFound),
    ("aed", "commune", None),  # member commune of its EPCI
    ("aed", "ccas", None),  # attached to a member commune
    ("aed", "outside", NotFound),
    ("aed_elsewhere", "outside", None),  # explicit scope
    ("aed_elsewhere", "commune", NotFound),
]


@pytest.mark.parametrize(("who", "where", "expected"), SCHEDULE_MATRIX)
def test_schedule_permission_matrix(db_session: Session, cipher: FieldCipher, who: str, where: str,
                                    expected: type[Exception] | None) -> None:
    w = make_world(db_session, cipher)
    officer = getattr(w, who).account
    delivery = make_delivery(db_session, officer, day=TODAY + timedelta(days=1))
    order = make_order(db_session, getattr(w, where), w.mc.account)
    db_session.commit()
    if expected is None:
        service.add_orders(db_session, officer, delivery.id, [order.id])
        assert order.state == OrderState.SCHEDULED
    else:
        with pytest.raises(expected):
            service.add_orders(db_session, officer, delivery.id, [order.id])
    db_session.rollback()


@pytest.mark.parametrize("who", ["operator", "auditor"])
def test_ca_staff_cannot_touch_a_session(db_session: Session, cipher: FieldCipher, who: str) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account, day=TODAY)
    approved = make_order(db_session, w.commune, w.mc.account)
    scheduled = make_order(db_session, w.commune, w.mc.account, state=OrderState.SCHEDULED, delivery=delivery)
    staff = getattr(w, who).account
    db_session.commit()
    assert service.get_session(db_session, staff, delivery.id) is delivery  # they may read it
    attempts = [
        lambda: service.add_orders(db_session, staff, delivery.id, [approved.id]),
        lambda: service.remove_order(db_session, staff, delivery.id, scheduled.id),
        lambda: service.mark_absent(db_session, staff, delivery.id, scheduled.id),
        lambda: service.update_session(db_session, staff, delivery.id, session_date=TODAY, site_address=ADDRESS,
                                       on_site=True),
        lambda: service.cancel_session(db_session, staff, delivery.id),
        lambda: service.close_session(db_session, staff, delivery.id),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden):
            attempt()
        db_session.rollback()


def test_visibility_of_sessions(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.aed.account, day=TODAY + timedelta(days=1))
    make_order(db_session, w.commune, w.aed.account, state=OrderState.SCHEDULED, delivery=delivery)
    db_session.commit()
    for who in ("aed", "mc", "operator", "auditor"):
        assert service.get_session(db_session, getattr(w, who).account, delivery.id) is delivery
    for who in ("mc_outside", "aed_elsewhere"):
        with pytest.raises(NotFound):
            service.get_session(db_session, getattr(w, who).account, delivery.id)


# --- absence and moving -------------------------------------------------------------------------


def test_absent_holder_stays_scheduled_and_can_be_moved(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    today_session = make_delivery(db_session, w.mc.account)
    later = make_delivery(db_session, w.mc.account, day=TODAY + timedelta(days=10))
    order = make_order(db_session, w.commune, w.mc.account, state=OrderState.SCHEDULED, delivery=today_session)
    db_session.commit()
    service.mark_absent(db_session, w.mc.account, today_session.id, order.id)
    db_session.commit()
    assert (order.state, order.absent) == (OrderState.SCHEDULED, True)
    assert len(_audit(db_session, "order.absent", order.reference)) == 1
    service.move_order(db_session, w.mc.account, today_session.id, order.id, later.id)
    db_session.commit()
    assert (order.state, order.absent, order.delivery_session_id) == (OrderState.SCHEDULED, False, later.id)


def test_absence_is_noted_from_the_session_day(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.mc.account, day=TODAY + timedelta(days=1))
    order = make_order(db_session, w.commune, w.mc.account, state=OrderState.SCHEDULED, delivery=delivery)
    db_session.commit()
    with pytest.raises(IllegalTransition, match="à partir du jour"):
        service.mark_absent(db_session, w.mc.account, delivery.id, order.id)
    db_session.rollback()


# --- invoice lines ------------------------------------------------------------------------------


def _delivered_session(db: Session, cipher: FieldCipher, ordered: list[date], *, on_site: bool = True,
                       absent: int = 0):  # type: ignore[no-untyped-def]
    """A session of today with one order per order date, face-to-face done for all but ``absent``."""
    w = make_world(db, cipher)
    delivery = make_delivery(db, w.mc.account, on_site=on_site)
    orders = [make_order(db, w.commune, w.aed.account, state=OrderState.SCHEDULED, delivery=delivery,
                         ordered_on=day) for day in ordered]
    db.commit()
    for order in orders[absent:]:
        record_identity_check(db, w.mc.account, delivery.id, order.id, evidence(), cipher=cipher)
    for order in orders[:absent]:
        service.mark_absent(db, w.mc.account, delivery.id, order.id)
    db.commit()
    return w, delivery, session_invoice(db, w.mc.account, delivery.id, PriceSchedule.load())


def test_three_holders_ordered_the_same_day_share_the_degressive_tier(db_session: Session,
                                                                       cipher: FieldCipher) -> None:
    day = TODAY - timedelta(days=15)
    w, _, invoice = _delivered_session(db_session, cipher, [day, day, day])
    [block] = invoice.entities
    assert (block.entity_id, block.certificates) == (w.commune.id, 3)
    lines = {line.label_fr.split(" — ")[0]: line for line in block.lines}
    assert lines["Frais de remise sur site"].quantity == 3
    assert lines["Frais de remise sur site"].unit_cents == 12000  # tier 2–3
    assert "groupe de 3 certificats" in next(l.label_fr for l in block.lines if l.label_fr.startswith("Frais"))
    # 3 × 120 € (certificates) + 3 × 45 € (new tokens) + 3 × 120 € (on-site fee) = 855 € HT
    assert (block.totals.ht_cents, block.totals.vat_cents, block.totals.ttc_cents) == (85500, 17100, 102600)


def test_orders_placed_on_different_days_pay_the_single_tier(db_session: Session, cipher: FieldCipher) -> None:
    days = [TODAY - timedelta(days=n) for n in (15, 16, 17)]
    _, _, invoice = _delivered_session(db_session, cipher, days)
    [block] = invoice.entities
    fees = [line for line in block.lines if line.label_fr.startswith("Frais de remise sur site")]
    assert [(f.quantity, f.unit_cents) for f in fees] == [(1, 15000)] * 3
    assert block.totals.ht_cents == 36000 + 13500 + 45000


def test_absent_holder_is_not_invoiced(db_session: Session, cipher: FieldCipher) -> None:
    day = TODAY - timedelta(days=15)
    _, _, invoice = _delivered_session(db_session, cipher, [day, day, day], absent=1)
    [block] = invoice.entities
    assert block.certificates == 2
    fee = next(line for line in block.lines if line.label_fr.startswith("Frais de remise sur site"))
    assert (fee.quantity, fee.unit_cents) == (2, 12000)
    assert block.totals.ht_cents == 2 * 12000 + 2 * 4500 + 2 * 12000


def test_a_session_at_the_cci_has_no_on_site_fee(db_session: Session, cipher: FieldCipher) -> None:
    day = TODAY - timedelta(days=15)
    _, _, invoice = _delivered_session(db_session, cipher, [day, day], on_site=False)
    [block] = invoice.entities
    assert not [line for line in block.lines if line.label_fr.startswith("Frais")]
    assert block.totals.ht_cents == 2 * 12000 + 2 * 4500


def test_invoice_lines_are_per_entity_and_scoped(db_session: Session, cipher: FieldCipher) -> None:
    w = make_world(db_session, cipher)
    delivery = make_delivery(db_session, w.aed.account)
    day = TODAY - timedelta(days=15)
    for entity in (w.commune, w.ccas):
        make_order(db_session, entity, w.aed.account, state=OrderState.DELIVERED, delivery=delivery, ordered_on=day)
    db_session.commit()
    schedule = PriceSchedule.load()
    invoice = session_invoice(db_session, w.aed.account, delivery.id, schedule)
    assert {e.entity_id for e in invoice.entities} == {w.commune.id, w.ccas.id}
    fee = next(line for line in invoice.entities[0].lines if line.label_fr.startswith("Frais"))
    assert fee.unit_cents == 12000  # the group is the whole session: two certificates
    assert invoice.totals.ht_cents == sum(e.totals.ht_cents for e in invoice.entities)
    mine = session_invoice(db_session, w.mc.account, delivery.id, schedule)  # the commune's MC
    assert [e.entity_id for e in mine.entities] == [w.commune.id]

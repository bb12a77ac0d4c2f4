"""Delivery sessions (sessions de remise): planning, the orders they hold, absence, closing.

Three order transitions live here and in ``ra.services.identity``: ``approved → scheduled``
(added to a session), ``scheduled → approved`` (taken out before the face-to-face) and
``scheduled → identity_verified`` (face-to-face recorded). Only the session's operator, an MC
or AED, changes a session; orders must be in the operator's scope. Every write is audited in
the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from ra import audit
from ra.db import MAX_ID
from ra.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from ra.labels import STATE_LABELS, label
from ra.models import DeliverySession, Entity, Holder, Order, OrderState, SessionStatus, StaffAccount
from ra.permissions import Action, require, scope_condition, visible_entities, visible_entity_ids
from ra.services.inputs import like_pattern
from ra.services.orders import ORDER_ROWS, OrderAction, advance, check_action, order_for

MAX_DAYS_AHEAD = 366
FACE_TO_FACE_DONE = (OrderState.IDENTITY_VERIFIED, OrderState.ISSUED, OrderState.DELIVERED)

def normalise_name(text: str) -> str:
    """Compare names loosely: no accents, no case, no punctuation, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join("".join(c if c.isalnum() else " " for c in bare).split())


def operator_is_holder(operator: StaffAccount, holder: Holder) -> bool:
    """True when the operator's account is the holder's (same email, or same full name)."""
    if operator.email.strip().casefold() == holder.email.strip().casefold():
        return True
    full_name = normalise_name(operator.full_name)
    return full_name in (normalise_name(f"{holder.given_names} {holder.surname}"),
                         normalise_name(f"{holder.surname} {holder.given_names}"))


def refuse_operator_as_holder(operator: StaffAccount, order: Order) -> None:
    if operator_is_holder(operator, order.holder):
        raise Forbidden(f"Vous êtes le porteur de la commande {order.reference} : le face-à-face doit être "
                        "fait par un autre mandataire ou AED.")


# --- reading ----------------------------------------------------------------------------------


def visible_sessions(actor: StaffAccount) -> Select[tuple[DeliverySession]]:
    """Sessions the actor may see: all for CA staff; for MC/AED theirs and those of their entities."""
    stmt = select(DeliverySession)
    if scope_condition(actor) is None:
        return stmt
    with_own_orders = select(Order.delivery_session_id).where(
        Order.delivery_session_id.is_not(None), Order.entity_id.in_(visible_entity_ids(actor)))
    return stmt.where(or_(DeliverySession.operator_id == actor.id, DeliverySession.id.in_(with_own_orders)))


def sessions_query(
    actor: StaffAccount, *, status: str | None = None, date_from: date | None = None,
    date_to: date | None = None, text: str | None = None,
) -> Select[tuple[DeliverySession]]:
    """The sessions list, filtered, newest date first."""
    stmt = visible_sessions(actor)
    if status in set(SessionStatus):
        stmt = stmt.where(DeliverySession.status == status)
    if date_from:
        stmt = stmt.where(DeliverySession.session_date >= date_from)
    if date_to:
        stmt = stmt.where(DeliverySession.session_date <= date_to)
    if text and text.strip():
        stmt = stmt.where(DeliverySession.site_address.ilike(like_pattern(text.strip()), escape="\\"))
    return stmt.order_by(DeliverySession.session_date.desc(), DeliverySession.id.desc())


def get_session(session: Session, actor: StaffAccount, session_id: int) -> DeliverySession:
    """The session if the actor may see it; 404 otherwise (never leak its existence)."""
    delivery = None
    if 0 < session_id <= MAX_ID:
        delivery = session.scalar(visible_sessions(actor).where(DeliverySession.id == session_id))
    if delivery is None:
        raise NotFound("Session de remise introuvable.")
    return delivery


def session_orders(session: Session, actor: StaffAccount, delivery: DeliverySession) -> list[Order]:
    """The session's orders that the actor may see (cancelled ones left out)."""
    return list(session.scalars(
        select(Order).where(Order.delivery_session_id == delivery.id, Order.state != OrderState.CANCELLED)
        .where(Order.entity_id.in_(visible_entity_ids(actor))).options(*ORDER_ROWS).order_by(Order.reference)))


def candidate_orders(
    actor: StaffAccount, *, text: str | None = None, entity_id: int | None = None,
) -> Select[tuple[Order]]:
    """Approved orders in the actor's scope that no session holds yet."""
    stmt = (select(Order).join(Holder, Order.holder_id == Holder.id)
            .where(Order.state == OrderState.APPROVED, Order.delivery_session_id.is_(None))
            .where(Order.entity_id.in_(visible_entity_ids(actor))).options(*ORDER_ROWS))
    if entity_id and 0 < entity_id <= MAX_ID:
        stmt = stmt.where(Order.entity_id == entity_id)
    if text and text.strip():
        pattern = like_pattern(text.strip())
        stmt = stmt.where(or_(Order.reference.ilike(pattern, escape="\\"),
                              Holder.surname.ilike(pattern, escape="\\"),
                              Holder.given_names.ilike(pattern, escape="\\")))
    return stmt.order_by(Order.ordered_on, Order.reference)


def candidate_entities(session: Session, actor: StaffAccount) -> list[Entity]:
    """Entities of the actor's scope that have approved orders waiting for a session."""
    waiting = select(Order.entity_id).where(Order.state == OrderState.APPROVED, Order.delivery_session_id.is_(None))
    return list(session.scalars(visible_entities(actor).where(Entity.id.in_(waiting)).order_by(Entity.name)))


def order_counts(session: Session, session_ids: Iterable[int]) -> dict[int, int]:
    """Number of (not cancelled) orders held by each of the given sessions."""
    ids = list(session_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Order.delivery_session_id, func.count()).where(
            Order.delivery_session_id.in_(ids), Order.state != OrderState.CANCELLED)
        .group_by(Order.delivery_session_id))
    return {session_id: count for session_id, count in rows}


def other_planned_sessions(session: Session, actor: StaffAccount, delivery: DeliverySession,
                           *, today: date | None = None) -> list[DeliverySession]:
    """The actor's other planned sessions to come, where an order can be moved."""
    return list(session.scalars(
        select(DeliverySession).where(
            DeliverySession.operator_id == actor.id, DeliverySession.id != delivery.id,
            DeliverySession.status == SessionStatus.PLANNED,
            DeliverySession.session_date >= (today or date.today()))
        .order_by(DeliverySession.session_date)))


def can_manage(actor: StaffAccount, delivery: DeliverySession) -> bool:
    """Whether the screens should offer the session's write actions to this actor."""
    return delivery.operator_id == actor.id and delivery.status == SessionStatus.PLANNED


# --- writing the session ------------------------------------------------------------------------


def _checked_fields(session_date: date, site_address: str, today: date) -> str:
    if session_date < today:
        raise InvalidInput("La date de la session ne peut pas être dans le passé.")
    if session_date > today + timedelta(days=MAX_DAYS_AHEAD):
        raise InvalidInput("La date de la session ne peut pas être à plus d'un an.")
    address = " ".join((site_address or "").split())
    if not 5 <= len(address) <= 300:
        raise InvalidInput("L'adresse du lieu de remise est obligatoire (5 à 300 caractères).")
    return address


def managed_session(session: Session, actor: StaffAccount, session_id: int) -> DeliverySession:
    """A planned session the actor operates: 404 unseen, 403 by role or not its operator."""
    delivery = get_session(session, actor, session_id)
    require(actor, Action.DELIVER)
    if delivery.operator_id != actor.id:
        raise Forbidden("Seul l'opérateur de la session peut la modifier ou y enregistrer un face-à-face.")
    if delivery.status != SessionStatus.PLANNED:
        raise IllegalTransition(
            f"La session est à l'état « {label(STATE_LABELS, delivery.status)} » : elle ne peut plus changer.")
    return delivery


def create_session(
    session: Session, actor: StaffAccount, *, session_date: date, site_address: str, on_site: bool,
    today: date | None = None,
) -> DeliverySession:
    """Plan a session operated by the acting MC/AED."""
    require(actor, Action.DELIVER)
    address = _checked_fields(session_date, site_address, today or date.today())
    delivery = DeliverySession(session_date=session_date, site_address=address, on_site=bool(on_site),
                               operator_id=actor.id, status=SessionStatus.PLANNED)
    session.add(delivery)
    session.flush()
    audit.record(session, actor=actor.email, action="session.create", object_type="delivery_session",
                 object_id=delivery.id, details={"date": session_date.isoformat(), "site": address,
                                                 "on_site": delivery.on_site})
    return delivery


def update_session(
    session: Session, actor: StaffAccount, session_id: int, *, session_date: date, site_address: str,
    on_site: bool, today: date | None = None,
) -> DeliverySession:
    """Change the date, the site or the on-site flag, before any face-to-face."""
    delivery = managed_session(session, actor, session_id)
    if _face_to_face_done(session, delivery):
        raise IllegalTransition("Des face-à-face ont déjà été enregistrés : la session ne peut plus être modifiée.")
    address = _checked_fields(session_date, site_address, today or date.today())
    late = [o.reference for o in _orders_in(session, delivery) if o.ordered_on > session_date]
    if late:
        raise InvalidInput(f"La commande {late[0]} a été passée après cette date : choisissez une date ultérieure.")
    before = {"date": delivery.session_date.isoformat(), "site": delivery.site_address, "on_site": delivery.on_site}
    delivery.session_date, delivery.site_address, delivery.on_site = session_date, address, bool(on_site)
    after = {"date": session_date.isoformat(), "site": address, "on_site": delivery.on_site}
    audit.record(session, actor=actor.email, action="session.update", object_type="delivery_session",
                 object_id=delivery.id, details={"before": before, "after": after})
    return delivery


def cancel_session(session: Session, actor: StaffAccount, session_id: int) -> DeliverySession:
    """Cancel a planned session before any face-to-face; its orders go back to approved."""
    delivery = managed_session(session, actor, session_id)
    if _face_to_face_done(session, delivery):
        raise IllegalTransition("Des face-à-face ont déjà eu lieu : la session ne peut plus être annulée, "
                                "clôturez-la.")
    released = _release_scheduled(session, actor, delivery, "session annulée")
    delivery.status = SessionStatus.CANCELLED
    audit.record(session, actor=actor.email, action="session.cancel", object_type="delivery_session",
                 object_id=delivery.id, details={"released_orders": released})
    return delivery


def close_session(session: Session, actor: StaffAccount, session_id: int, *,
                  today: date | None = None) -> DeliverySession:
    """Close the session from its day on; holders not seen go back to approved, to be rescheduled."""
    delivery = managed_session(session, actor, session_id)
    if (today or date.today()) < delivery.session_date:
        raise IllegalTransition("Une session ne se clôture qu'à partir de son jour ; avant, annulez-la.")
    released = _release_scheduled(session, actor, delivery, "session close")
    delivery.status = SessionStatus.CLOSED
    audit.record(session, actor=actor.email, action="session.close", object_type="delivery_session",
                 object_id=delivery.id, details={"released_orders": released})
    return delivery


def _orders_in(session: Session, delivery: DeliverySession) -> list[Order]:
    return list(session.scalars(select(Order).where(Order.delivery_session_id == delivery.id)
                                .order_by(Order.id).with_for_update()))


def _face_to_face_done(session: Session, delivery: DeliverySession) -> bool:
    return any(o.state in FACE_TO_FACE_DONE for o in _orders_in(session, delivery))


def _release_scheduled(session: Session, actor: StaffAccount, delivery: DeliverySession, why: str) -> list[str]:
    released = []
    for order in _orders_in(session, delivery):
        if order.state == OrderState.SCHEDULED:
            _unschedule(session, actor, order, delivery, why)
            released.append(order.reference)
    return released


# --- the orders of a session --------------------------------------------------------------------


def session_order(session: Session, actor: StaffAccount, delivery: DeliverySession, order_id: int) -> Order:
    """An order of this very session, in the actor's scope."""
    order = order_for(session, actor, order_id, Action.DELIVER, lock=True)
    if order.delivery_session_id != delivery.id:
        raise NotFound("Cette commande ne fait pas partie de cette session.")
    return order


def add_orders(
    session: Session, actor: StaffAccount, session_id: int, order_ids: Iterable[int], *,
    today: date | None = None,
) -> list[Order]:
    """Schedule approved orders of the actor's scope at the session (approved → scheduled)."""
    delivery = managed_session(session, actor, session_id)
    if delivery.session_date < (today or date.today()):
        raise IllegalTransition("Le jour de cette session est passé : on ne peut plus y ajouter de commande.")
    ids = list(dict.fromkeys(order_ids))
    if not ids:
        raise InvalidInput("Cochez au moins une commande à ajouter.")
    orders = []
    for order_id in ids:
        order = order_for(session, actor, order_id, Action.DELIVER, lock=True)
        check_action(order, OrderAction.SCHEDULE)
        if order.ordered_on > delivery.session_date:
            raise InvalidInput(f"La commande {order.reference} a été passée après la date de la session.")
        refuse_operator_as_holder(actor, order)
        advance(order, OrderAction.SCHEDULE)
        order.delivery_session_id, order.absent = delivery.id, False
        audit.record(session, actor=actor.email, action="order.schedule", object_type="order",
                     object_id=order.reference, details={"session_id": delivery.id,
                                                         "session_date": delivery.session_date.isoformat()})
        orders.append(order)
    return orders


def remove_order(session: Session, actor: StaffAccount, session_id: int, order_id: int) -> Order:
    """Take an order out of the session before its face-to-face (scheduled → approved)."""
    delivery = managed_session(session, actor, session_id)
    order = session_order(session, actor, delivery, order_id)
    _unschedule(session, actor, order, delivery, "retirée de la session")
    return order


def _unschedule(session: Session, actor: StaffAccount, order: Order, delivery: DeliverySession, why: str) -> None:
    advance(order, OrderAction.UNSCHEDULE)
    was_absent = order.absent
    order.delivery_session_id, order.absent = None, False
    audit.record(session, actor=actor.email, action="order.unschedule", object_type="order",
                 object_id=order.reference, details={"session_id": delivery.id, "reason": why,
                                                     "absent": was_absent})


def move_order(session: Session, actor: StaffAccount, session_id: int, order_id: int, target_session_id: int, *,
               today: date | None = None) -> Order:
    """Move an order not yet checked (e.g. an absent holder) to another session of the operator."""
    if target_session_id == session_id:
        raise InvalidInput("Choisissez une autre session que la session actuelle.")
    remove_order(session, actor, session_id, order_id)
    add_orders(session, actor, target_session_id, [order_id], today=today)
    return session.get_one(Order, order_id)


def mark_absent(session: Session, actor: StaffAccount, session_id: int, order_id: int, *,
                today: date | None = None) -> Order:
    """The holder did not come: the order stays scheduled, flagged absent, and can be moved."""
    delivery = managed_session(session, actor, session_id)
    if (today or date.today()) < delivery.session_date:
        raise IllegalTransition("Un porteur ne peut être noté absent qu'à partir du jour de la session.")
    order = session_order(session, actor, delivery, order_id)
    if order.state != OrderState.SCHEDULED:
        raise IllegalTransition(f"La commande {order.reference} est à l'état « {label(STATE_LABELS, order.state)} » : "
                                "seul un porteur attendu peut être noté absent.")
    if not order.absent:
        order.absent = True
        audit.record(session, actor=actor.email, action="order.absent", object_type="order",
                     object_id=order.reference, details={"session_id": delivery.id})
    return order

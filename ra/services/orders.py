"""Orders (commandes): creation and the lifecycle up to ``approved``, and cancellation.

The transition table below is the one statement of the lifecycle of DESIGN.md; every service
that moves an order goes through ``apply_transition``. The holder of an order never changes: no
function here or elsewhere writes ``Order.holder_id`` after creation; a different holder is a
new order.

Holders: a ``Holder`` row is reused when email, surname, given names and title all match. A
person who holds certificates for several entities under different titles therefore has one
row per title, so that each order keeps the title it was placed with (rows are never edited).
Token reuse looks at the person (email and names), not at the title.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, selectinload

from ca.errors import RequestError
from ca.profiles import PROFILES, HolderSubject
from ra import audit
from ra.db import MAX_ID
from ra.errors import IllegalTransition, NotFound
from ra.labels import STATE_LABELS, label
from ra.models import (
    Convention, ConventionStatus, Entity, EntityStatus, Holder, Order, OrderState, StaffAccount,
    TokenChoice, TokenState, UsbToken,
)
from ra.permissions import Action, in_scope, require, visible_entities, visible_entity_ids
from ra.services.dossier_rules import is_complete, not_accepted
from ra.services.entities import has_approved_convention
from ra.services.inputs import FieldErrors, clean_text, like_pattern, optional_text, required_reason


class OrderAction(enum.StrEnum):
    COMPLETE_DOSSIER = "complete_dossier"  # automatic: the last missing piece arrived
    REOPEN_DOSSIER = "reopen_dossier"  # automatic: a piece was rejected or replaced by a wrong one
    APPROVE = "approve"  # a CA operator, after reviewing the dossier
    SCHEDULE = "schedule"  # added to a delivery session
    UNSCHEDULE = "unschedule"  # taken out of its delivery session
    VERIFY_IDENTITY = "verify_identity"  # face-to-face recorded
    ISSUE = "issue"
    DELIVER = "deliver"
    CANCEL = "cancel"


S, A = OrderState, OrderAction
TRANSITIONS: dict[OrderState, dict[OrderAction, OrderState]] = {
    S.DRAFT: {A.COMPLETE_DOSSIER: S.DOSSIER_COMPLETE, A.CANCEL: S.CANCELLED},
    S.DOSSIER_COMPLETE: {A.REOPEN_DOSSIER: S.DRAFT, A.APPROVE: S.APPROVED, A.CANCEL: S.CANCELLED},
    S.APPROVED: {A.SCHEDULE: S.SCHEDULED, A.CANCEL: S.CANCELLED},
    S.SCHEDULED: {A.VERIFY_IDENTITY: S.IDENTITY_VERIFIED, A.UNSCHEDULE: S.APPROVED, A.CANCEL: S.CANCELLED},
    S.IDENTITY_VERIFIED: {A.ISSUE: S.ISSUED, A.CANCEL: S.CANCELLED},
    S.ISSUED: {A.DELIVER: S.DELIVERED},
    S.DELIVERED: {},
    S.CANCELLED: {},
}
ACTION_LABELS = {
    A.COMPLETE_DOSSIER: "compléter le dossier", A.REOPEN_DOSSIER: "rouvrir le dossier",
    A.APPROVE: "approuver", A.SCHEDULE: "planifier la remise", A.UNSCHEDULE: "retirer de la session",
    A.VERIFY_IDENTITY: "vérifier l'identité",
    A.ISSUE: "émettre le certificat", A.DELIVER: "remettre le certificat", A.CANCEL: "annuler",
}
# Said after the refusal when the action's name alone would not tell the operator why.
REFUSALS = {
    A.SCHEDULE: "seule une commande approuvée peut être ajoutée à une session de remise",
    A.UNSCHEDULE: "seule une commande planifiée dont le face-à-face n'a pas eu lieu peut être retirée de la session",
    A.VERIFY_IDENTITY: "le face-à-face ne s'enregistre que pour une commande planifiée",
    A.ISSUE: "émission impossible",
    A.DELIVER: "remise impossible",
}
DOSSIER_OPEN = frozenset({S.DRAFT, S.DOSSIER_COMPLETE})  # pieces may be uploaded and reviewed
ENDED = frozenset({S.DELIVERED, S.CANCELLED})
REUSABLE_TOKEN_STATES = (TokenState.ACTIVE, TokenState.INITIALISED)


def can(state: OrderState | str, action: OrderAction) -> bool:
    return action in TRANSITIONS[OrderState(state)]


def next_state(state: OrderState | str, action: OrderAction, *, reference: str | None = None) -> OrderState:
    """The state ``action`` leads to from ``state``; ``IllegalTransition`` names both otherwise."""
    current = OrderState(state)
    target = TRANSITIONS[current].get(action)
    if target is None:
        which = f"La commande {reference}, à l'état « {label(STATE_LABELS, current)} »," if reference else \
            f"Une commande à l'état « {label(STATE_LABELS, current)} »"
        why = f" : {REFUSALS[action]}" if action in REFUSALS else ""
        raise IllegalTransition(f"{which} ne permet pas l'action « {ACTION_LABELS[action]} »{why}.")
    return target


def check_action(order: Order, action: OrderAction) -> OrderState:
    """The state ``action`` would take ``order`` to; ``IllegalTransition`` naming the order otherwise."""
    return next_state(order.state, action, reference=order.reference)


def advance(order: Order, action: OrderAction) -> None:
    """Move ``order`` along the table (checked); the caller records the audit event."""
    order.state = check_action(order, action)


def apply_transition(session: Session, order: Order, action: OrderAction, *, actor: str,
                     details: dict[str, object] | None = None) -> OrderState:
    """Move the order along the table and record ``order.<action>`` in the same transaction."""
    before = OrderState(order.state)
    advance(order, action)
    session.flush()
    audit.record(session, actor=actor, action=f"order.{action}", object_type="order", object_id=order.reference,
                 details={"order_id": order.id, "from": str(before), "to": str(order.state),
                          **(details or {})})
    return OrderState(order.state)


def refresh_dossier_state(session: Session, order: Order, *, actor: str) -> OrderState:
    """Draft ↔ dossier complete, after the dossier changed (an upload, a review)."""
    complete = is_complete(order)
    if order.state == S.DRAFT and complete:
        apply_transition(session, order, A.COMPLETE_DOSSIER, actor=actor)
    elif order.state == S.DOSSIER_COMPLETE and not complete:
        apply_transition(session, order, A.REOPEN_DOSSIER, actor=actor)
    return OrderState(order.state)


# --- reading ---------------------------------------------------------------------------------

# Loader options for a list of orders whose rows show the entity and the holder (no N+1;
# selectinload, unlike joinedload, also goes with FOR UPDATE).
ORDER_ROWS = (selectinload(Order.entity), selectinload(Order.holder))


def order_for(session: Session, actor: StaffAccount, order_id: int, action: Action = Action.VIEW_ORDERS, *,
              lock: bool = False) -> Order:
    """The order (row-locked with ``lock``), if its entity is in the actor's scope (404) and the
    role allows ``action`` (403)."""
    order = session.get(Order, order_id, with_for_update=lock) if 0 < order_id <= MAX_ID else None
    if order is None or not in_scope(session, actor, order.entity_id):
        raise NotFound("Commande introuvable.")
    require(actor, action)
    return order


def order_list_query(actor: StaffAccount, *, state: str | None = None, entity_id: int | None = None,
                     text: str | None = None) -> Select[Any]:
    """The actor's orders, newest first, filtered by state, entity and text (holder, reference)."""
    require(actor, Action.VIEW_ORDERS)
    stmt = (select(Order).join(Holder, Order.holder_id == Holder.id)
            .where(Order.entity_id.in_(visible_entity_ids(actor)))
            .options(*ORDER_ROWS))
    if state in set(OrderState):
        stmt = stmt.where(Order.state == state)
    if entity_id is not None:
        stmt = stmt.where(Order.entity_id == entity_id)
    words = clean_text(text)
    if words:
        pattern = like_pattern(words)
        stmt = stmt.where(or_(*(column.ilike(pattern, escape="\\") for column in (
            Order.reference, Holder.surname, Holder.given_names, Holder.email))))
    return stmt.order_by(Order.created_at.desc(), Order.id.desc())


def entity_orders(session: Session, actor: StaffAccount, entity_id: int, *, limit: int = 20) -> list[Order]:
    return list(session.scalars(order_list_query(actor, entity_id=entity_id).limit(limit)))


def reused_token(session: Session, order: Order) -> UsbToken | None:
    """The token the order asked to reuse, if any."""
    return session.get(UsbToken, order.reused_token_id) if order.reused_token_id else None


def orderable_entities(session: Session, actor: StaffAccount) -> list[Entity]:
    """Entities in scope, active, whose convention is approved: the wizard's first step."""
    return list(session.scalars(
        visible_entities(actor).join(Convention, Convention.entity_id == Entity.id)
        .where(Convention.status == ConventionStatus.APPROVED, Entity.status == EntityStatus.ACTIVE)
        .order_by(Entity.name)))


# --- creation --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NewOrder:
    """What the wizard collects (raw input; the service cleans and checks it)."""

    entity_id: int | None
    surname: str
    given_names: str
    email: str
    profile: str
    token_choice: str
    title: str | None = None
    reused_token_id: int | None = None
    reused_token_serial: str | None = None  # the web form asks for the serial printed on it


@dataclass(frozen=True)
class CheckedOrder:
    """A valid order not written yet: what the confirmation step shows."""

    entity: Entity
    surname: str
    given_names: str
    email: str
    title: str | None
    profile: str
    token_choice: TokenChoice
    token: UsbToken | None
    holder: Holder | None  # an existing holder row that will be reused

    @property
    def common_name(self) -> str:
        return f"{self.given_names} {self.surname.upper()}"


_HOLDER_MESSAGES = {
    "surname": "Nom invalide : lettres, espaces, traits d'union et apostrophes, comme sur la pièce d'identité.",
    "given_names": ("Prénoms invalides : lettres, espaces, traits d'union et apostrophes, comme sur la pièce "
                    "d'identité."),
    "email": "Adresse électronique invalide.",
    "title": ("Fonction invalide : 64 caractères au plus, lettres, chiffres, espaces et la ponctuation "
              ". , ' ( ) & / -."),
}
_SAMPLE = {"surname": "Martin", "given_names": "Marie", "email": "marie.martin@example.fr", "title": None}


def _holder_errors(entity: Entity, values: dict[str, str | None]) -> dict[str, str]:
    """Check the holder as the certificate will need it (``HolderSubject``), field by field."""
    def subject(**fields: str | None) -> HolderSubject:
        values = {**_SAMPLE, **fields}
        return HolderSubject(organization=entity.name, siren=entity.siren, **values)  # type: ignore[arg-type]

    errors: dict[str, str] = {}
    try:
        subject()
    except RequestError:
        return {"entity_id": "Le nom ou le SIREN de cette entité ne convient pas à un certificat : "
                             "faites-les corriger par l'AC."}
    for name, value in values.items():
        if not value and name != "title":
            errors[name] = "Ce champ est obligatoire."
            continue
        try:
            subject(**{name: value})
        except RequestError:
            errors[name] = _HOLDER_MESSAGES[name]
    if not errors:
        try:
            subject(**values)
        except RequestError:
            errors["given_names"] = "Prénoms et nom réunis dépassent 64 caractères."
    return errors


def check_order(session: Session, actor: StaffAccount, new: NewOrder) -> CheckedOrder:
    """Every rule of a new order, nothing written: ``FieldErrors`` names each wrong field."""
    require(actor, Action.EDIT_ORDERS)
    errors: dict[str, str] = {}
    entity = None
    if new.entity_id is None:
        errors["entity_id"] = "Choisissez l'entité."
    else:
        entity = session.get(Entity, new.entity_id)
        if entity is None or not in_scope(session, actor, entity.id):
            raise NotFound("Entité introuvable.")
        if entity.status != EntityStatus.ACTIVE:
            errors["entity_id"] = "Cette entité est fermée : elle ne peut plus commander."
        elif not has_approved_convention(entity):
            errors["entity_id"] = ("La convention d'adhésion de cette entité n'est pas approuvée : "
                                   "aucune commande n'est possible avant.")
    values = {"surname": clean_text(new.surname), "given_names": clean_text(new.given_names),
              "email": clean_text(new.email).lower(), "title": optional_text(new.title)}
    if entity is not None and "entity_id" not in errors:
        errors.update(_holder_errors(entity, values))
    if new.profile not in PROFILES:
        errors["profile"] = "Choisissez un profil de certificat."
    choice = TokenChoice(new.token_choice) if new.token_choice in set(TokenChoice) else None
    if choice is None:
        errors["token_choice"] = "Choisissez un nouveau support ou la réutilisation d'un support."
    token = None
    if choice == TokenChoice.REUSE and not errors:
        token = _reusable_token(session, new, values)
        if token is None:
            errors["reused_token_serial"] = ("Aucun support actif ou initialisé de ce numéro n'appartient "
                                             "à ce porteur.")
    if errors:
        raise FieldErrors(errors)
    assert entity is not None and choice is not None
    holder = session.scalar(select(Holder).where(
        Holder.email == values["email"], Holder.surname == values["surname"],
        Holder.given_names == values["given_names"],
        Holder.title == values["title"] if values["title"] else Holder.title.is_(None),
    ).order_by(Holder.id).limit(1))
    return CheckedOrder(entity, values["surname"] or "", values["given_names"] or "", values["email"] or "",
                        values["title"], new.profile, choice, token, holder)


def _reusable_token(session: Session, new: NewOrder, values: dict[str, str | None]) -> UsbToken | None:
    stmt = (select(UsbToken).join(Holder, UsbToken.holder_id == Holder.id)
            .where(Holder.email == values["email"], Holder.surname == values["surname"],
                   Holder.given_names == values["given_names"],
                   UsbToken.state.in_(REUSABLE_TOKEN_STATES)))
    if new.reused_token_id is not None:
        stmt = stmt.where(UsbToken.id == new.reused_token_id)
    else:
        serial = clean_text(new.reused_token_serial)
        if not serial:
            return None
        stmt = stmt.where(UsbToken.serial == serial)
    return session.scalar(stmt)


def create_order(session: Session, actor: StaffAccount, new: NewOrder, *, today: date | None = None) -> Order:
    """Record a draft order (holder reused or created); its dossier comes next."""
    checked = check_order(session, actor, new)
    today = today or date.today()
    holder = checked.holder
    if holder is None:
        holder = Holder(surname=checked.surname, given_names=checked.given_names, email=checked.email,
                        title=checked.title)
        session.add(holder)
        session.flush()
    order = Order(reference=f"tmp-{secrets.token_hex(8)}", entity_id=checked.entity.id, holder_id=holder.id,
                  profile=checked.profile, token_choice=checked.token_choice,
                  reused_token_id=checked.token.id if checked.token else None, state=S.DRAFT,
                  ordered_on=today, created_by_id=actor.id)
    session.add(order)
    session.flush()
    order.reference = f"C-{today.year}-{order.id:06d}"
    session.flush()
    audit.record(session, actor=actor.email, action="order.create", object_type="order", object_id=order.reference,
                 details={"order_id": order.id, "entity_id": checked.entity.id, "holder_id": holder.id,
                          "holder_reused": checked.holder is not None, "profile": checked.profile,
                          "token_choice": str(checked.token_choice),
                          "reused_token": checked.token.serial if checked.token else None})
    return order


# --- transitions by people ---------------------------------------------------------------------

def approve_order(session: Session, actor: StaffAccount, order_id: int) -> Order:
    """A CA operator approves a complete dossier whose every piece was accepted."""
    order = order_for(session, actor, order_id, Action.APPROVE_DESIGNATIONS)
    check_action(order, A.APPROVE)
    waiting = not_accepted(order)
    if waiting:
        raise IllegalTransition("Chaque pièce doit être acceptée avant l'approbation ; restent à examiner : "
                                + " ; ".join(waiting) + ".")
    apply_transition(session, order, A.APPROVE, actor=actor.email)
    return order


def cancel_order(session: Session, actor: StaffAccount, order_id: int, reason: str | None) -> Order:
    """Cancel an order before its certificate is issued; the reason is kept."""
    order = order_for(session, actor, order_id, Action.EDIT_ORDERS)
    check_action(order, A.CANCEL)
    order.cancelled_reason = required_reason(reason, what="Le motif de l'annulation")
    apply_transition(session, order, A.CANCEL, actor=actor.email, details={"reason": order.cancelled_reason})
    return order

"""Who may do what, on which entities (DESIGN.md's table), in one place.

Services call ``require_entity``/``require``: an action the role never has is 403
(``Forbidden``); an entity outside the actor's scope is 404 (``NotFound``), so that its
existence does not leak.
"""

from __future__ import annotations

import enum

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from ra.errors import Forbidden, NotFound
from ra.models import DesignationStatus, Entity, Role, StaffAccount


class Action(enum.StrEnum):
    VIEW_ORDERS = "view_orders"  # see entities, orders, dossiers, sessions
    EDIT_ORDERS = "edit_orders"  # create orders, upload dossier, cancel, submit conventions
    DELIVER = "deliver"  # schedule sessions, face-to-face, enrol tokens
    APPROVE_DESIGNATIONS = "approve_designations"  # designations, conventions, approve orders
    MANAGE_ACCOUNTS = "manage_accounts"  # staff accounts, entities
    REQUEST_REVOCATION = "request_revocation"
    PROCESS_REVOCATIONS = "process_revocations"  # and publish the CRL
    READ_AUDIT = "read_audit"  # audit log, chain verification


_OFFICER = {Action.VIEW_ORDERS, Action.EDIT_ORDERS, Action.DELIVER, Action.REQUEST_REVOCATION}
RIGHTS: dict[Role, frozenset[Action]] = {
    Role.MC: frozenset(_OFFICER),
    Role.AED: frozenset(_OFFICER),
    Role.OPERATOR: frozenset({
        Action.VIEW_ORDERS, Action.EDIT_ORDERS, Action.APPROVE_DESIGNATIONS, Action.MANAGE_ACCOUNTS,
        Action.REQUEST_REVOCATION, Action.PROCESS_REVOCATIONS, Action.READ_AUDIT,
    }),
    Role.AUDITOR: frozenset({Action.VIEW_ORDERS, Action.READ_AUDIT}),
}

# Actions that make an MC/AED act for an entity: they need training and an approved designation.
_QUALIFIED_ONLY = {Action.EDIT_ORDERS, Action.DELIVER, Action.REQUEST_REVOCATION}


def allowed(actor: StaffAccount, action: Action) -> bool:
    return actor.active and action in RIGHTS.get(Role(actor.role), frozenset())


def officer_problem(actor: StaffAccount) -> str | None:
    """Why an MC/AED may not act yet, or None."""
    if not actor.is_officer:
        return None
    if actor.training_date is None:
        return "Aucune date de formation n'est enregistrée pour ce compte."
    if actor.designation_status != DesignationStatus.APPROVED:
        return "La désignation de ce compte n'est pas encore approuvée par l'AC."
    return None


def require(actor: StaffAccount, action: Action) -> None:
    """The role-level check (403)."""
    if not allowed(actor, action):
        raise Forbidden("Votre rôle ne permet pas cette action.")
    if action in _QUALIFIED_ONLY:
        problem = officer_problem(actor)
        if problem:
            raise Forbidden(problem)


def scope_condition(actor: StaffAccount):  # type: ignore[no-untyped-def]
    """A SQL condition on ``Entity`` selecting the actor's entities; None means all."""
    if actor.role in (Role.OPERATOR, Role.AUDITOR):
        return None
    if actor.role == Role.MC:
        return Entity.id == (actor.entity_id if actor.entity_id is not None else -1)
    conditions = [Entity.id.in_([e.id for e in actor.scope_entities] or [-1])]
    if actor.scope_epci_id is not None:
        parent = aliased(Entity)
        member = select(parent.id).where(parent.parent_id == actor.scope_epci_id)
        conditions += [
            Entity.id == actor.scope_epci_id,
            Entity.parent_id == actor.scope_epci_id,  # member communes
            Entity.parent_id.in_(member),  # their CCAS and other attached bodies
        ]
    return or_(*conditions)


def visible_entities(actor: StaffAccount):  # type: ignore[no-untyped-def]
    """``select(Entity)`` restricted to the actor's scope."""
    stmt = select(Entity)
    condition = scope_condition(actor)
    return stmt if condition is None else stmt.where(condition)


def visible_entity_ids(actor: StaffAccount):  # type: ignore[no-untyped-def]
    stmt = select(Entity.id)
    condition = scope_condition(actor)
    return stmt if condition is None else stmt.where(condition)


def in_scope(session: Session, actor: StaffAccount, entity_id: int) -> bool:
    return session.scalar(visible_entity_ids(actor).where(Entity.id == entity_id)) is not None


def require_entity(session: Session, actor: StaffAccount, entity_id: int, action: Action) -> Entity:
    """The entity, if the actor may do ``action`` for it: 404 out of scope, 403 for the role."""
    entity = session.get(Entity, entity_id)
    if entity is None or not in_scope(session, actor, entity_id):
        raise NotFound("Entité introuvable.")
    require(actor, action)
    return entity

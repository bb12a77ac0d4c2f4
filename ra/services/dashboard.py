"""What each role sees first: the work waiting for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.models import (
    Convention, ConventionStatus, DeliverySession, DesignationStatus, Entity, Order, OrderState,
    RevocationRequest, RevocationRequestStatus, Role, SessionStatus, StaffAccount,
)
from ra.permissions import visible_entities, visible_entity_ids
from ra.services.orders import ORDER_ROWS

TO_COMPLETE = (OrderState.DRAFT, OrderState.DOSSIER_COMPLETE, OrderState.APPROVED)


@dataclass
class Dashboard:
    entities: list[Entity] = field(default_factory=list)
    orders_to_complete: list[Order] = field(default_factory=list)
    sessions_to_come: list[DeliverySession] = field(default_factory=list)
    designations_to_approve: list[StaffAccount] = field(default_factory=list)
    conventions_to_approve: list[Convention] = field(default_factory=list)
    orders_to_approve: list[Order] = field(default_factory=list)
    revocations_to_process: list[RevocationRequest] = field(default_factory=list)


def dashboard_for(session: Session, user: StaffAccount, *, today: date | None = None) -> Dashboard:
    today = today or date.today()
    board = Dashboard()
    if user.role in (Role.MC, Role.AED):
        board.entities = list(session.scalars(visible_entities(user).order_by(Entity.name)))
        board.orders_to_complete = list(session.scalars(
            select(Order).where(Order.entity_id.in_(visible_entity_ids(user)))
            .where(Order.state.in_(TO_COMPLETE)).options(*ORDER_ROWS).order_by(Order.created_at).limit(50)))
        board.sessions_to_come = list(session.scalars(
            select(DeliverySession).where(DeliverySession.operator_id == user.id)
            .where(DeliverySession.session_date >= today)
            .where(DeliverySession.status == SessionStatus.PLANNED)
            .order_by(DeliverySession.session_date).limit(20)))
    elif user.role == Role.OPERATOR:
        board.designations_to_approve = list(session.scalars(
            select(StaffAccount).where(StaffAccount.designation_status == DesignationStatus.PENDING)
            .order_by(StaffAccount.created_at)))
        board.conventions_to_approve = list(session.scalars(
            select(Convention).where(Convention.status == ConventionStatus.PENDING)))
        board.orders_to_approve = list(session.scalars(
            select(Order).where(Order.state == OrderState.DOSSIER_COMPLETE).options(*ORDER_ROWS)
            .order_by(Order.created_at).limit(50)))
        board.revocations_to_process = list(session.scalars(
            select(RevocationRequest).where(RevocationRequest.status == RevocationRequestStatus.PENDING)
            .order_by(RevocationRequest.created_at)))
    return board

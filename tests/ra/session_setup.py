"""Rows for the delivery-session tests: holders, orders in a given state, sessions, ID evidence.

Orders are written directly (not through the order services), in the state a test needs.
"""

from __future__ import annotations

import itertools
import secrets
from functools import cached_property
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ra.fieldcrypt import FieldCipher
from ra.models import (
    DeliverySession, Entity, EntityKind, Holder, Order, OrderState, Role, SessionStatus, StaffAccount, TokenChoice,
)
from ra.services.identity import IdentityEvidence
from tests.ra.web import Person, make_account, make_entity

PROFILE = "rgs2-entite-double"
ADDRESS = "1 place de la Mairie, 22000 Saint-Brieuc"
_counter = itertools.count(1)


def make_holder(session: Session, *, given_names: str = "Annaïg", surname: str = "Le Goff",
                email: str | None = None) -> Holder:
    holder = Holder(given_names=given_names, surname=surname,
                    email=email or f"porteur{next(_counter)}-{secrets.token_hex(3)}@example.fr")
    session.add(holder)
    session.flush()
    return holder


def make_order(
    session: Session, entity: Entity, creator: StaffAccount, *, state: OrderState = OrderState.APPROVED,
    holder: Holder | None = None, delivery: DeliverySession | None = None, ordered_on: date | None = None,
    new_token: bool = True,
) -> Order:
    order = Order(
        reference=f"S-{secrets.token_hex(6).upper()}", entity_id=entity.id,
        holder_id=(holder or make_holder(session)).id, profile=PROFILE,
        token_choice=TokenChoice.NEW if new_token else TokenChoice.REUSE, state=state,
        ordered_on=ordered_on or date.today() - timedelta(days=20), created_by_id=creator.id,
        delivery_session_id=delivery.id if delivery else None,
    )
    session.add(order)
    session.flush()
    return order


def make_delivery(session: Session, operator: StaffAccount, *, day: date | None = None, on_site: bool = True,
                  address: str = ADDRESS, status: SessionStatus = SessionStatus.PLANNED) -> DeliverySession:
    """A session row (any date, even past: the service refuses those, tests need them)."""
    delivery = DeliverySession(session_date=day or date.today(), site_address=address, on_site=on_site,
                               operator_id=operator.id, status=status)
    session.add(delivery)
    session.flush()
    return delivery


def evidence(**overrides: Any) -> IdentityEvidence:
    values: dict[str, Any] = dict(document_type="cni", document_number="X4RTBPFW4", issuing_country="FRA",
                                  document_expiry=date.today() + timedelta(days=800), names_match=True,
                                  in_person=True)
    values.update(overrides)
    return IdentityEvidence(**values)


class World:
    """An EPCI with a member commune (and its CCAS), another commune outside, and their staff.

    Staff accounts are created on first use (each costs an argon2 hash).
    """

    def __init__(self, session: Session, cipher: FieldCipher) -> None:
        self._session, self._cipher = session, cipher
        self.epci = make_entity(session, f"CA TEST {next(_counter)}", kind=EntityKind.EPCI)
        self.commune = make_entity(session, parent=self.epci)
        self.ccas = make_entity(session, f"CCAS TEST {next(_counter)}", kind=EntityKind.CCAS, parent=self.commune)
        self.outside = make_entity(session)

    def _account(self, role: Role, **scope: Any) -> Person:
        return make_account(self._session, self._cipher, role, **scope)

    @cached_property
    def mc(self) -> Person:
        """MC of the member commune."""
        return self._account(Role.MC, entity=self.commune)

    @cached_property
    def mc_outside(self) -> Person:
        """MC of the commune outside the EPCI."""
        return self._account(Role.MC, entity=self.outside)

    @cached_property
    def aed(self) -> Person:
        """AED of the EPCI: its member communes and their attached bodies."""
        return self._account(Role.AED, epci=self.epci)

    @cached_property
    def aed_elsewhere(self) -> Person:
        """AED whose explicit scope is only the commune outside."""
        return self._account(Role.AED, scope=(self.outside,))

    @cached_property
    def operator(self) -> Person:
        return self._account(Role.OPERATOR)

    @cached_property
    def auditor(self) -> Person:
        return self._account(Role.AUDITOR)


def make_world(session: Session, cipher: FieldCipher) -> World:
    return World(session, cipher)

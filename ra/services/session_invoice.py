"""A delivery session's invoice lines, per entity, priced from the BPU (``ra.pricing``).

Invoiced: the session's orders whose face-to-face took place there (identity verified, issued or
delivered). Absent holders, removed and cancelled orders are not. The on-site fee applies only to
an on-site session; its degressive tier comes from the group of certificates delivered at the same
address on the same day from orders placed on the same day (``pricing.invoice_lines`` groups them).
Groups are formed within the session: two sessions at one address on one day are invoiced apart.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.models import DeliverySession, Entity, Order, StaffAccount
from ra.permissions import visible_entity_ids
from ra.pricing import (
    BPUError, DeliveredCertificate, InvoiceLine, InvoiceTotals, PriceSchedule, invoice_lines, invoice_totals,
)
from ra.services.sessions import FACE_TO_FACE_DONE, get_session


@dataclass(frozen=True)
class EntityInvoice:
    entity_id: int
    entity_name: str
    certificates: int
    lines: list[InvoiceLine]
    totals: InvoiceTotals


@dataclass(frozen=True)
class SessionInvoice:
    entities: list[EntityInvoice]
    totals: InvoiceTotals  # sum of the entities' invoices (VAT is computed per entity)

    @property
    def certificates(self) -> int:
        return sum(e.certificates for e in self.entities)


def invoiced_orders(session: Session, delivery: DeliverySession) -> list[Order]:
    return list(session.scalars(
        select(Order).where(Order.delivery_session_id == delivery.id, Order.state.in_(FACE_TO_FACE_DONE),
                            Order.absent.is_(False))
        .order_by(Order.reference)))


def delivered_certificates(session: Session, delivery: DeliverySession) -> list[DeliveredCertificate]:
    """The certificates handed over at the session, as the pricing needs them."""
    return [
        DeliveredCertificate(
            order_ref=order.reference, entity_id=order.entity_id, entity_name=order.entity.name,
            profile=order.profile, new_token=order.token_choice == "new", on_site=delivery.on_site,
            site_address=delivery.site_address, delivery_date=delivery.session_date,
            order_date=order.ordered_on,
        )
        for order in invoiced_orders(session, delivery)
    ]


def session_invoice(session: Session, actor: StaffAccount, session_id: int,
                    schedule: PriceSchedule) -> SessionInvoice:
    """Invoice lines and totals per entity; an actor sees only the entities in its scope."""
    return _invoice(session, actor, get_session(session, actor, session_id), schedule)


def invoice_or_problem(session: Session, actor: StaffAccount, delivery: DeliverySession,
                       bpu_path: Path | None) -> tuple[SessionInvoice | None, str | None]:
    """The session's invoice (``delivery`` already read in the actor's scope), or why it cannot be priced."""
    try:
        return _invoice(session, actor, delivery, PriceSchedule.current(bpu_path)), None
    except (BPUError, ValueError) as exc:
        return None, f"Les lignes de facturation ne peuvent pas être calculées : {exc}"


def _invoice(session: Session, actor: StaffAccount, delivery: DeliverySession,
             schedule: PriceSchedule) -> SessionInvoice:
    deliveries = delivered_certificates(session, delivery)
    per_entity = invoice_lines(schedule, deliveries)  # groups over the whole session
    visible = set(session.scalars(visible_entity_ids(actor).where(Entity.id.in_(list(per_entity)))))
    counts = Counter(d.entity_id for d in deliveries)
    names = {d.entity_id: d.entity_name for d in deliveries}
    entities = [
        EntityInvoice(cast(int, entity_id), names[entity_id], counts[entity_id], lines,
                      invoice_totals(schedule, lines))
        for entity_id, lines in per_entity.items() if entity_id in visible
    ]
    entities.sort(key=lambda e: e.entity_name)
    ht = sum(e.totals.ht_cents for e in entities)
    vat = sum(e.totals.vat_cents for e in entities)
    return SessionInvoice(entities, InvoiceTotals(ht_cents=ht, vat_cents=vat, ttc_cents=ht + vat))

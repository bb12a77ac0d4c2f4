"""The face-to-face identity check (face-à-face): scheduled → identity_verified.

Recorded on the session's day only, by the session's operator, who can never be the holder.
The ID document must still be valid on the session's day: a document whose expiry date IS the
session's day is accepted (valid through that date), one that expired the day before is not.
The document number is stored encrypted (AES-GCM, purpose-bound) and never audited or logged:
the audit row carries only the document type, issuing country and expiry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache

import iso3166
from babel import Locale, UnknownLocaleError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra import audit
from ra.errors import IllegalTransition, InvalidInput
from ra.fieldcrypt import FieldCipher
from ra.models import Certificate, DeliverySession, IdDocumentType, IdentityCheck, Order, StaffAccount
from ra.services.orders import OrderAction, advance, check_action
from ra.services.sessions import (
    managed_session, normalise_name, refuse_operator_as_holder, session_order, session_orders,
)

ID_NUMBER_PURPOSE = "id-document-number"
_NUMBER = re.compile(r"[A-Z0-9]{4,20}")


@dataclass(frozen=True)
class IdentityEvidence:
    """What the operator saw and typed during the face-to-face."""

    document_type: str
    document_number: str = field(repr=False)
    document_expiry: date | None
    issuing_country: str
    names_match: bool
    in_person: bool


def record_identity_check(
    session: Session, actor: StaffAccount, session_id: int, order_id: int, evidence: IdentityEvidence, *,
    cipher: FieldCipher, today: date | None = None,
) -> IdentityCheck:
    """Record the face-to-face of an order of the session and mark its identity verified."""
    delivery = managed_session(session, actor, session_id)
    if delivery.session_date != (today or date.today()):
        raise IllegalTransition(f"Le face-à-face ne s'enregistre que le jour de la session "
                                f"({delivery.session_date:%d/%m/%Y}).")
    order = session_order(session, actor, delivery, order_id)
    check_action(order, OrderAction.VERIFY_IDENTITY)
    refuse_operator_as_holder(actor, order)
    document_type, number, expiry, country = checked_evidence(evidence, delivery.session_date)
    check = IdentityCheck(
        order_id=order.id, session_id=delivery.id, operator_id=actor.id, document_type=document_type,
        document_number=cipher.encrypt(number, purpose=ID_NUMBER_PURPOSE), document_expiry=expiry,
        issuing_country=country, names_match=True,
    )
    session.add(check)
    advance(order, OrderAction.VERIFY_IDENTITY)
    order.absent = False
    session.flush()
    audit.record(session, actor=actor.email, action="identity.check", object_type="order",
                 object_id=order.reference, details={
                     "session_id": delivery.id, "check_id": check.id, "document_type": str(document_type),
                     "issuing_country": country, "document_expiry": expiry.isoformat()})
    return check


def checked_evidence(evidence: IdentityEvidence, session_day: date) -> tuple[IdDocumentType, str, date, str]:
    """The normalised (type, number, expiry, country), or InvalidInput saying what is wrong."""
    if not evidence.in_person:
        raise InvalidInput("Le face-à-face exige la présence du porteur en personne.")
    if not evidence.names_match:
        raise InvalidInput("Les nom et prénoms de la pièce d'identité ne correspondent pas à la commande : le "
                           "porteur d'une commande ne change jamais, une nouvelle commande est nécessaire "
                           "pour un autre porteur.")
    try:
        document_type = IdDocumentType(evidence.document_type)
    except ValueError:
        raise InvalidInput("Type de pièce d'identité inconnu : carte nationale d'identité, passeport ou "
                           "titre de séjour.") from None
    number = "".join((evidence.document_number or "").split()).upper()
    if not _NUMBER.fullmatch(number):
        raise InvalidInput("Numéro de la pièce d'identité invalide : de 4 à 20 lettres ou chiffres.")
    expiry = evidence.document_expiry
    if not isinstance(expiry, date) or isinstance(expiry, datetime):
        raise InvalidInput("La date d'expiration de la pièce d'identité est obligatoire.")
    if expiry < session_day:
        raise InvalidInput(f"La pièce d'identité a expiré le {expiry:%d/%m/%Y} : elle n'est plus valide le "
                           "jour de la session.")
    country = (evidence.issuing_country or "").strip().upper()
    if country not in iso3166.countries_by_alpha3:
        raise InvalidInput("Pays de délivrance inconnu : choisissez un pays de la liste (code ISO 3166-1 "
                           "alpha-3, par exemple FRA).")
    return document_type, number, expiry, country


@dataclass(frozen=True)
class DayRow:
    """One holder on the delivery-day screen (the check without its document number)."""

    order: Order
    check: IdentityCheck | None
    certificate_serial: str | None


def day_rows(session: Session, actor: StaffAccount, delivery: DeliverySession) -> list[DayRow]:
    """The session's holders the actor may see, with their face-to-face and certificate, if any."""
    orders = session_orders(session, actor, delivery)
    checks = {c.order_id: c for c in session.scalars(
        select(IdentityCheck).where(IdentityCheck.session_id == delivery.id,
                                    IdentityCheck.order_id.in_([o.id for o in orders]))
        .order_by(IdentityCheck.id))}
    cert_ids = [o.certificate_id for o in orders if o.certificate_id]
    serials: dict[int, str] = {}
    if cert_ids:
        rows = session.execute(select(Certificate.id, Certificate.serial).where(Certificate.id.in_(cert_ids)))
        serials = {cert_id: serial for cert_id, serial in rows}
    return [DayRow(o, checks.get(o.id), serials.get(o.certificate_id) if o.certificate_id else None)
            for o in orders]


@lru_cache(maxsize=8)
def country_choices(locale: str = "fr") -> tuple[tuple[str, str], ...]:
    """(alpha-3 code, name in ``locale``) for every ISO 3166-1 country, France first."""
    try:
        names = Locale.parse(locale).territories
    except (ValueError, UnknownLocaleError):
        names = Locale("fr").territories
    rows = [(c.alpha3, names.get(c.alpha2, c.name)) for c in iso3166.countries]
    france = next(row for row in rows if row[0] == "FRA")
    others = sorted((row for row in rows if row[0] != "FRA"), key=lambda row: normalise_name(row[1]))
    return (france, *others)

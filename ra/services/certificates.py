"""Certificates as staff see them: list, detail, and the scope given by the order's entity.

An MC or AED sees a certificate only through its order (``Certificate.order_id`` →
``Order.entity_id``) when that entity is in scope; a certificate without an order (issued
outside the order workflow) is seen by CA operators and auditors only. Outside the scope is
a 404, never a hint that the certificate exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from ra.services.inputs import like_pattern
from ra.db import utcnow
from ra.errors import InvalidInput, NotFound
from ra.models import Certificate, CertificateState, Entity, Order, StaffAccount
from ra.permissions import Action, require, scope_condition, visible_entity_ids

STATUSES = ("valid", "revoked", "expired")
MAX_SERIAL_HEX = 40  # 20 octets (RFC 5280)


def normalise_serial(text: str) -> str:
    """A serial as stored: lowercase hex, no colons or spaces, no leading zeros."""
    cleaned = text.strip().replace(":", "").replace(" ", "").lower()
    if cleaned.startswith("0x"):
        cleaned = cleaned[2:]
    if not cleaned or len(cleaned) > MAX_SERIAL_HEX or any(c not in "0123456789abcdef" for c in cleaned):
        raise InvalidInput("Le numéro de série doit être un nombre hexadécimal de 40 chiffres au plus.")
    return cleaned.lstrip("0") or "0"


@dataclass(frozen=True)
class CertificateFilter:
    status: str | None = None  # valid / revoked / expired
    entity_id: int | None = None
    text: str | None = None  # part of the subject, or the start of the serial

    @classmethod
    def parse(cls, status: str | None, entity_id: str | int | None, text: str | None) -> CertificateFilter:
        """Filters from query parameters; French InvalidInput for a wrong value."""
        status = (status or "").strip() or None
        if status is not None and status not in STATUSES:
            raise InvalidInput("Statut inconnu : choisissez valide, révoqué ou expiré.")
        entity: int | None = None
        if entity_id not in (None, ""):
            try:
                entity = int(entity_id)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise InvalidInput("L'entité choisie n'est pas valide.") from None
        text = (text or "").strip()[:200] or None
        return cls(status, entity, text)


def certificate_scope(actor: StaffAccount):  # type: ignore[no-untyped-def]
    """A condition on Certificate for the actor's scope; None means every certificate."""
    if scope_condition(actor) is None:
        return None
    orders = select(Order.id).where(Order.entity_id.in_(visible_entity_ids(actor)))
    return Certificate.order_id.in_(orders)


def _status_condition(status: str, now: datetime):  # type: ignore[no-untyped-def]
    if status == "revoked":
        return Certificate.revoked_at.is_not(None)
    if status == "expired":
        return and_(Certificate.revoked_at.is_(None), Certificate.not_after <= now)
    return and_(Certificate.revoked_at.is_(None), Certificate.not_after > now)


def list_certificates(actor: StaffAccount, filters: CertificateFilter, *,
                      now: datetime | None = None) -> Select[tuple[Certificate]]:
    """Issued certificates the actor may see, newest first, filtered."""
    require(actor, Action.VIEW_ORDERS)
    now = now or utcnow()
    stmt = select(Certificate).where(Certificate.state == CertificateState.ISSUED)
    scope = certificate_scope(actor)
    if scope is not None:
        stmt = stmt.where(scope)
    if filters.status:
        stmt = stmt.where(_status_condition(filters.status, now))
    if filters.entity_id is not None:
        stmt = stmt.where(Certificate.order_id.in_(select(Order.id).where(Order.entity_id == filters.entity_id)))
    if filters.text:
        conditions = [Certificate.subject.ilike(like_pattern(filters.text), escape="\\")]
        try:
            conditions.append(Certificate.serial.startswith(normalise_serial(filters.text), autoescape=True))
        except InvalidInput:
            pass
        stmt = stmt.where(or_(*conditions))
    return stmt.order_by(Certificate.issued_at.desc(), Certificate.id.desc())


def get_certificate(session: Session, actor: StaffAccount, serial: str) -> Certificate:
    """An issued certificate the actor may see: 404 when unknown or out of scope."""
    require(actor, Action.VIEW_ORDERS)
    try:
        normalised = normalise_serial(serial)
    except InvalidInput:
        raise NotFound("Certificat introuvable.") from None
    stmt = select(Certificate).where(Certificate.serial == normalised) \
        .where(Certificate.state == CertificateState.ISSUED)
    scope = certificate_scope(actor)
    if scope is not None:
        stmt = stmt.where(scope)
    cert = session.scalar(stmt)
    if cert is None:
        raise NotFound("Certificat introuvable.")
    return cert


def order_of(session: Session, cert: Certificate) -> Order | None:
    return session.get(Order, cert.order_id) if cert.order_id is not None else None


def entities_of(session: Session, certs: list[Certificate]) -> dict[int, Entity]:
    """Certificate id → entity of its order, for the certificates of one page."""
    ids = [c.id for c in certs if c.order_id is not None]
    if not ids:
        return {}
    rows = session.execute(
        select(Certificate.id, Entity).join(Order, Order.id == Certificate.order_id)
        .join(Entity, Entity.id == Order.entity_id).where(Certificate.id.in_(ids))
    ).all()
    return {cert_id: entity for cert_id, entity in rows}


def holder_label(subject: str) -> str:
    """« Given SURNAME — Organisation » from a stored RFC 4514 subject (as stored if unreadable)."""
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        return subject
    parts = [attr.value for oid in (x509.NameOID.COMMON_NAME, x509.NameOID.ORGANIZATION_NAME)
             for attr in name.get_attributes_for_oid(oid)]
    return " — ".join(str(p) for p in parts) or subject


def pem(cert: Certificate) -> str:
    if cert.der is None:
        raise NotFound("Ce certificat n'a pas été signé.")
    return x509.load_der_x509_certificate(cert.der).public_bytes(serialization.Encoding.PEM).decode()

"""Revoking a certificate: a row change, never undone. The CRL job publishes it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.crl import Reason
from ra import audit
from ra.db import utcnow
from ra.errors import IllegalTransition, InvalidInput, NotFound
from ra.models import Certificate, CertificateState

# Reasons a revocation may carry. certificateHold is refused: a revocation is never undone.
ALLOWED_REASONS = frozenset(Reason) - {Reason.certificate_hold, Reason.remove_from_crl}


def parse_reason(name: str) -> Reason:
    try:
        reason = Reason.from_name(name)
    except (KeyError, ValueError):
        choices = ", ".join(sorted(r.name for r in ALLOWED_REASONS))
        raise InvalidInput(f"Unknown revocation reason {name!r}; choose one of: {choices}.") from None
    if reason not in ALLOWED_REASONS:
        raise InvalidInput(f"The reason {reason.name} is not accepted: a revocation is final.")
    return reason


def find_certificate(session: Session, serial: str) -> Certificate:
    """A certificate by hexadecimal serial (any case, colons allowed)."""
    normalised = serial.replace(":", "").strip().lower().lstrip("0") or "0"
    try:
        int(normalised, 16)
    except ValueError:
        raise InvalidInput(f"{serial!r} is not a hexadecimal serial number.") from None
    cert = session.scalar(select(Certificate).where(Certificate.serial == normalised))
    if cert is None:
        raise NotFound(f"No certificate with serial {normalised}.")
    return cert


def revoke_certificate(
    session: Session, cert: Certificate, *, reason: Reason, actor: str,
    invalidity_date: datetime | None = None, now: datetime | None = None,
) -> Certificate:
    """Mark an issued certificate revoked (same transaction as its audit row)."""
    now = now or utcnow()
    if cert.state != CertificateState.ISSUED:
        raise IllegalTransition(f"Certificate {cert.serial} was never issued ({cert.state}).")
    if cert.revoked_at is not None:
        raise IllegalTransition(f"Certificate {cert.serial} is already revoked; a revocation is final.")
    if reason not in ALLOWED_REASONS:
        raise InvalidInput(f"The reason {reason.name} is not accepted: a revocation is final.")
    if invalidity_date is not None and invalidity_date > now:
        raise InvalidInput("The invalidity date cannot be in the future.")
    cert.revoked_at = now
    cert.revocation_reason = int(reason)
    cert.invalidity_date = invalidity_date
    audit.record(
        session, actor=actor, action="certificate.revoke", object_type="certificate",
        object_id=cert.serial, details={"reason": reason.name},
    )
    return cert

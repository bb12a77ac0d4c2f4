"""The public certificate check: was this certificate issued here, and what is its status?

Read-only: the submitted bytes are parsed in memory and never stored. "Issued here" means the
issuer name is the subject of one of this hierarchy's CA certificates AND the signature
verifies with that CA's public key; only then is the serial looked up in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.db import utcnow
from ra.errors import InvalidInput
from ra.models import Authority, Certificate, CertificateState

MAX_INPUT = 64 * 1024
UNREADABLE = "Le contenu envoyé n'est pas un certificat X.509 lisible (PEM ou DER attendu)."


@dataclass(frozen=True)
class CertificateCheck:
    subject: str
    issuer: str
    serial: str  # lowercase hex
    not_before: datetime
    not_after: datetime
    issued_here: bool
    authority: str | None  # name of the CA that signed it, when issued here
    status: str  # valid / revoked / expired / unknown / not_ours / authority
    revoked_at: datetime | None = None
    reason: int | None = None  # RFC 5280 reason code of a revoked certificate


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes; a French InvalidInput for anything else."""
    if not data or not data.strip():
        raise InvalidInput("Collez un certificat au format PEM ou choisissez un fichier.")
    if len(data) > MAX_INPUT:
        raise InvalidInput("Le certificat dépasse 64 Ko : ce n'est pas un certificat de porteur.")
    try:
        if b"-----BEGIN" in data:
            cert = x509.load_pem_x509_certificate(data.strip())
        else:
            cert = x509.load_der_x509_certificate(data)
        # Parsing is lazy: touch what the check uses, so a malformed field fails here.
        cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
        cert.not_valid_before_utc, cert.not_valid_after_utc, cert.serial_number
    except (ValueError, TypeError):
        raise InvalidInput(UNREADABLE) from None
    return cert


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _issuing_authority(session: Session, cert: x509.Certificate) -> Authority | None:
    for authority in session.scalars(select(Authority).order_by(Authority.id)):
        if _signed_by(cert, x509.load_der_x509_certificate(authority.certificate_der)):
            return authority
    return None


def check_certificate(session: Session, data: bytes, *, now: datetime | None = None) -> CertificateCheck:
    now = now or utcnow()
    cert = load_certificate(data)
    serial = format(cert.serial_number, "x") if cert.serial_number >= 0 else str(cert.serial_number)
    check = CertificateCheck(
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(), serial=serial,
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        issued_here=False, authority=None, status="not_ours",
    )
    authority = _issuing_authority(session, cert)
    if authority is None:
        return check
    check = replace(check, issued_here=True, authority=authority.name, status="unknown")
    der = cert.public_bytes(Encoding.DER)
    if session.scalar(select(Authority.id).where(Authority.certificate_der == der)) is not None:
        return replace(check, status="expired" if check.not_after <= now else "authority")
    row = session.scalar(select(Certificate).where(Certificate.serial == serial)
                         .where(Certificate.state == CertificateState.ISSUED))
    if row is None or row.der != der:
        return check  # signed here, yet not the certificate the database holds for this serial
    return replace(check, status=row.status(now), revoked_at=row.revoked_at,
                   reason=row.revocation_reason if row.revoked_at else None)

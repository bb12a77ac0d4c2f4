"""Issuing a holder certificate, in Boulder's order.

1. check the request (CSR signature and key) — nothing is reserved for a bad request;
2. reserve a random serial and record everything that will be signed (own transaction);
3. the CA core builds, lints a throwaway-signed copy, signs on the HSM, compares the TBS;
4. store the signed certificate (own transaction).
A failure in step 3 marks the reservation failed. A crash between 3 and 4 leaves the row
``reserved``: the database still knows the serial and its content, and it can be revoked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached, sessionmaker

from ca.errors import CAError
from ca.issuance import IssuanceRequest
from ca.profiles import HolderSubject, check_public_key, get_profile, parse_csr
from ra import audit
from ra.authority import CertificationAuthority
from ra.config import ISSUING_SLUG
from ra.db import driver_transaction, utcnow
from ra.db_driver import DriverTransaction
from ra.errors import IllegalTransition, InvalidInput
from ra.models import Certificate, CertificateState, Order, OrderState

MAX_VALIDITY = timedelta(days=3 * 365)
# Steps 2 and 4 run once per certificate: constant Core statements run on the driver's cursor
# (ra.db_driver). In UPDATEs, the columns set are the parameters other than the WHERE's.
_CERTIFICATES = Certificate.__table__
_ORDERS = Order.__table__
_INSERT_CERTIFICATE = insert(_CERTIFICATES).returning(_CERTIFICATES.c.id)
_UPDATE_CERTIFICATE = update(_CERTIFICATES).where(_CERTIFICATES.c.id == bindparam("certificate_id"))
_UPDATE_ORDER = update(_ORDERS).where(_ORDERS.c.id == bindparam("order_id"))
_LOCK_ORDER = select(_ORDERS.c.id).where(_ORDERS.c.id == bindparam("order_id")).with_for_update()
_ORDER_CERTIFICATES_IN_FLIGHT = (
    select(_CERTIFICATES.c.id, _CERTIFICATES.c.state, _CERTIFICATES.c.reserved_at)
    .where(_CERTIFICATES.c.order_id == bindparam("order_id"))
    .where(_CERTIFICATES.c.state != CertificateState.FAILED)  # reserved or issued
)
SERIAL_BITS = 127  # 16 octets, positive, top bit forced: fixed length, 126 random bits


def new_serial() -> int:
    return secrets.randbits(SERIAL_BITS - 1) | (1 << (SERIAL_BITS - 1))


@dataclass(frozen=True)
class IssueCommand:
    subject: HolderSubject
    csr: bytes  # PEM or DER
    profile: str
    actor: str
    validity: timedelta = MAX_VALIDITY
    order_id: int | None = None  # the order becomes ``issued`` in the same transaction as the cert


def issue_certificate(
    factory: sessionmaker[Session], ca: CertificationAuthority, command: IssueCommand,
    *, now: datetime | None = None,
) -> Certificate:
    now = now or utcnow()
    profile = get_profile(command.profile)
    not_before = now.replace(microsecond=0)
    not_after = not_before + command.validity
    if command.validity > MAX_VALIDITY or command.validity <= timedelta(0):
        raise InvalidInput("Validity must be positive and at most 3 years.")
    csr = parse_csr(command.csr)  # 1. proof of possession, no requested extensions
    check_public_key(csr.public_key(), not_after=not_after)
    spki = csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    with factory() as session:
        issuer = ca.issuer(session)
        authority_id = ca.authority(session, ISSUING_SLUG).id
    cert = _reserve(factory, command, authority_id, profile.name, spki, not_before, not_after)  # 2.
    request = IssuanceRequest(
        serial=int(cert.serial, 16), subject=command.subject, public_key_der=spki,
        profile=profile.name, not_before=not_before, not_after=not_after,
    )
    try:
        issued = issuer.issue(request)  # 3. lint, then sign on the HSM
    except CAError as exc:
        _update(factory, cert, actor=command.actor, action="certificate.fail",
                details={"error": str(exc)[:2000]},
                state=CertificateState.FAILED, failure=str(exc)[:2000])
        raise
    _update(factory, cert, actor=command.actor, action="certificate.issue",  # 4.
            details={"profile": profile.name, "warnings": list(issued.warnings)},
            order_id=command.order_id,
            state=CertificateState.ISSUED, der=issued.der, issued_at=utcnow())
    return cert


def _update(
    factory: sessionmaker[Session], cert: Certificate, *, actor: str, action: str,
    details: dict[str, object], order_id: int | None = None, **values: object,
) -> None:
    """Change the certificate row and audit it in one transaction (no re-read of the row).

    With ``order_id``, the order becomes ``issued`` and points at the certificate in the same
    transaction: an order is never issued without its certificate, nor the reverse.
    """
    with driver_transaction(factory) as tx:
        tx.execute(_UPDATE_CERTIFICATE, {"certificate_id": cert.id, **values})
        if order_id is not None:
            tx.execute(_UPDATE_ORDER, {"order_id": order_id, "state": OrderState.ISSUED,
                                       "certificate_id": cert.id})
        audit.record(tx, actor=actor, action=action, object_type="certificate",
                     object_id=cert.serial, details=details)
    for name, value in values.items():
        setattr(cert, name, value)


STALE_RESERVATION = timedelta(minutes=10)


def _claim_order(tx: DriverTransaction, order_id: int) -> None:
    """Under the order's row lock: one certificate per order, never two in flight.

    A reservation left ``reserved`` for 10 minutes belongs to a process that stopped before
    storing: it is marked failed (its serial stays known) and the order may be issued again.
    """
    tx.execute(_LOCK_ORDER, {"order_id": order_id})
    for cert_id, state, reserved_at in tx.execute(_ORDER_CERTIFICATES_IN_FLIGHT, {"order_id": order_id}).all():
        if state == CertificateState.RESERVED and utcnow() - reserved_at > STALE_RESERVATION:
            tx.execute(_UPDATE_CERTIFICATE, {"certificate_id": cert_id, "state": CertificateState.FAILED,
                                             "failure": "abandoned reservation: stopped before storing"})
            continue
        raise IllegalTransition("Un certificat est déjà émis ou en cours d'émission pour cette commande.")


def _reserve(
    factory: sessionmaker[Session], command: IssueCommand, authority_id: int, profile: str,
    spki: bytes, not_before: datetime, not_after: datetime,
) -> Certificate:
    subject_text = command.subject.to_name().rfc4514_string()
    for _attempt in range(3):
        row: dict[str, object] = dict(
            authority_id=authority_id, order_id=command.order_id, serial=format(new_serial(), "x"),
            state=CertificateState.RESERVED, profile=profile, subject=subject_text,
            email=command.subject.email, public_key_der=spki, not_before=not_before, not_after=not_after,
            reserved_at=utcnow(),
        )
        try:
            with driver_transaction(factory) as tx:
                if command.order_id is not None:
                    _claim_order(tx, command.order_id)
                row["id"] = tx.execute(_INSERT_CERTIFICATE, row).scalar_one()
                audit.record(
                    tx, actor=command.actor, action="certificate.reserve",
                    object_type="certificate", object_id=row["serial"],
                    details={"profile": profile, "subject": subject_text,
                             "not_after": not_after.isoformat()},
                )
        except IntegrityError:  # a serial collision: astronomically rare, draw again
            continue
        cert = Certificate(**{column.key: None for column in _CERTIFICATES.columns} | row)
        make_transient_to_detached(cert)  # every column loaded: readable after the session is gone
        return cert
    raise InvalidInput("Could not reserve a unique serial number.")

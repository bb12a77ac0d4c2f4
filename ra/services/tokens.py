"""USB token lifecycle: blank → initialised → active → blocked → lost / retired, with history.

A token declared lost has its certificates revoked (keyCompromise) through the CA core's
revocation path, in the same transaction.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.crl import Reason
from ra import audit
from ra.errors import IllegalTransition, NotFound
from ra.models import Certificate, CertificateState, Order, Role, StaffAccount, TokenEvent, TokenState, UsbToken
from ra.permissions import Action, require, require_entity
from ra.services.revocation import revoke_certificate

S = TokenState
TRANSITIONS: dict[TokenState, frozenset[TokenState]] = {
    S.BLANK: frozenset({S.INITIALISED, S.RETIRED}),
    S.INITIALISED: frozenset({S.INITIALISED, S.ACTIVE, S.LOST, S.RETIRED}),
    S.ACTIVE: frozenset({S.INITIALISED, S.BLOCKED, S.LOST, S.RETIRED}),  # initialised: reused
    S.BLOCKED: frozenset({S.ACTIVE, S.INITIALISED, S.LOST, S.RETIRED}),  # active: PIN unblocked
    S.LOST: frozenset(),
    S.RETIRED: frozenset({S.INITIALISED}),  # a retired, wiped token may serve again
}


def record_token_event(session: Session, token: UsbToken, to: TokenState, *, actor: str,
                       note: str | None = None, force: bool = False) -> TokenEvent:
    """Move the token to ``to`` and keep the history row (``force`` skips the table for enrolment)."""
    current = TokenState(token.state)
    if not force and to not in TRANSITIONS[current]:
        raise IllegalTransition(f"Un support à l'état « {current} » ne peut pas passer à « {to} ».")
    if current in (S.LOST,):
        raise IllegalTransition("Un support perdu ne change plus d'état.")
    event = TokenEvent(token_id=token.id, from_state=str(current), to_state=str(to), actor=actor, note=note)
    token.state = to
    session.add(event)
    return event


def find_token(session: Session, serial: str) -> UsbToken:
    token = session.scalar(select(UsbToken).where(UsbToken.serial == serial))
    if token is None:
        raise NotFound("Support introuvable.")
    return token


def token_certificates(session: Session, token: UsbToken) -> list[Certificate]:
    return list(session.scalars(
        select(Certificate).join(Order, Certificate.order_id == Order.id)
        .where(Order.token_id == token.id, Certificate.state == CertificateState.ISSUED)
        .order_by(Certificate.issued_at)
    ))


def require_token_events(session: Session, actor: StaffAccount, token: UsbToken) -> None:
    """Who records a token's events: a CA operator, or a qualified MC/AED of an entity in scope."""
    if token.entity_id is None or actor.role == Role.OPERATOR:
        require(actor, Action.PROCESS_REVOCATIONS)
    else:
        require_entity(session, actor, token.entity_id, Action.DELIVER)


def change_token_state(session: Session, actor: StaffAccount, serial: str, to: TokenState, *,
                       note: str | None = None) -> UsbToken:
    """An MC/AED (in scope) or a CA operator records a token event; lost revokes its certificates."""
    token = find_token(session, serial)
    require_token_events(session, actor, token)
    record_token_event(session, token, to, actor=actor.email, note=note)
    revoked = []
    if to == S.LOST:
        for cert in token_certificates(session, token):
            if cert.revoked_at is None:
                revoke_certificate(session, cert, reason=Reason.key_compromise, actor=actor.email)
                revoked.append(cert.serial)
    audit.record(session, actor=actor.email, action="token.state", object_type="usb_token",
                 object_id=serial, details={"to": str(to), "note": note or "", "revoked": revoked})
    return token

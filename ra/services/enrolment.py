"""The back-office side of token enrolment at a delivery session (the station's counterpart).

The station (on the operator's workstation, with the holder's token) registers the token,
submits a CSR made by the token, writes the certificate back and confirms the delivery. The
server issues only for an order whose identity was verified today, at a session of today, by
this very operator.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ca.crl import Reason
from ca.profiles import HolderSubject, parse_csr
from ra import audit
from ra.authority import CertificationAuthority
from ra.config import ISSUING_SLUG, ROOT_SLUG
from ra.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from ra.fieldcrypt import FieldCipher
from ra.labels import STATE_LABELS, label
from ra.models import (
    Certificate, DeliverySession, IdentityCheck, Order, OrderState, StaffAccount, TokenChoice,
    TokenState, UsbToken,
)
from ra.permissions import Action, require, require_entity, visible_entity_ids
from ra.services.accounts import HASHER
from ra.services.issuance import IssueCommand, issue_certificate
from ra.services.orders import ORDER_ROWS, OrderAction, advance, check_action, order_for, reused_token
from ra.services.revocation import revoke_certificate
from ra.services.tokens import record_token_event, token_certificates

SO_PIN_PURPOSE = "token-so-pin"
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L


def new_revocation_code() -> str:
    """16 characters from 31 (about 79 bits), shown in 4 groups: XXXX-XXXX-XXXX-XXXX."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def normalise_code(code: str) -> str:
    return code.strip().upper().replace(" ", "").replace("-", "")


def hash_revocation_code(code: str) -> str:
    return HASHER.hash(normalise_code(code))


def enrolment_order(session: Session, actor: StaffAccount, order_id: int, today: date) -> Order:
    """The order, if this operator may enrol its token now; typed errors otherwise."""
    order = order_for(session, actor, order_id, Action.DELIVER)
    delivery = session.get(DeliverySession, order.delivery_session_id) if order.delivery_session_id else None
    if delivery is None or delivery.session_date != today:
        raise IllegalTransition("Cette commande n'est pas dans une session de remise d'aujourd'hui.")
    if delivery.operator_id != actor.id:
        raise Forbidden("Seul l'opérateur de la session peut enrôler le support.")
    check = session.scalar(select(IdentityCheck).where(IdentityCheck.order_id == order.id)
                           .order_by(IdentityCheck.id.desc()).limit(1))
    if check is None or check.operator_id != actor.id or check.session_id != delivery.id:
        raise IllegalTransition("Le face-à-face n'a pas été enregistré par vous lors de cette session.")
    return order


@dataclass(frozen=True)
class WorkItem:
    order_id: int
    reference: str
    state: str
    holder: str
    entity: str
    profile: str
    token_choice: str
    token_serial: str | None
    session_id: int
    site_address: str


def today_worklist(session: Session, actor: StaffAccount, today: date) -> list[WorkItem]:
    """Holders of the operator's sessions of today whose identity check is recorded."""
    require(actor, Action.DELIVER)
    rows = session.execute(
        select(Order, DeliverySession)
        .join(DeliverySession, Order.delivery_session_id == DeliverySession.id)
        .where(DeliverySession.session_date == today, DeliverySession.operator_id == actor.id)
        .where(Order.entity_id.in_(visible_entity_ids(actor)))
        .where(Order.state.in_([OrderState.IDENTITY_VERIFIED, OrderState.ISSUED, OrderState.DELIVERED]))
        .options(*ORDER_ROWS).order_by(Order.reference)
    ).all()
    token_ids = {order.token_id or order.reused_token_id for order, _ in rows} - {None}
    by_id = ({t.id: t for t in session.scalars(select(UsbToken).where(UsbToken.id.in_(token_ids)))}
             if token_ids else {})
    items = []
    for order, delivery in rows:
        token = by_id.get(order.token_id or order.reused_token_id)
        items.append(WorkItem(order.id, order.reference, str(order.state), order.holder.display_name,
                              order.entity.name, order.profile, str(order.token_choice),
                              token.serial if token else None, delivery.id, delivery.site_address))
    return items


def register_token(
    session: Session, actor: StaffAccount, order_id: int, *, serial: str, model: str,
    so_pin: str | None, cipher: FieldCipher, today: date,
) -> UsbToken:
    """Record the token about to be enrolled; a new token's SO PIN is escrowed, encrypted."""
    order = enrolment_order(session, actor, order_id, today)
    if order.state != OrderState.IDENTITY_VERIFIED:
        raise IllegalTransition(f"La commande {order.reference} est à l'état « {label(STATE_LABELS, order.state)} » : "
                                "le support ne peut plus changer.")
    serial = serial.strip()
    if not 0 < len(serial) <= 64:
        raise InvalidInput("Numéro de série du support invalide.")
    token = session.scalar(select(UsbToken).where(UsbToken.serial == serial))
    if order.token_choice == TokenChoice.REUSE:
        reused = reused_token(session, order)
        if reused is None or reused.serial != serial:
            raise InvalidInput("Le support présenté n'est pas celui prévu par la commande (réutilisation).")
        if reused.state in (TokenState.LOST, TokenState.RETIRED):
            raise IllegalTransition("Ce support est déclaré perdu ou retiré : il ne peut pas être réutilisé.")
        token = reused
        _supersede_previous(session, actor, token, order)
    else:
        if token is not None and token.state == TokenState.LOST:
            raise IllegalTransition("Ce support est déclaré perdu : il ne peut plus servir.")
        resumed = token is not None and token.id == order.token_id  # an interrupted enrolment, again
        if token is not None and not resumed and token.state not in (TokenState.BLANK, TokenState.RETIRED):
            raise InvalidInput("Ce support est déjà en service : choisissez « réutilisation » ou un support vierge.")
        if not so_pin:
            raise InvalidInput("Le code PIN administrateur (SO) du nouveau support doit être séquestré.")
        if token is None:
            token = UsbToken(serial=serial, model=model[:100] or "inconnu", state=TokenState.BLANK)
            session.add(token)
            session.flush()
        token.so_pin_escrow = cipher.encrypt(so_pin, purpose=SO_PIN_PURPOSE)
        token.model = model[:100] or token.model
    token.holder_id, token.entity_id = order.holder_id, order.entity_id
    record_token_event(session, token, TokenState.INITIALISED, actor=actor.email,
                       note=f"enrôlement de la commande {order.reference}", force=True)
    order.token_id = token.id
    audit.record(session, actor=actor.email, action="token.register", object_type="order",
                 object_id=order.reference, details={"token_serial": serial, "choice": str(order.token_choice)})
    return token


def _supersede_previous(session: Session, actor: StaffAccount, token: UsbToken, order: Order) -> None:
    """The station wipes a reused token: the keys of its earlier certificates are destroyed."""
    for cert in token_certificates(session, token):
        if cert.revoked_at is None and cert.order_id != order.id:
            revoke_certificate(session, cert, reason=Reason.superseded, actor=actor.email)


def escrowed_so_pin(session: Session, actor: StaffAccount, serial: str, cipher: FieldCipher) -> str:
    """The SO PIN of a token in the actor's scope (to wipe a reused token or unblock a PIN)."""
    token = session.scalar(select(UsbToken).where(UsbToken.serial == serial))
    if token is None or token.entity_id is None:
        raise NotFound("Support introuvable.")
    require_entity(session, actor, token.entity_id, Action.DELIVER)
    if token.so_pin_escrow is None:
        raise NotFound("Aucun code PIN administrateur n'est séquestré pour ce support.")
    audit.record(session, actor=actor.email, action="token.so_pin_read", object_type="usb_token",
                 object_id=serial)
    return cipher.decrypt(token.so_pin_escrow, purpose=SO_PIN_PURPOSE)


def submit_csr(
    factory: sessionmaker[Session], ca: CertificationAuthority, actor_id: int, order_id: int,
    csr: bytes, *, today: date,
) -> Certificate:
    """Issue the order's certificate; the same CSR submitted again returns the same certificate."""
    request = parse_csr(csr)
    spki = request.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    with factory() as session:
        actor = session.get(StaffAccount, actor_id)
        assert actor is not None
        order = enrolment_order(session, actor, order_id, today)
        if order.certificate_id is not None:
            existing = session.get(Certificate, order.certificate_id)
            if existing is not None and existing.public_key_der == spki:
                return existing  # a retry after a lost answer: the same certificate, never two
            raise IllegalTransition("Un certificat a déjà été émis pour cette commande avec une autre clé.")
        check_action(order, OrderAction.ISSUE)
        if order.token_id is None:
            raise IllegalTransition("Enregistrez d'abord le support de la commande.")
        holder, entity = order.holder, order.entity
        subject = HolderSubject(
            organization=entity.name, siren=entity.siren, siret=entity.siret,
            given_names=holder.given_names, surname=holder.surname, email=holder.email, title=holder.title,
        )
        command = IssueCommand(subject=subject, csr=csr, profile=order.profile, actor=actor.email,
                               order_id=order.id)
    try:
        return issue_certificate(factory, ca, command)
    except IllegalTransition:
        # A concurrent submission of the same CSR won the order's lock and has finished: same answer.
        with factory() as session:
            order = session.get(Order, order_id)
            existing = session.get(Certificate, order.certificate_id) if order and order.certificate_id else None
        if existing is not None and existing.public_key_der == spki:
            return existing
        raise


def chain_pems(session: Session, ca: CertificationAuthority) -> list[str]:
    return [ca.authority(session, slug).certificate.public_bytes(serialization.Encoding.PEM).decode()
            for slug in (ISSUING_SLUG, ROOT_SLUG)]


@dataclass(frozen=True)
class Delivery:
    order: Order
    certificate: Certificate
    token: UsbToken
    revocation_code: str  # shown once to the holder; only its argon2 hash is stored


def _delivered_pair(session: Session, order: Order, token_serial: str) -> tuple[Certificate, UsbToken]:
    """The order's certificate and the token it was issued on, which must be the one presented."""
    if order.certificate_id is None:  # issued orders always have one (issuance sets both at once)
        raise IllegalTransition(f"La commande {order.reference} n'a pas de certificat : remise impossible.")
    token = session.get(UsbToken, order.token_id) if order.token_id else None
    if token is None or token.serial != token_serial:
        raise InvalidInput("Le support présenté n'est pas celui sur lequel le certificat a été émis.")
    return session.get_one(Certificate, order.certificate_id), token


def confirm_delivery(session: Session, actor: StaffAccount, order_id: int, *, token_serial: str,
                     today: date) -> Delivery:
    """The certificate is on the token: the order is delivered, the token active, a code drawn."""
    order = enrolment_order(session, actor, order_id, today)
    check_action(order, OrderAction.DELIVER)
    cert, token = _delivered_pair(session, order, token_serial)
    code = new_revocation_code()
    cert.revocation_code_hash = hash_revocation_code(code)
    advance(order, OrderAction.DELIVER)
    record_token_event(session, token, TokenState.ACTIVE, actor=actor.email,
                       note=f"certificat {cert.serial} remis")
    audit.record(session, actor=actor.email, action="order.deliver", object_type="order",
                 object_id=order.reference, details={"certificate": cert.serial, "token_serial": token.serial})
    return Delivery(order, cert, token, code)


def redraw_revocation_code(session: Session, actor: StaffAccount, order_id: int, *, token_serial: str,
                           today: date) -> Delivery:
    """A new revocation code for an order this operator delivered today, the token still at hand.

    The answer to the delivery (which carries the code) can be lost on the way back to the
    station; the code was then seen by nobody. The station asks for another one: the first one
    stops working, the holder receives this one with the procès-verbal.
    """
    order = enrolment_order(session, actor, order_id, today)
    if order.state != OrderState.DELIVERED:
        raise IllegalTransition(f"La commande {order.reference} est à l'état « {label(STATE_LABELS, order.state)} » : "
                                "son code de révocation se donne à la remise.")
    cert, token = _delivered_pair(session, order, token_serial)
    if cert.revoked_at is not None:
        raise IllegalTransition(f"Le certificat {cert.serial} est révoqué : pas de nouveau code.")
    code = new_revocation_code()
    cert.revocation_code_hash = hash_revocation_code(code)
    audit.record(session, actor=actor.email, action="order.revocation_code_redraw", object_type="order",
                 object_id=order.reference, details={"certificate": cert.serial, "token_serial": token.serial})
    return Delivery(order, cert, token, code)

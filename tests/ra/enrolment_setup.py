"""Real rows for enrolment tests: an order whose holder was checked today by the session's operator.

Everything is built directly in the database (entity with an approved convention, a qualified
MC, the holder, the order in ``identity_verified``, today's delivery session and the identity
check with its document number encrypted), then driven through the real services.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography import x509
from sqlalchemy.orm import Session

from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import (
    Certificate, DeliverySession, Entity, Holder, IdDocumentType, IdentityCheck, Order, OrderState, Role,
    StaffAccount, TokenChoice, TokenState, UsbToken,
)
from ra.services import enrolment
from tests.ra.web import Person, make_account, make_entity

ID_PURPOSE = "id-document-number"
PROFILE = "rgs2-entite-double"
_counter = itertools.count(1)


def csr_pem(key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """A bare PKCS#10 proof of possession (the RA sets the subject and every extension)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM)


def new_serial() -> str:
    return secrets.token_hex(8)


def make_holder(session: Session) -> Holder:
    n = next(_counter)
    holder = Holder(surname="Le Goff", given_names="Annaïg", email=f"annaig.legoff{n}@example.fr")
    session.add(holder)
    session.flush()
    return holder


def make_session(session: Session, operator: StaffAccount, *, day: date | None = None) -> DeliverySession:
    delivery = DeliverySession(session_date=day or date.today(), site_address="1 place de la Mairie, 22000 Saint-Brieuc",
                               on_site=True, operator_id=operator.id)
    session.add(delivery)
    session.flush()
    return delivery


def make_order(
    session: Session, entity: Entity, holder: Holder, creator: StaffAccount, *,
    state: OrderState = OrderState.IDENTITY_VERIFIED, delivery: DeliverySession | None = None,
    reused: UsbToken | None = None,
) -> Order:
    order = Order(
        reference=f"T-{secrets.token_hex(6).upper()}", entity_id=entity.id, holder_id=holder.id,
        profile=PROFILE, token_choice=TokenChoice.REUSE if reused else TokenChoice.NEW,
        reused_token_id=reused.id if reused else None, state=state, ordered_on=date.today() - timedelta(days=10),
        created_by_id=creator.id, delivery_session_id=delivery.id if delivery else None,
    )
    session.add(order)
    session.flush()
    return order


def record_check(session: Session, cipher: FieldCipher, order: Order, delivery: DeliverySession,
                 operator: StaffAccount) -> IdentityCheck:
    check = IdentityCheck(
        order_id=order.id, session_id=delivery.id, operator_id=operator.id, document_type=IdDocumentType.CNI,
        document_number=cipher.encrypt(f"X{secrets.randbelow(10**11):011d}", purpose=ID_PURPOSE),
        document_expiry=date.today() + timedelta(days=900), issuing_country="FRA", names_match=True,
    )
    session.add(check)
    session.flush()
    return check


@dataclass
class Ready:
    """An order ready for enrolment: identity verified today by the session's operator."""

    entity: Entity
    operator: Person
    holder: Holder
    order: Order
    delivery: DeliverySession
    check: IdentityCheck


def ready_order(
    session: Session, cipher: FieldCipher, *, entity: Entity | None = None, operator: Person | None = None,
    reused: UsbToken | None = None, holder: Holder | None = None,
) -> Ready:
    entity = entity or make_entity(session)
    operator = operator or make_account(session, cipher, Role.MC, entity=entity)
    holder = holder or make_holder(session)
    delivery = make_session(session, operator.account)
    order = make_order(session, entity, holder, operator.account, delivery=delivery, reused=reused)
    check = record_check(session, cipher, order, delivery, operator.account)
    return Ready(entity, operator, holder, order, delivery, check)


@dataclass
class Delivered:
    token: UsbToken
    certificate: Certificate
    revocation_code: str
    key: ec.EllipticCurvePrivateKey


def deliver(pki: Instance, cipher: FieldCipher, ready: Ready, *, serial: str | None = None) -> Delivered:
    """Register a new token, issue from a software key's CSR, confirm: the whole server side."""
    serial = serial or new_serial()
    today = ready.delivery.session_date
    with pki.factory() as session:
        actor = session.get(StaffAccount, ready.operator.account.id)
        assert actor is not None
        enrolment.register_token(session, actor, ready.order.id, serial=serial, model="SoftHSM v2",
                                 so_pin=secrets.token_hex(8), cipher=cipher, today=today)
        session.commit()
    key = ec.generate_private_key(ec.SECP256R1())
    enrolment.submit_csr(pki.factory, pki.ca, ready.operator.account.id, ready.order.id, csr_pem(key), today=today)
    with pki.factory() as session:
        actor = session.get(StaffAccount, ready.operator.account.id)
        assert actor is not None
        done = enrolment.confirm_delivery(session, actor, ready.order.id, token_serial=serial, today=today)
        session.commit()
    assert done.token.state == TokenState.ACTIVE
    return Delivered(done.token, done.certificate, done.revocation_code, key)

"""Real certificates for the certificate, revocation and public-page tests.

A certificate is issued through the real issuance cycle (SoftHSM CA key, lint), then tied to
an entity the way delivery ties it: a holder, an order in ``delivered`` pointing at it, and
``Certificate.order_id`` pointing back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from cryptography import x509
from flask import Flask
from sqlalchemy.orm import Session

from ra.db import utcnow
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import Certificate, Entity, EntityKind, Holder, Order, OrderState, Role, StaffAccount, TokenChoice
from ra.services.issuance import IssueCommand, issue_certificate
from tests.ra.helpers import csr_for, holder
from tests.ra.web import Browser, Person, make_account, make_entity

PROFILE = "rgs2-entite-double"


def issue(pki: Instance) -> Certificate:
    """A freshly issued holder certificate with no order (like the CA's own tooling issues)."""
    command = IssueCommand(subject=holder(), csr=csr_for(), profile=PROFILE, actor="test")
    return issue_certificate(pki.factory, pki.ca, command)


def attach(session: Session, cert: Certificate, entity: Entity, creator: StaffAccount) -> Order:
    """Give the certificate a delivered order of ``entity`` (and return the order)."""
    person = Holder(surname="Dubois", given_names="Marie", email=f"marie.dubois.{secrets.token_hex(3)}@example.fr")
    session.add(person)
    session.flush()
    order = Order(reference=f"C-{secrets.token_hex(6).upper()}", entity_id=entity.id, holder_id=person.id,
                  profile=PROFILE, token_choice=TokenChoice.NEW, state=OrderState.DELIVERED,
                  ordered_on=date.today() - timedelta(days=20), created_by_id=creator.id,
                  certificate_id=cert.id)
    session.add(order)
    session.flush()
    row = session.get(Certificate, cert.id)
    assert row is not None
    row.order_id = order.id
    session.flush()
    return order


def issued_for(pki: Instance, session: Session, entity: Entity, creator: StaffAccount) -> Certificate:
    """An issued certificate of ``entity``, committed, re-read in ``session``."""
    cert = issue(pki)
    attach(session, cert, entity, creator)
    session.commit()  # on SQLite an open transaction would hold the write lock
    return reread(pki, cert)


def reread(pki: Instance, cert: Certificate) -> Certificate:
    """The certificate's row as the database holds it now (read in a session of its own)."""
    with pki.factory() as session:
        row = session.get(Certificate, cert.id)
        assert row is not None
        return row


def parsed(cert: Certificate) -> x509.Certificate:
    assert cert.der is not None
    return x509.load_der_x509_certificate(cert.der)


@dataclass
class Cast:
    """Everyone of the permission matrix around one entity (``home``, a commune of an EPCI) and
    one outside (``elsewhere``)."""

    home: Entity
    elsewhere: Entity
    mc: Person
    mc_out: Person
    aed: Person
    aed_out: Person
    operator: Person
    auditor: Person

    def people(self) -> dict[str, Person]:
        return {"mc": self.mc, "mc_out": self.mc_out, "aed": self.aed, "aed_out": self.aed_out,
                "operator": self.operator, "auditor": self.auditor}


def make_cast(session: Session, cipher: FieldCipher) -> Cast:
    epci = make_entity(session, kind=EntityKind.EPCI)
    home = make_entity(session, parent=epci)
    elsewhere = make_entity(session)
    other_epci = make_entity(session, kind=EntityKind.EPCI)
    cast = Cast(
        home=home, elsewhere=elsewhere,
        mc=make_account(session, cipher, Role.MC, entity=home),
        mc_out=make_account(session, cipher, Role.MC, entity=elsewhere),
        aed=make_account(session, cipher, Role.AED, epci=epci),
        aed_out=make_account(session, cipher, Role.AED, epci=other_epci),
        operator=make_account(session, cipher, Role.OPERATOR),
        auditor=make_account(session, cipher, Role.AUDITOR),
    )
    session.commit()
    return cast


def logged_in(app: Flask, person: Person) -> Browser:
    browser = Browser(app)
    # Use the current TOTP step, not the previous one: a step boundary crossed during the
    # password check (argon2) would otherwise make the previous step's code too old.
    browser._steps[person.email] = max(browser._steps.get(person.email, -1), int(utcnow().timestamp() // 30) - 1)
    response = browser.login(person)
    assert response.status_code == 302, (response.status_code, response.get_data(as_text=True)[-1500:])
    return browser

"""A delivery session of today, built directly in the database, and a station to serve it.

Rows: an entity with an approved convention, its qualified MC (the session's operator) with an
API token, today's delivery session, holders with orders in ``identity_verified`` and the
face-to-face check recorded by that MC (document number encrypted). Holder names are unique so
that token labels never collide in the test process's SoftHSM.
"""

from __future__ import annotations

import random
import secrets
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.token import Token
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import (
    Certificate, DeliverySession, Entity, Holder, IdDocumentType, IdentityCheck, Order, OrderState, Role,
    TokenChoice, UsbToken,
)
from ra.services.accounts import create_api_token
from ra.station.client import StationClient
from ra.station.enrolment import Progress, Station
from ra.station.pin import PinPolicy
from tests.conftest import PKCS11_MODULE
from tests.ra.web import make_account, make_entity

ID_PURPOSE = "id-document-number"
PROFILE = "rgs2-entite-double"
HOLDER_PIN = "Kw7-pin9"
NEW_PIN = "Zu4#pin2"


def ascii_email(given: str, surname: str) -> str:
    local = unicodedata.normalize("NFKD", f"{given}.{surname}".lower()).encode("ascii", "ignore").decode()
    return local.replace(" ", "").replace("'", "") + "@mairie.example.fr"


def unique_surname(stem: str) -> str:
    return f"{stem}-{''.join(random.choices(string.ascii_uppercase, k=5))}"


@dataclass(frozen=True)
class Desk:
    """An operator's delivery session of today (plain values: no ORM object outlives the setup)."""

    entity_id: int
    operator_id: int
    operator_email: str
    api_token: str
    delivery_id: int


@dataclass(frozen=True)
class Booked:
    """One holder's order at the session."""

    id: int
    reference: str
    holder_id: int
    holder: str  # display name, as on the certificate and the token label


def open_desk(session: Session, cipher: FieldCipher, *, entity: Entity | None = None) -> Desk:
    """Commits: the back-office (another connection) must see the rows."""
    entity = entity or make_entity(session)
    operator = make_account(session, cipher, Role.MC, entity=entity)
    _, clear = create_api_token(session, operator.account, "poste de remise", actor="test")
    delivery = DeliverySession(session_date=date.today(), site_address="Mairie, 1 place du Martray, 22000 Saint-Brieuc",
                               on_site=True, operator_id=operator.account.id)
    session.add(delivery)
    session.flush()
    desk = Desk(entity.id, operator.account.id, operator.email, clear, delivery.id)
    session.commit()
    return desk


def add_order(session: Session, cipher: FieldCipher, desk: Desk, *, given: str = "Marie", surname: str = "Dubois",
              reused_serial: str | None = None, holder_id: int | None = None, checked: bool = True) -> Booked:
    """An order of this session (committed); ``checked=False`` is a holder who did not come."""
    if holder_id is None:
        surname = unique_surname(surname)
        holder = Holder(surname=surname, given_names=given, email=ascii_email(given, surname))
        session.add(holder)
        session.flush()
    else:
        holder = session.get(Holder, holder_id)
        assert holder is not None
    reused = session.scalar(select(UsbToken).where(UsbToken.serial == reused_serial)) if reused_serial else None
    order = Order(
        reference=f"S-{secrets.token_hex(5).upper()}", entity_id=desk.entity_id, holder_id=holder.id,
        profile=PROFILE, token_choice=TokenChoice.REUSE if reused else TokenChoice.NEW,
        reused_token_id=reused.id if reused else None,
        state=OrderState.IDENTITY_VERIFIED if checked else OrderState.SCHEDULED,
        ordered_on=date.today() - timedelta(days=12), created_by_id=desk.operator_id,
        delivery_session_id=desk.delivery_id, absent=not checked,
    )
    session.add(order)
    session.flush()
    if checked:
        session.add(IdentityCheck(
            order_id=order.id, session_id=desk.delivery_id, operator_id=desk.operator_id,
            document_type=IdDocumentType.CNI,
            document_number=cipher.encrypt(f"{secrets.randbelow(10**12):012d}", purpose=ID_PURPOSE),
            document_expiry=date.today() + timedelta(days=1500), issuing_country="FRA", names_match=True,
        ))
    booked = Booked(order.id, order.reference, holder.id, holder.display_name)
    session.commit()
    return booked


@dataclass
class Notes:
    """A reporter that keeps what the station says."""

    lines: list[str] = field(default_factory=list)

    def step(self, number: int, text: str) -> None:
        self.lines.append(f"{number}. {text}")

    def note(self, text: str) -> None:
        self.lines.append(text)


def station(url: str, api_token: str, *, pin: str = HOLDER_PIN,
            checkpoint: Callable[[str, Progress], None] | None = None, attempts: int = 3) -> Station:
    """A station whose holder types ``pin`` at every prompt."""
    return Station(client=StationClient(url, api_token, timeout=60, attempts=attempts, retry_delay=0.2),
                   module=PKCS11_MODULE, reporter=Notes(), ask_new_pin=lambda: pin, ask_current_pin=lambda: pin,
                   pin_policy=PinPolicy(), checkpoint=checkpoint)


def run_cli(*args: str, input: str | None = None) -> Result:
    """``guichet station …`` in this process (the token lives in this process's SoftHSM)."""
    from ra.cli import main

    return CliRunner().invoke(main, ["station", *args], input=input, catch_exceptions=False)


def cli_server_args(url: str, api_token: str) -> list[str]:
    return ["--url", url, "--api-token", api_token, "--module", PKCS11_MODULE]


def certificates_of(pki: Instance, order_id: int) -> list[Certificate]:
    with pki.factory() as session:
        return list(session.scalars(select(Certificate).where(Certificate.order_id == order_id)))


def order_row(pki: Instance, order_id: int) -> Order:
    with pki.factory() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order


def token_objects(serial: str, pin: str) -> list[tuple[str, str]]:
    """(class, id) of every object on the token, private ones included."""
    with Token.open(PKCS11_MODULE, serial=serial).session(user_pin=pin) as session:
        return sorted((o.object_class, o.id_hex) for o in session.objects())


def receipt_dir(tmp: Path) -> Path:
    return tmp / "pv"

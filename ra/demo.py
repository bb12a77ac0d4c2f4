"""``guichet demo``: a first-time user's instance, built through the real services.

An EPCI with three member communes and a CCAS, an MC, an AED, a CA operator and an auditor,
orders in every state, today's delivery session, and certificates delivered by the station
onto SoftHSM tokens of the instance. Passwords are drawn at random and printed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.profiles import luhn_valid
from ra.db import transaction
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import DocumentKind, Entity, EntityKind, Order, Role, StaffAccount
from ra.services import accounts, dossier, entities, identity, orders, sessions, staff
from ra.services.identity import IdentityEvidence

ACTOR = "demo"


@dataclass
class Login:
    role: str
    email: str
    password: str
    name: str


@dataclass
class DemoReport:
    logins: list[Login] = field(default_factory=list)
    orders: dict[str, str] = field(default_factory=dict)  # reference → state
    deliveries: list[dict[str, str]] = field(default_factory=list)  # station results


def demo_pdf(title: str, body: str) -> bytes:
    """A small real PDF standing for a paper of the demo dossier."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(0, 12, "DOCUMENT DE DEMONSTRATION", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, f"{title}\n\n{body}")
    return bytes(pdf.output())


def _luhn(prefix: str) -> str:
    """``prefix`` completed with its Luhn check digit (a valid SIREN for the demo)."""
    return next(prefix + d for d in "0123456789" if luhn_valid(prefix + d))


ENTITIES = [  # (key, official name, kind, SIREN prefix, parent key)
    ("epci", "COMMUNAUTE DE COMMUNES DES TROIS RIVIERES", EntityKind.EPCI, "21223001", None),
    ("kerhoas", "COMMUNE DE KERHOAS", EntityKind.COMMUNE, "21220501", "epci"),
    ("plouvern", "COMMUNE DE PLOUVERN", EntityKind.COMMUNE, "21220502", "epci"),
    ("lanmerin", "COMMUNE DE LANMERIN", EntityKind.COMMUNE, "21220503", "epci"),
    ("ccas", "CCAS DE KERHOAS", EntityKind.CCAS, "26220501", "kerhoas"),
]


DEMO_MARK = _luhn("21223001")  # SIREN of the demo EPCI: its presence means the demo is loaded


def is_loaded(session: Session) -> bool:
    return session.scalar(select(Entity.id).where(Entity.siren == DEMO_MARK)) is not None


def load_demo(instance: Instance, *, today: date | None = None, deliver: bool = True) -> DemoReport | None:
    """Fill an initialised instance once; None if the demo is already there."""
    today = today or date.today()
    report = DemoReport()
    with transaction(instance.factory) as session:  # all or nothing
        if is_loaded(session):
            return None
        people, places = _people_and_places(instance, session, report, today)
        _orders(instance, session, people, places, report, today)
        aed_id = people["aed"].id
    if deliver:
        from ra.demo_station import deliver_today

        report.deliveries = deliver_today(instance, aed_id, today=today)
    with instance.factory() as session:
        for order in session.scalars(select(Order).order_by(Order.id)):
            report.orders[order.reference] = str(order.state)
    return report


def _people_and_places(instance: Instance, session: Session, report: DemoReport,
                       today: date) -> tuple[dict[str, StaffAccount], dict[str, Entity]]:
    logins: list[Login] = []

    def account(role: Role, email: str, name: str, **kwargs: object) -> StaffAccount:
        password = staff.temporary_password()
        acc = accounts.create_account(session, accounts.NewAccount(
            email=email, full_name=name, role=role, password=password, **kwargs), actor=ACTOR)  # type: ignore[arg-type]
        logins.append(Login(str(role), email, password, name))
        return acc

    operator = account(Role.OPERATOR, "operateur@ac.example.fr", "Claire Operatrice")
    auditor = account(Role.AUDITOR, "auditeur@ac.example.fr", "Paul Auditeur")
    places: dict[str, Entity] = {}
    for key, name, kind, prefix, parent in ENTITIES:
        places[key] = entities.create_entity(session, operator, entities.EntityInput(
            name=name, kind=str(kind), siren=_luhn(prefix), siret=None, departement="22",
            parent_id=places[parent].id if parent else None, status="active"))
    for key in ("epci", "kerhoas", "plouvern", "ccas", "lanmerin"):
        entities.submit_convention(
            session, operator, places[key].id, vault=instance.vault, territory=instance.settings.territory,
            data=demo_pdf("Convention d'adhesion", places[key].name), filename="convention.pdf",
            signed_on=today - timedelta(days=40), today=today)
        if key != "lanmerin":  # left pending: the operator's home shows it
            entities.approve_convention(session, operator, places[key].id)
    trained = today - timedelta(days=90)
    mc = account(Role.MC, "mandataire@kerhoas.example.fr", "Jean Mandataire",
                 entity_id=places["kerhoas"].id, training_date=trained)
    aed = account(Role.AED, "aed@trois-rivieres.example.fr", "Sophie Delegue",
                  scope_epci_id=places["epci"].id, training_date=trained)
    newcomer = account(Role.MC, "mandataire@plouvern.example.fr", "Louis Nouveau",
                       entity_id=places["plouvern"].id, training_date=trained)
    for officer in (mc, aed, newcomer):
        staff.upload_designation(session, operator, officer, demo_pdf("Designation", officer.full_name),
                                 "designation.pdf", instance.vault)
        if officer is not newcomer:  # left pending: the operator's home shows it
            staff.decide_designation(session, operator, officer.id, approve=True)
    report.logins = logins
    return {"operator": operator, "auditor": auditor, "mc": mc, "aed": aed}, places


HOLDERS = [  # (key, entity key, surname, given names, email, title, target state)
    ("dubois", "kerhoas", "Dubois", "Marie", "marie.dubois@kerhoas.example.fr", "Maire", "delivered"),
    ("legall", "plouvern", "Le Gall", "Yann", "yann.legall@plouvern.example.fr", None, "delivered"),
    ("morvan", "ccas", "Morvan", "Anne", "anne.morvan@kerhoas.example.fr", "Directrice", "scheduled"),
    ("riou", "kerhoas", "Riou", "Pierre", "pierre.riou@kerhoas.example.fr", "Adjoint", "dossier_complete"),
    ("tanguy", "plouvern", "Tanguy", "Nolwenn", "nolwenn.tanguy@plouvern.example.fr", None, "draft"),
    ("guillou", "epci", "Guillou", "Erwan", "erwan.guillou@trois-rivieres.example.fr", None, "approved"),
    ("henry", "kerhoas", "Henry", "Lucie", "lucie.henry@kerhoas.example.fr", None, "cancelled"),
]


def _orders(instance: Instance, session: Session, people: dict[str, StaffAccount],
            places: dict[str, Entity], report: DemoReport, today: date) -> None:
    operator, aed = people["operator"], people["aed"]
    delivery = sessions.create_session(session, aed, session_date=today,
                                       site_address="1 place de la Mairie, 22000 Kerhoas", on_site=True,
                                       today=today)
    to_schedule, to_check = [], []
    for key, place, surname, given, email, title, target in HOLDERS:
        author = people["mc"] if place == "kerhoas" else aed
        order = orders.create_order(session, author, orders.NewOrder(
            entity_id=places[place].id, surname=surname, given_names=given, email=email,
            profile="rgs2-entite-double", token_choice="new", title=title), today=today)
        if target == "cancelled":
            orders.cancel_order(session, author, order.id, "Le porteur a quitté la collectivité.")
            continue
        kinds = list(DocumentKind) if target != "draft" else [DocumentKind.HOLDER_ID, DocumentKind.REQUEST]
        for kind in kinds:
            dossier.upload_document(
                session, author, order.id, vault=instance.vault, kind=str(kind),
                data=demo_pdf(str(kind), f"{given} {surname.upper()} - {places[place].name}"),
                filename=f"{kind}.pdf", today=today,
                document_date=today - timedelta(days=12) if kind in (DocumentKind.REQUEST,) else None)
        if target in ("draft", "dossier_complete"):
            continue
        for row in order.documents:
            dossier.review_document(session, operator, order.id, row.id, accept=True)
        orders.approve_order(session, operator, order.id)
        if target in ("scheduled", "delivered"):
            to_schedule.append(order.id)
        if target == "delivered":
            to_check.append(order.id)
    sessions.add_orders(session, aed, delivery.id, to_schedule, today=today)
    for number, order_id in enumerate(to_check, 1):
        identity.record_identity_check(session, aed, delivery.id, order_id, IdentityEvidence(
            document_type="cni", document_number=f"DEMO{number:08d}",
            document_expiry=today + timedelta(days=900), issuing_country="FRA",
            names_match=True, in_person=True), cipher=FieldCipher(instance.settings.secret_key), today=today)

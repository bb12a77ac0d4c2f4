"""Real objects for the order, dossier and entity tests: a scene of entities and staff in and out
of scope, real PDF/PNG/JPEG files, orders placed and dossiers filled through the services."""

from __future__ import annotations

import io
import itertools
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from fpdf import FPDF
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ra.documents.vault import FILE_SUFFIX, DocumentVault
from ra.models import (
    AuditEvent, DesignationStatus, Document, DocumentKind, DossierDocument, Entity, EntityKind, Order, Role,
    StaffAccount,
)
from ra.services.dossier import review_document, upload_document
from ra.services.orders import NewOrder, create_order
from tests.ra.web import make_entity

ORDER_DAY = date(2026, 5, 15)  # orders of these tests are placed on this day unless told otherwise
_counter = itertools.count(1)
_rng = random.Random()

# The roles of the permission matrix: who acts, relative to the scene's commune.
ROLES = ("mc_in", "mc_out", "aed_in", "aed_out", "operator", "auditor", "mc_unqualified")


def pdf_bytes(text: str = "Piece justificative") -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((48, 32), 40).convert("RGB").save(out, "PNG")
    return out.getvalue()


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((64, 48), 60).convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def quick_account(session: Session, role: Role, *, entity: Entity | None = None, epci: Entity | None = None,
                  qualified: bool = True) -> StaffAccount:
    """A staff account for service tests (no password hashing: these accounts never log in)."""
    n = next(_counter)
    account = StaffAccount(
        email=f"svc-{role}{n}-{_rng.randrange(10**8)}@example.fr", full_name=f"Agent {role} {n}", role=role,
        password_hash="not-a-login", entity_id=entity.id if entity else None,
        scope_epci_id=epci.id if epci else None,
        training_date=date.today() - timedelta(days=60) if qualified else None,
        designation_status=DesignationStatus.APPROVED if qualified and role in (Role.MC, Role.AED)
        else DesignationStatus.NONE)
    session.add(account)
    session.flush()
    return account


@dataclass
class Scene:
    """An EPCI with a member commune (the target), and another EPCI with its own commune."""

    epci: Entity
    commune: Entity
    other_epci: Entity
    other: Entity
    accounts: dict[str, StaffAccount] = field(default_factory=dict)

    @property
    def operator(self) -> StaffAccount:
        return self.accounts["operator"]


def make_scene(session: Session, *, convention: bool = True, kind: EntityKind = EntityKind.COMMUNE) -> Scene:
    epci = make_entity(session, f"CC TEST {next(_counter)}", kind=EntityKind.EPCI)
    commune = make_entity(session, kind=kind, parent=epci if kind == EntityKind.COMMUNE else None,
                          convention=convention)
    other_epci = make_entity(session, f"CC AUTRE {next(_counter)}", kind=EntityKind.EPCI)
    other = make_entity(session, parent=other_epci)
    scene = Scene(epci, commune, other_epci, other)
    scene.accounts = {
        "mc_in": quick_account(session, Role.MC, entity=commune),
        "mc_out": quick_account(session, Role.MC, entity=other),
        "aed_in": quick_account(session, Role.AED, epci=epci),
        "aed_out": quick_account(session, Role.AED, epci=other_epci),
        "operator": quick_account(session, Role.OPERATOR),
        "auditor": quick_account(session, Role.AUDITOR),
        "mc_unqualified": quick_account(session, Role.MC, entity=commune, qualified=False),
    }
    if kind != EntityKind.COMMUNE:  # the AED's scope is then the entity itself
        scene.accounts["aed_in"].scope_entities = [commune]
        session.flush()
    return scene


def holder_input(entity: Entity, **overrides: object) -> NewOrder:
    n = next(_counter)
    values: dict[str, object] = dict(entity_id=entity.id, surname="Dubois", given_names="Marie",
                                     email=f"marie.dubois.{n}.{_rng.randrange(10**6)}@example.fr",
                                     title="Secrétaire de mairie", profile="rgs2-entite-double",
                                     token_choice="new")
    values.update(overrides)
    return NewOrder(**values)  # type: ignore[arg-type]


def place_order(session: Session, actor: StaffAccount, entity: Entity, *, today: date = ORDER_DAY,
                **overrides: object) -> Order:
    return create_order(session, actor, holder_input(entity, **overrides), today=today)


def valid_date(kind: DocumentKind, entity: Entity, order: Order) -> date | None:
    dated = kind == DocumentKind.REQUEST or (kind == DocumentKind.ENTITY_PROOF
                                             and entity.kind == EntityKind.ENTREPRISE)
    return order.ordered_on - timedelta(days=10) if dated else None


AUTO = date.min  # "a valid date for this kind of piece"


def upload(session: Session, vault: DocumentVault, actor: StaffAccount, order: Order, kind: DocumentKind, *,
           document_date: date | None = AUTO, data: bytes | None = None, filename: str = "piece.pdf",
           today: date = ORDER_DAY) -> DossierDocument:
    if document_date is AUTO:
        document_date = valid_date(kind, order.entity, order)
    content = pdf_bytes() if data is None else data
    return upload_document(session, actor, order.id, vault=vault, kind=str(kind), data=content,
                           filename=filename, document_date=document_date, today=today)


def fill_dossier(session: Session, vault: DocumentVault, actor: StaffAccount, order: Order,
                 today: date = ORDER_DAY) -> list[DossierDocument]:
    return [upload(session, vault, actor, order, kind, today=today) for kind in DocumentKind]


def accept_dossier(session: Session, operator: StaffAccount, order: Order) -> None:
    for row in list(order.documents):
        review_document(session, operator, order.id, row.id, accept=True)


def vault_files(vault: DocumentVault) -> set[str]:
    return {p.name for p in vault.directory.glob(f"*{FILE_SUFFIX}")}


def document_rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Document)) or 0


def dossier_rows(session: Session, order: Order) -> int:
    return session.scalar(select(func.count()).select_from(DossierDocument)
                          .where(DossierDocument.order_id == order.id)) or 0


# --- the permission matrix (DESIGN.md, "Who may do what") ----------------------------------

OK, FORBIDDEN, NOT_FOUND = "ok", "403", "404"
_OFFICER_ACTION = dict(mc_in=OK, mc_out=NOT_FOUND, aed_in=OK, aed_out=NOT_FOUND, operator=OK,
                       auditor=FORBIDDEN, mc_unqualified=FORBIDDEN)
_OPERATOR_ACTION = dict(mc_in=FORBIDDEN, mc_out=NOT_FOUND, aed_in=FORBIDDEN, aed_out=NOT_FOUND, operator=OK,
                        auditor=FORBIDDEN, mc_unqualified=FORBIDDEN)
EXPECTED: dict[str, dict[str, str]] = {
    "create_order": _OFFICER_ACTION,
    "upload": _OFFICER_ACTION,
    "review": _OPERATOR_ACTION,
    "approve": _OPERATOR_ACTION,
    "cancel": _OFFICER_ACTION,
    "read_document": dict(mc_in=OK, mc_out=NOT_FOUND, aed_in=OK, aed_out=NOT_FOUND, operator=OK, auditor=OK,
                          mc_unqualified=OK),
    "submit_convention": _OFFICER_ACTION,
    "approve_convention": _OPERATOR_ACTION,
}
CONVENTION_ACTIONS = ("submit_convention", "approve_convention")


def order_events(session: Session, order: Order) -> list[str]:
    """The audit actions recorded for the order (under its reference), oldest first."""
    return list(session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "order", AuditEvent.object_id == order.reference).order_by(AuditEvent.seq)))

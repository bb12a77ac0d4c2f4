"""Entities (public bodies, companies) and their convention d'adhésion.

CA operators create and edit entities; an MC/AED (for an entity in scope) or an operator
submits the signed convention, a CA operator approves or rejects it. The convention is
signed once, before the first order, and never obliges to buy: it is a precondition of
ordering, nothing more. An approved convention cannot be replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, selectinload

from ca.errors import RequestError
from ca.profiles import LA_POSTE_SIREN, HolderSubject, check_siren, check_siret
from ra import audit
from ra.db import utcnow
from ra.documents.vault import DocumentVault
from ra.errors import IllegalTransition, InvalidInput, NotFound
from ra.labels import ENTITY_KIND_LABELS as KIND_LABELS, STATE_LABELS, label
from ra.models import (
    Convention, ConventionStatus, Document, Entity, EntityKind, EntityStatus, StaffAccount,
)
from ra.permissions import Action, require, require_entity, visible_entities
from ra.services.files import read_document, stored_upload
from ra.services.inputs import FieldErrors, clean_text, fr_date, like_pattern, required_reason

K = EntityKind
# Which kinds an entity of each kind may be attached to (a commune to its EPCI, a CCAS to its
# commune); the kinds absent here stand alone.
PARENT_KINDS: dict[EntityKind, frozenset[EntityKind]] = {
    K.COMMUNE: frozenset({K.EPCI}),
    K.CCAS: frozenset({K.COMMUNE}),
    K.SYNDICAT: frozenset({K.EPCI, K.COMMUNE}),
    K.AUTRE_PUBLIC: frozenset({K.EPCI, K.COMMUNE}),
}
_DEPARTEMENT = re.compile(r"0[1-9]|[1-8][0-9]|9[0-5]|2[AB]|97[1-6]")
# Valid placeholders for the holder part of a subject, to check an entity name on its own.
_SAMPLE_HOLDER = dict(given_names="Marie", surname="Martin", email="marie.martin@example.fr")


@dataclass(frozen=True)
class EntityInput:
    """What an operator types for an entity (raw strings, cleaned by the service)."""

    name: str
    kind: str
    siren: str
    departement: str
    siret: str | None = None
    parent_id: int | None = None
    status: str = EntityStatus.ACTIVE


@dataclass(frozen=True)
class CleanEntity:
    name: str
    kind: EntityKind
    siren: str
    siret: str | None
    departement: str
    parent_id: int | None
    status: EntityStatus


def _digits(value: str | None) -> str:
    return re.sub(r"[\s.]", "", value or "")


def check_entity_input(session: Session, data: EntityInput, *, entity_id: int | None = None) -> CleanEntity:
    """Every field checked at once; ``FieldErrors`` names each wrong one."""
    errors: dict[str, str] = {}
    name = clean_text(data.name)
    try:
        HolderSubject(organization=name, siren=LA_POSTE_SIREN, **_SAMPLE_HOLDER)
    except RequestError:
        errors["name"] = ("Le nom officiel est obligatoire, tient en 64 caractères et ne contient que "
                          "lettres, chiffres, espaces et la ponctuation . , ' ( ) & / -.")
    kind = EntityKind(data.kind) if data.kind in set(EntityKind) else None
    if kind is None:
        errors["kind"] = "Choisissez le type d'entité."
    siren = _digits(data.siren)
    try:
        check_siren(siren)
    except RequestError:
        errors["siren"] = "Le SIREN compte 9 chiffres et respecte sa clé de contrôle."
    else:
        clash = session.scalar(select(Entity.id).where(Entity.siren == siren, Entity.id != (entity_id or -1)))
        if clash is not None:
            errors["siren"] = "Une entité existe déjà avec ce SIREN."
    siret = _digits(data.siret) or None
    if siret is not None:
        try:
            check_siret(siret)
        except RequestError:
            errors["siret"] = "Le SIRET compte 14 chiffres et respecte sa clé de contrôle."
        else:
            if not siret.startswith(siren):
                errors["siret"] = "Le SIRET commence par le SIREN de l'entité."
    departement = clean_text(data.departement).upper()
    if not _DEPARTEMENT.fullmatch(departement):
        errors["departement"] = "Département invalide (par exemple 22, 2A ou 974)."
    status = EntityStatus(data.status) if data.status in set(EntityStatus) else None
    if status is None:
        errors["status"] = "Statut invalide."
    if kind is not None:
        parent_error = _parent_problem(session, kind, data.parent_id, entity_id)
        if parent_error:
            errors["parent_id"] = parent_error
        if entity_id is not None:
            members_error = _members_problem(session, kind, entity_id)
            if members_error:
                errors["kind"] = members_error
    if errors:
        raise FieldErrors(errors)
    assert kind is not None and status is not None
    return CleanEntity(name, kind, siren, siret, departement, data.parent_id, status)


def _parent_problem(session: Session, kind: EntityKind, parent_id: int | None, entity_id: int | None) -> str | None:
    if parent_id is None:
        return None
    allowed = PARENT_KINDS.get(kind, frozenset())
    parent = session.get(Entity, parent_id)
    if parent is None or parent_id == entity_id:
        return "Entité de rattachement introuvable."
    if not allowed:
        return f"Une entité de type « {label(KIND_LABELS, kind)} » n'est rattachée à aucune autre."
    if parent.kind not in allowed:
        kinds = " ou ".join(label(KIND_LABELS, k) for k in sorted(allowed))
        return f"L'entité de rattachement doit être de type {kinds}."
    return None


def _members_problem(session: Session, kind: EntityKind, entity_id: int) -> str | None:
    member_kinds = set(session.scalars(select(Entity.kind).where(Entity.parent_id == entity_id)))
    if any(kind not in PARENT_KINDS.get(EntityKind(k), frozenset()) for k in member_kinds):
        return "Des entités sont rattachées à celle-ci : ce type ne permet pas de les garder."
    return None


def create_entity(session: Session, actor: StaffAccount, data: EntityInput) -> Entity:
    """A CA operator records a new entity."""
    require(actor, Action.MANAGE_ACCOUNTS)
    clean = check_entity_input(session, data)
    entity = Entity(name=clean.name, kind=clean.kind, siren=clean.siren, siret=clean.siret,
                    departement=clean.departement, parent_id=clean.parent_id, status=clean.status)
    session.add(entity)
    session.flush()
    audit.record(session, actor=actor.email, action="entity.create", object_type="entity",
                 object_id=entity.id, details=_snapshot(entity))
    return entity


def update_entity(session: Session, actor: StaffAccount, entity_id: int, data: EntityInput) -> Entity:
    """A CA operator corrects an entity; the audit row keeps each changed field before and after."""
    require(actor, Action.MANAGE_ACCOUNTS)
    entity = session.get(Entity, entity_id)
    if entity is None:
        raise NotFound("Entité introuvable.")
    clean = check_entity_input(session, data, entity_id=entity_id)
    before = _snapshot(entity)
    entity.name, entity.kind, entity.siren, entity.siret = clean.name, clean.kind, clean.siren, clean.siret
    entity.departement, entity.parent_id, entity.status = clean.departement, clean.parent_id, clean.status
    session.flush()
    after = _snapshot(entity)
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    audit.record(session, actor=actor.email, action="entity.update", object_type="entity",
                 object_id=entity.id, details=changes)
    return entity


def _snapshot(entity: Entity) -> dict[str, Any]:
    return {"name": entity.name, "kind": str(entity.kind), "siren": entity.siren, "siret": entity.siret,
            "departement": entity.departement, "parent_id": entity.parent_id, "status": str(entity.status)}


def get_entity(session: Session, actor: StaffAccount, entity_id: int) -> Entity:
    """An entity the actor may see (404 otherwise)."""
    return require_entity(session, actor, entity_id, Action.VIEW_ORDERS)


def entity_list_query(actor: StaffAccount, *, kind: str | None = None, departement: str | None = None,
                      text: str | None = None) -> Select[Any]:
    """The actor's entities, filtered, by name."""
    require(actor, Action.VIEW_ORDERS)
    stmt = visible_entities(actor)
    if kind in set(EntityKind):
        stmt = stmt.where(Entity.kind == kind)
    if departement:
        stmt = stmt.where(Entity.departement == clean_text(departement).upper())
    words = clean_text(text)
    if words:
        stmt = stmt.where(or_(Entity.name.ilike(like_pattern(words), escape="\\"),
                              Entity.siren.startswith(_digits(words) or words, autoescape=True)))
    return stmt.options(selectinload(Entity.convention)).order_by(Entity.name, Entity.id)


def member_entities(session: Session, actor: StaffAccount, entity: Entity) -> list[Entity]:
    """The entities attached to this one that the actor may see."""
    return list(session.scalars(visible_entities(actor).where(Entity.parent_id == entity.id).order_by(Entity.name)))


def entity_choices(session: Session, actor: StaffAccount) -> list[tuple[int, str]]:
    """(id, name) of the actor's entities, for a filter."""
    return [(e.id, e.name) for e in session.scalars(visible_entities(actor).order_by(Entity.name))]


def parent_choices(session: Session) -> list[Entity]:
    """Entities that can be a parent (EPCI and communes), for the operator's form."""
    return list(session.scalars(select(Entity).where(Entity.kind.in_([K.EPCI, K.COMMUNE]))
                                .order_by(Entity.kind.desc(), Entity.name)))


# --- convention d'adhésion -----------------------------------------------------------------

def has_approved_convention(entity: Entity) -> bool:
    return entity.convention is not None and entity.convention.status == ConventionStatus.APPROVED


def convention_problem(entity: Entity, territory: tuple[str, ...]) -> str | None:
    """Why this entity may not submit a convention now, or None."""
    if entity.departement not in territory:
        return ("Seules les entités des départements " + ", ".join(territory)
                + " peuvent signer une convention d'adhésion.")
    if entity.status != EntityStatus.ACTIVE:
        return "Cette entité est fermée : elle ne peut plus signer de convention."
    if has_approved_convention(entity):
        return "La convention d'adhésion de cette entité est déjà approuvée : elle ne peut pas être remplacée."
    return None


def submit_convention(
    session: Session, actor: StaffAccount, entity_id: int, *, vault: DocumentVault,
    territory: tuple[str, ...], data: bytes, filename: str | None, signed_on: date | None,
    today: date | None = None,
) -> Convention:
    """The signed convention and its date, for an entity in scope; waits for a CA operator."""
    entity = require_entity(session, actor, entity_id, Action.EDIT_ORDERS)
    problem = convention_problem(entity, territory)
    if problem and has_approved_convention(entity):
        raise IllegalTransition(problem)
    if problem:
        raise InvalidInput(problem)
    today = today or date.today()
    if signed_on is None:
        raise FieldErrors({"signed_on": "La date de signature est obligatoire."})
    if signed_on > today:
        raise FieldErrors({"signed_on": f"La date de signature ({fr_date(signed_on)}) est dans le futur."})
    with stored_upload(session, vault, actor, data, filename) as document:
        convention = entity.convention
        replaced = convention.document_id if convention else None
        if convention is None:
            convention = Convention(entity_id=entity.id, signed_on=signed_on, document_id=document.id)
            convention.entity = entity
            session.add(convention)
        convention.signed_on, convention.document_id = signed_on, document.id
        convention.status, convention.submitted_by_id = ConventionStatus.PENDING, actor.id
        convention.decided_by_id = convention.decided_at = convention.decision_note = None
        session.flush()
        audit.record(session, actor=actor.email, action="convention.submit", object_type="convention",
                     object_id=convention.id, details={"entity_id": entity.id, "signed_on": signed_on,
                                                       "document_id": document.id, "replaces": replaced})
    return convention


def _pending_convention(session: Session, actor: StaffAccount, entity_id: int, verb: str) -> Convention:
    entity = require_entity(session, actor, entity_id, Action.APPROVE_DESIGNATIONS)
    convention = entity.convention
    if convention is None:
        raise NotFound("Aucune convention d'adhésion n'a été déposée pour cette entité.")
    if convention.status != ConventionStatus.PENDING:
        raise IllegalTransition(f"Une convention à l'état « {label(STATE_LABELS, convention.status)} » "
                                f"ne peut pas être {verb}.")
    return convention


def approve_convention(session: Session, actor: StaffAccount, entity_id: int) -> Convention:
    """A CA operator approves a pending convention: the entity may now order."""
    convention = _pending_convention(session, actor, entity_id, "approuvée")
    _decide(session, actor, convention, ConventionStatus.APPROVED, None)
    return convention


def reject_convention(session: Session, actor: StaffAccount, entity_id: int, note: str | None) -> Convention:
    """A CA operator rejects a pending convention, saying why; a new one may be submitted."""
    convention = _pending_convention(session, actor, entity_id, "refusée")
    _decide(session, actor, convention, ConventionStatus.REJECTED,
            required_reason(note, field="note", what="Le motif du refus"))
    return convention


def _decide(session: Session, actor: StaffAccount, convention: Convention, status: ConventionStatus,
            note: str | None) -> None:
    convention.status, convention.decision_note = status, note
    convention.decided_by_id, convention.decided_at = actor.id, utcnow()
    verb = "approve" if status == ConventionStatus.APPROVED else "reject"
    audit.record(session, actor=actor.email, action=f"convention.{verb}", object_type="convention",
                 object_id=convention.id, details={"entity_id": convention.entity_id, "note": note})


def read_convention_document(session: Session, actor: StaffAccount, vault: DocumentVault,
                             entity_id: int) -> tuple[Document, bytes]:
    """The convention's file for someone who may see the entity; the read is audited."""
    entity = require_entity(session, actor, entity_id, Action.VIEW_ORDERS)
    if entity.convention is None:
        raise NotFound("Aucune convention d'adhésion n'a été déposée pour cette entité.")
    document = session.get(Document, entity.convention.document_id)
    if document is None:
        raise NotFound("Document introuvable.")
    data = read_document(session, vault, actor, document,
                         details={"entity_id": entity.id, "kind": "convention"})
    return document, data

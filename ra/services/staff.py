"""Staff administration by the CA operators: accounts, training dates, designations, activation.

An MC or AED may also upload its own designation (signed by its legal representative); only an
operator approves it. Every write records one audit row in the caller's transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, selectinload

from ra import audit
from ra.services.inputs import like_pattern
from ra.db import utcnow
from ra.documents.vault import DocumentVault
from ra.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from ra.models import DesignationStatus, Document, Entity, EntityKind, Role, StaffAccount
from ra.permissions import Action, require, visible_entities
from ra.services.accounts import NewAccount, create_account, hash_password
from ra.services.files import read_document, stored_upload

# No 0/O, 1/l/I: the temporary password is read from a screen and typed or dictated.
_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def temporary_password(groups: int = 4, size: int = 5) -> str:
    """About 117 bits, as ``xxxxx-xxxxx-xxxxx-xxxxx``."""
    return "-".join("".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(size)) for _ in range(groups))


@dataclass(frozen=True)
class StaffFilters:
    role: str = ""
    designation: str = ""
    text: str = ""
    active: str = ""  # "", "1" (active) or "0" (deactivated)


def staff_query(actor: StaffAccount, filters: StaffFilters) -> Select[Any]:
    """The accounts matching the filters, by name (the caller paginates)."""
    require(actor, Action.MANAGE_ACCOUNTS)
    stmt = (select(StaffAccount).order_by(StaffAccount.full_name, StaffAccount.id)
            .options(selectinload(StaffAccount.entity), selectinload(StaffAccount.scope_epci),
                     selectinload(StaffAccount.scope_entities)))
    if filters.role in set(Role):
        stmt = stmt.where(StaffAccount.role == filters.role)
    if filters.designation in set(DesignationStatus):
        stmt = stmt.where(StaffAccount.designation_status == filters.designation)
    if filters.active in ("0", "1"):
        stmt = stmt.where(StaffAccount.active == (filters.active == "1"))
    text = filters.text.strip().lower()[:100]
    if text:
        stmt = stmt.where(or_(StaffAccount.email.contains(text, autoescape=True),
                              StaffAccount.full_name.ilike(like_pattern(text), escape="\\")))
    return stmt


def get_account(session: Session, actor: StaffAccount, account_id: int) -> StaffAccount:
    require(actor, Action.MANAGE_ACCOUNTS)
    account = session.get(StaffAccount, account_id)
    if account is None:
        raise NotFound("Compte introuvable.")
    return account


def entity_choices(session: Session, actor: StaffAccount, *, kind: EntityKind | None = None) -> list[Entity]:
    """Entities an operator may attach an MC or AED to, by name."""
    stmt = visible_entities(actor).order_by(Entity.name, Entity.id)
    if kind is not None:
        stmt = stmt.where(Entity.kind == kind)
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class StaffRequest:
    """What the creation form asks; the fields another role has no use for are ignored."""

    email: str
    full_name: str
    role: str
    entity_id: int | None = None  # MC
    epci_id: int | None = None  # AED
    scope_entity_ids: tuple[int, ...] = ()  # AED
    training_date: date | None = None


def create_staff_account(session: Session, actor: StaffAccount, request: StaffRequest) -> tuple[StaffAccount, str]:
    """A new account with a temporary password, returned once in clear; TOTP enrolled at first login."""
    require(actor, Action.MANAGE_ACCOUNTS)
    if request.role not in set(Role):
        raise InvalidInput("Rôle inconnu.")
    role = Role(request.role)
    full_name = request.full_name.strip()
    if not 0 < len(full_name) <= 200:
        raise InvalidInput("Indiquez le nom complet (200 caractères au plus).")
    _check_training_date(request.training_date)
    entity_id = epci_id = None
    scope: tuple[int, ...] = ()
    if role == Role.MC:
        entity_id = _existing_entity(session, request.entity_id).id if request.entity_id else None
    elif role == Role.AED:
        if request.epci_id is not None:
            epci = _existing_entity(session, request.epci_id)
            if epci.kind != EntityKind.EPCI:
                raise InvalidInput(f"{epci.name} n'est pas un EPCI.")
            epci_id = epci.id
        scope = tuple(sorted({_existing_entity(session, i).id for i in request.scope_entity_ids}))
    password = temporary_password()
    account = create_account(session, NewAccount(
        email=request.email, full_name=full_name, role=role, password=password, entity_id=entity_id,
        scope_epci_id=epci_id, scope_entity_ids=scope,
        training_date=request.training_date if role in (Role.MC, Role.AED) else None,
    ), actor=actor.email)
    return account, password


def _existing_entity(session: Session, entity_id: int | None) -> Entity:
    entity = session.get(Entity, entity_id) if entity_id is not None else None
    if entity is None:
        raise InvalidInput("Entité inconnue.")
    return entity


def _check_training_date(day: date | None) -> None:
    if day is not None and day > date.today():
        raise InvalidInput("La date de formation ne peut pas être dans le futur.")


def _officer(account: StaffAccount) -> None:
    if not account.is_officer:
        raise InvalidInput("Seuls les mandataires de certification et les AED ont une formation et une désignation.")


def set_training_date(session: Session, actor: StaffAccount, account_id: int, day: date | None) -> StaffAccount:
    account = get_account(session, actor, account_id)
    _officer(account)
    _check_training_date(day)
    previous = account.training_date
    account.training_date = day
    audit.record(session, actor=actor.email, action="account.training_date", object_type="staff_account",
                 object_id=account.id, details={"from": previous, "to": day})
    return account


def upload_designation(session: Session, actor: StaffAccount, account: StaffAccount, data: bytes,
                       declared_name: str, vault: DocumentVault) -> Document:
    """Store a designation (PDF/JPEG/PNG, checked by content) and put it to the operators' decision.

    The account's own holder may upload it; anyone else needs the right to manage accounts.
    """
    if actor.id != account.id:
        require(actor, Action.MANAGE_ACCOUNTS)
    elif not actor.active:
        raise Forbidden("Ce compte est désactivé.")
    _officer(account)
    # The content is checked before anything is written; the file goes again if this block fails.
    with stored_upload(session, vault, actor, data, declared_name) as document:
        account.designation_document_id = document.id
        account.designation_status = DesignationStatus.PENDING
        account.designation_decided_by_id = None
        account.designation_decided_at = None
        audit.record(session, actor=actor.email, action="account.designation_upload", object_type="staff_account",
                     object_id=account.id, details={"document_id": document.id, "sha256": document.sha256,
                                                    "media_type": document.media_type, "size": document.size})
    return document


def decide_designation(session: Session, actor: StaffAccount, account_id: int, *, approve: bool,
                       note: str = "") -> StaffAccount:
    """Approve or reject a pending designation (CA operators only)."""
    require(actor, Action.APPROVE_DESIGNATIONS)
    account = get_account(session, actor, account_id)
    if account.designation_status != DesignationStatus.PENDING or account.designation_document_id is None:
        raise IllegalTransition("Aucune désignation de ce compte n'attend de décision.")
    if account.id == actor.id:
        raise Forbidden("Vous ne pouvez pas décider de votre propre désignation.")
    account.designation_status = DesignationStatus.APPROVED if approve else DesignationStatus.REJECTED
    account.designation_decided_by_id = actor.id
    account.designation_decided_at = utcnow()
    audit.record(session, actor=actor.email, action="account.designation_" + ("approve" if approve else "reject"),
                 object_type="staff_account", object_id=account.id,
                 details={"document_id": account.designation_document_id, "note": note.strip()[:500]})
    return account


def set_active(session: Session, actor: StaffAccount, account_id: int, *, active: bool) -> StaffAccount:
    """Deactivate (no login, no API token works) or reactivate an account."""
    account = get_account(session, actor, account_id)
    if account.id == actor.id and not active:
        raise InvalidInput("Vous ne pouvez pas désactiver votre propre compte.")
    if account.active == active:
        raise IllegalTransition("Ce compte est déjà " + ("actif." if active else "désactivé."))
    account.active = active
    audit.record(session, actor=actor.email, action="account." + ("reactivate" if active else "deactivate"),
                 object_type="staff_account", object_id=account.id)
    return account


def reset_access(session: Session, actor: StaffAccount, account_id: int) -> tuple[StaffAccount, str]:
    """Lost phone or forgotten password: a new temporary password, the second factor to re-enrol.

    Returns the password in clear, once; the person enrols a new TOTP seed at the next login.
    """
    account = get_account(session, actor, account_id)
    if account.id == actor.id:
        raise InvalidInput("Un autre opérateur doit réinitialiser votre propre accès.")
    password = temporary_password()
    account.password_hash = hash_password(password)
    account.totp_secret, account.totp_enabled, account.totp_last_step = None, False, None
    audit.record(session, actor=actor.email, action="account.reset_access", object_type="staff_account",
                 object_id=account.id)
    return account, password


def read_designation(session: Session, actor: StaffAccount, account_id: int, vault: DocumentVault) -> tuple[Document, bytes]:
    """The designation document in clear, for an operator's review; the read is audited."""
    account = get_account(session, actor, account_id)
    document = session.get(Document, account.designation_document_id) if account.designation_document_id else None
    if document is None:
        raise NotFound("Aucun document de désignation pour ce compte.")
    data = read_document(session, vault, actor, document, details={"purpose": "designation", "account_id": account.id})
    return document, data

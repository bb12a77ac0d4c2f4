"""Tokens as the back-office screens show them: scoped lists, a token's file, the events one may record.

MC and AED see the tokens of the entities in their scope; CA operators and auditors see every
token. A token outside the actor's scope does not exist for them (404).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from ra.services.inputs import like_pattern
from ra.db import utcnow
from ra.errors import Forbidden, InvalidInput, NotFound
from ra.models import Certificate, Entity, Holder, Role, StaffAccount, TokenEvent, TokenState, UsbToken
from ra.permissions import Action, in_scope, require, visible_entity_ids
from ra.services.tokens import TRANSITIONS, change_token_state, find_token, require_token_events, token_certificates

# The events a person records from the screens (initialised and active belong to the station).
SCREEN_EVENTS: tuple[TokenState, ...] = (TokenState.BLOCKED, TokenState.LOST, TokenState.RETIRED)
MAX_TEXT = 100


@dataclass(frozen=True)
class TokenFilters:
    state: TokenState | None = None
    entity_id: int | None = None
    text: str = ""

    @classmethod
    def parse(cls, state: str | None, entity: str | None, text: str | None) -> TokenFilters:
        """Read the list's query parameters; a value that does not parse is a clear error."""
        try:
            parsed_state = TokenState(state) if state else None
        except ValueError:
            raise InvalidInput("État de support inconnu.") from None
        try:
            entity_id = int(entity) if entity else None
        except ValueError:
            raise InvalidInput("Entité invalide.") from None
        text = (text or "").strip()
        if len(text) > MAX_TEXT:
            raise InvalidInput(f"La recherche compte {MAX_TEXT} caractères au plus.")
        return cls(parsed_state, entity_id, text)


def _scoped(actor: StaffAccount, stmt: Select) -> Select:  # type: ignore[type-arg]
    if actor.role in (Role.OPERATOR, Role.AUDITOR):
        return stmt
    return stmt.where(UsbToken.entity_id.in_(visible_entity_ids(actor)))


def list_tokens(actor: StaffAccount, filters: TokenFilters) -> Select:  # type: ignore[type-arg]
    """``select(UsbToken)`` of the actor's scope, filtered, newest first."""
    require(actor, Action.VIEW_ORDERS)
    stmt = _scoped(actor, select(UsbToken).outerjoin(Holder, UsbToken.holder_id == Holder.id))
    if filters.state is not None:
        stmt = stmt.where(UsbToken.state == filters.state)
    if filters.entity_id is not None:
        stmt = stmt.where(UsbToken.entity_id == filters.entity_id)
    if filters.text:
        pattern = like_pattern(filters.text)
        stmt = stmt.where(or_(*(column.ilike(pattern, escape="\\") for column in (
            UsbToken.serial, Holder.surname, Holder.given_names, Holder.email))))
    return stmt.order_by(UsbToken.created_at.desc(), UsbToken.id.desc())


def token_entities(session: Session, actor: StaffAccount) -> list[Entity]:
    """Entities of the scope that have at least one token (the list's entity filter)."""
    stmt = select(Entity).where(Entity.id.in_(select(UsbToken.entity_id).where(UsbToken.entity_id.is_not(None))))
    if actor.role not in (Role.OPERATOR, Role.AUDITOR):
        stmt = stmt.where(Entity.id.in_(visible_entity_ids(actor)))
    return list(session.scalars(stmt.order_by(Entity.name)))


@dataclass(frozen=True)
class TokenRow:
    token: UsbToken
    holder: Holder | None
    entity: Entity | None


def rows_for(session: Session, tokens: Sequence[UsbToken]) -> list[TokenRow]:
    """Holder and entity of each token of a page, in two queries."""
    holders = {h.id: h for h in session.scalars(
        select(Holder).where(Holder.id.in_({t.holder_id for t in tokens if t.holder_id})))}
    entities = {e.id: e for e in session.scalars(
        select(Entity).where(Entity.id.in_({t.entity_id for t in tokens if t.entity_id})))}
    return [TokenRow(t, holders.get(t.holder_id or 0), entities.get(t.entity_id or 0)) for t in tokens]


def visible_token(session: Session, actor: StaffAccount, serial: str) -> UsbToken:
    """The token if the actor may see it; out of scope it is not found."""
    require(actor, Action.VIEW_ORDERS)
    token = find_token(session, serial)
    if actor.role in (Role.OPERATOR, Role.AUDITOR):
        return token
    if token.entity_id is None or not in_scope(session, actor, token.entity_id):
        raise NotFound("Support introuvable.")
    return token


def may_record_events(session: Session, actor: StaffAccount, token: UsbToken) -> bool:
    """Whether the token screen offers its event buttons (``change_token_state``'s own rule)."""
    try:
        require_token_events(session, actor, token)
    except (Forbidden, NotFound):
        return False
    return True


@dataclass(frozen=True)
class CertificateLine:
    certificate: Certificate
    status: str


@dataclass(frozen=True)
class TokenFile:
    token: UsbToken
    holder: Holder | None
    entity: Entity | None
    certificates: list[CertificateLine]
    history: list[TokenEvent]
    actions: list[TokenState]  # the events this actor may record now

    @property
    def valid_certificates(self) -> list[Certificate]:
        return [line.certificate for line in self.certificates if line.status == "valid"]


def token_file(session: Session, actor: StaffAccount, serial: str, *, now: datetime | None = None) -> TokenFile:
    """Everything the token's page shows, scope-checked."""
    token = visible_token(session, actor, serial)
    now = now or utcnow()
    [row] = rows_for(session, [token])
    certificates = [CertificateLine(c, c.status(now)) for c in token_certificates(session, token)]
    history = list(session.scalars(select(TokenEvent).where(TokenEvent.token_id == token.id)
                                   .order_by(TokenEvent.at.desc(), TokenEvent.id.desc())))
    actions = ([s for s in SCREEN_EVENTS if s in TRANSITIONS[TokenState(token.state)]]
               if may_record_events(session, actor, token) else [])
    return TokenFile(token, row.holder, row.entity, certificates, history, actions)


def record_screen_event(session: Session, actor: StaffAccount, serial: str, to: str, *,
                        note: str | None, confirmed: bool) -> list[str]:
    """Record blocked / lost / retired from the screens; the serials revoked by a loss."""
    try:
        target = TokenState(to)
    except ValueError:
        target = None
    if target not in SCREEN_EVENTS:
        raise InvalidInput("Action inconnue sur un support.")
    token = visible_token(session, actor, serial)
    if target == TokenState.LOST and not confirmed:
        raise InvalidInput("Cochez la case de confirmation : déclarer la perte révoque aussitôt les certificats.")
    before = [c.serial for c in token_certificates(session, token) if c.revoked_at is None]
    change_token_state(session, actor, serial, target, note=(note or "").strip() or None)
    return before if target == TokenState.LOST else []

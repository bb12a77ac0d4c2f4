"""Reading the audit log (CA operators and auditors) and verifying its chain.

Nothing here writes, except the one row that records who verified the chain and what the
verification found (``audit.verify``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ra import audit
from ra.audit import ChainReport
from ra.errors import InvalidInput, NotFound
from ra.models import AuditEvent, StaffAccount
from ra.permissions import Action, require
from ra.services.inputs import like_pattern

MAX_TEXT = 200


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None  # part of the actor
    action: str | None = None  # start of the action, e.g. "order." or "certificate.revoke"
    object_type: str | None = None
    object_id: str | None = None
    date_from: date | None = None  # inclusive, UTC
    date_to: date | None = None  # inclusive, UTC

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> AuditFilter:
        """Filters from query parameters; a French InvalidInput for a wrong date."""
        def text(name: str) -> str | None:
            return (args.get(name) or "").strip()[:MAX_TEXT] or None

        found = cls(text("actor"), text("action"), text("object_type"), text("object_id"),
                    _date(args.get("from"), "de début"), _date(args.get("to"), "de fin"))
        if found.date_from and found.date_to and found.date_from > found.date_to:
            raise InvalidInput("La date de début est postérieure à la date de fin.")
        return found


def _date(value: str | None, which: str) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"La date {which} n'est pas une date valide (AAAA-MM-JJ).") from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def list_events(actor: StaffAccount, filters: AuditFilter) -> Select[tuple[AuditEvent]]:
    """Events matching the filters, newest first."""
    require(actor, Action.READ_AUDIT)
    stmt = select(AuditEvent)
    if filters.actor:
        stmt = stmt.where(AuditEvent.actor.ilike(like_pattern(filters.actor), escape="\\"))
    if filters.action:
        stmt = stmt.where(AuditEvent.action.startswith(filters.action, autoescape=True))
    if filters.object_type:
        stmt = stmt.where(AuditEvent.object_type == filters.object_type)
    if filters.object_id:
        stmt = stmt.where(AuditEvent.object_id == filters.object_id)
    if filters.date_from:
        stmt = stmt.where(AuditEvent.at >= _midnight(filters.date_from))
    if filters.date_to:
        stmt = stmt.where(AuditEvent.at < _midnight(filters.date_to + timedelta(days=1)))
    return stmt.order_by(AuditEvent.seq.desc())


def get_event(session: Session, actor: StaffAccount, seq: int) -> AuditEvent:
    require(actor, Action.READ_AUDIT)
    event = session.get(AuditEvent, seq)
    if event is None:
        raise NotFound("Événement introuvable.")
    return event


def pretty_details(event: AuditEvent) -> str:
    """The details JSON indented for reading (as stored if it is not JSON any more)."""
    try:
        return json.dumps(json.loads(event.details), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return event.details


@dataclass(frozen=True)
class ChainCheck:
    report: ChainReport
    explanation: str | None  # French, when broken


def _explain(report: ChainReport) -> str | None:
    if report.ok or report.reason is None:
        return None
    if report.reason.startswith("row "):
        return "une ou plusieurs lignes manquent juste avant cette ligne (lignes supprimées)"
    if report.reason.startswith("previous-hash"):
        return ("son lien vers la ligne précédente ne correspond pas "
                "(ligne précédente remplacée, supprimée ou lignes réordonnées)")
    if report.reason.startswith("content"):
        return "son contenu ne correspond plus à son empreinte (ligne modifiée après coup)"
    return report.reason


def verify_chain(session: Session, actor: StaffAccount) -> ChainCheck:
    """Recompute the chain, then record that this actor verified it (the caller commits)."""
    require(actor, Action.READ_AUDIT)
    report = audit.verify(session)
    audit.record(session, actor=actor.email, action="audit.verify", object_type="audit_chain",
                 object_id="audit_events",
                 details={"rows": report.rows, "intact": report.ok, "first_broken_seq": report.first_broken_seq})
    return ChainCheck(report, _explain(report))

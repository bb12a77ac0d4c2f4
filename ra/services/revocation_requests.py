"""Revocation requests: asked by an MC/AED (entities in scope) or a CA operator, processed by
a CA operator. Approving revokes the certificate in the same transaction; a revocation is
never undone, and nothing here can make a revoked certificate valid again.

The schema has no column for a rejection note: it is kept in the audit row of the rejection
(``revocation_request.reject``), which :func:`rejection_notes` reads back for display.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from ca.crl import Reason
from ra import audit
from ra.authority import CertificationAuthority
from ra.config import ISSUING_SLUG, Settings
from ra.db import utcnow
from ra.errors import IllegalTransition, InvalidInput, NotFound
from ra.labels import N_
from ra.models import (
    CRL, Authority, AuditEvent, Certificate, RevocationRequest, RevocationRequestStatus, StaffAccount,
)
from ra.permissions import Action, require
from ra.services.certificates import certificate_scope, get_certificate
from ra.services.crl import publish_crl
from ra.services.revocation import parse_reason, revoke_certificate

MAX_COMMENT = 500


@dataclass(frozen=True)
class ReasonChoice:
    key: str  # what forms and the API send
    rfc_name: str  # the RFC 5280 reason it is recorded as
    label: str


REASON_CHOICES: tuple[ReasonChoice, ...] = (
    ReasonChoice("keyCompromise", "keyCompromise", "Compromission de la clé"),
    ReasonChoice("tokenLost", "keyCompromise", "Perte ou vol du support"),
    ReasonChoice("affiliationChanged", "affiliationChanged", "Changement d'affiliation (le porteur quitte l'entité)"),
    ReasonChoice("superseded", "superseded", "Remplacé"),
    ReasonChoice("cessationOfOperation", "cessationOfOperation", "Cessation d'activité"),
    ReasonChoice("privilegeWithdrawn", "privilegeWithdrawn", "Privilège retiré"),
)
CHOICES_BY_KEY = {c.key: c for c in REASON_CHOICES}
REASON_LABELS: dict[int, str] = {  # marked for the catalogue: the screens translate them
    int(Reason.unspecified): N_("Non précisée"),
    int(Reason.key_compromise): N_("Compromission de la clé"),
    int(Reason.ca_compromise): N_("Compromission de l'AC"),
    int(Reason.affiliation_changed): N_("Changement d'affiliation"),
    int(Reason.superseded): N_("Remplacé"),
    int(Reason.cessation_of_operation): N_("Cessation d'activité"),
    int(Reason.privilege_withdrawn): N_("Privilège retiré"),
    int(Reason.aa_compromise): N_("Compromission de l'autorité d'attributs"),
}


def reason_label(code: int | None) -> str:
    return REASON_LABELS.get(code, str(code)) if code is not None else ""


def rfc_name(code: int) -> str:
    """The RFC 5280 spelling of a reason code (``keyCompromise``)."""
    first, *rest = Reason(code).name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def reason_for(key: str, allowed: tuple[str, ...] | None = None) -> Reason:
    """The RFC 5280 reason behind a choice offered by the forms (French error otherwise)."""
    choice = CHOICES_BY_KEY.get((key or "").strip())
    if choice is None or (allowed is not None and choice.key not in allowed):
        raise InvalidInput("Motif de révocation inconnu : choisissez un motif de la liste.")
    return parse_reason(choice.rfc_name)


def check_revocable(cert: Certificate, now: datetime) -> None:
    if cert.revoked_at is not None:
        raise IllegalTransition("Ce certificat est déjà révoqué : une révocation est définitive.")
    if cert.not_after <= now:
        raise IllegalTransition("Ce certificat a expiré : il n'y a plus rien à révoquer.")


def lock_certificate(session: Session, certificate_id: int) -> Certificate:
    """The certificate row, re-read under its row lock: two revocations cannot both pass the checks."""
    cert = session.scalar(select(Certificate).where(Certificate.id == certificate_id).with_for_update()
                          .execution_options(populate_existing=True))
    if cert is None:
        raise NotFound("Certificat introuvable.")
    return cert


def _clean_comment(comment: str | None) -> str | None:
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(f"Le commentaire dépasse {MAX_COMMENT} caractères.")
    return comment or None


def pending_request_for(session: Session, cert: Certificate) -> RevocationRequest | None:
    return session.scalar(select(RevocationRequest).where(RevocationRequest.certificate_id == cert.id)
                          .where(RevocationRequest.status == RevocationRequestStatus.PENDING))


def request_revocation(
    session: Session, actor: StaffAccount, serial: str, *, reason_key: str, comment: str | None = None,
    revoke_now: bool = False, now: datetime | None = None,
) -> RevocationRequest:
    """A pending request (or, for a CA operator with ``revoke_now``, a processed one)."""
    now = now or utcnow()
    cert = get_certificate(session, actor, serial)  # 404 out of scope
    require(actor, Action.REQUEST_REVOCATION)
    if revoke_now:
        require(actor, Action.PROCESS_REVOCATIONS)
    reason = reason_for(reason_key)
    comment = _clean_comment(comment)
    cert = lock_certificate(session, cert.id)
    check_revocable(cert, now)
    pending = pending_request_for(session, cert)
    if pending is not None:
        raise IllegalTransition(f"Une demande de révocation est déjà en attente pour ce certificat (n° {pending.id}).")
    request = RevocationRequest(certificate_id=cert.id, reason=int(reason), requested_by_id=actor.id,
                                requested_by_holder=False, comment=comment,
                                status=RevocationRequestStatus.PENDING, created_at=now)
    session.add(request)
    session.flush()
    audit.record(session, actor=actor.email, action="revocation_request.create",
                 object_type="revocation_request", object_id=request.id,
                 details={"certificate": cert.serial, "reason": reason.name, "choice": reason_key,
                          "revoke_now": revoke_now})
    if revoke_now:
        _approve(session, actor, request, cert, now)
    return request


def _approve(session: Session, actor: StaffAccount, request: RevocationRequest, cert: Certificate,
             now: datetime) -> None:
    revoke_certificate(session, cert, reason=Reason(request.reason), actor=actor.email, now=now)
    request.status = RevocationRequestStatus.PROCESSED
    request.processed_by_id = actor.id
    request.processed_at = now
    audit.record(session, actor=actor.email, action="revocation_request.approve",
                 object_type="revocation_request", object_id=request.id,
                 details={"certificate": cert.serial, "reason": Reason(request.reason).name})


def _pending_request(session: Session, actor: StaffAccount, request_id: int) -> RevocationRequest:
    require(actor, Action.PROCESS_REVOCATIONS)
    request = session.scalar(select(RevocationRequest).where(RevocationRequest.id == request_id)
                             .with_for_update().execution_options(populate_existing=True))
    if request is None:
        raise NotFound("Demande de révocation introuvable.")
    if request.status != RevocationRequestStatus.PENDING:
        raise IllegalTransition("Cette demande a déjà été traitée.")
    return request


def approve_request(session: Session, actor: StaffAccount, request_id: int, *,
                    now: datetime | None = None) -> RevocationRequest:
    """Revoke the certificate and mark the request processed, in the caller's transaction."""
    now = now or utcnow()
    request = _pending_request(session, actor, request_id)
    cert = lock_certificate(session, request.certificate_id)
    if cert.revoked_at is not None:
        raise IllegalTransition("Ce certificat est déjà révoqué : refusez cette demande devenue sans objet.")
    _approve(session, actor, request, cert, now)
    return request


def reject_request(session: Session, actor: StaffAccount, request_id: int, note: str, *,
                   now: datetime | None = None) -> RevocationRequest:
    """Close the request without revoking; the note is kept in the audit row."""
    now = now or utcnow()
    request = _pending_request(session, actor, request_id)
    note = (note or "").strip()
    if not note:
        raise InvalidInput("Indiquez pourquoi la demande est refusée.")
    if len(note) > MAX_COMMENT:
        raise InvalidInput(f"La note dépasse {MAX_COMMENT} caractères.")
    request.status = RevocationRequestStatus.REJECTED
    request.processed_by_id = actor.id
    request.processed_at = now
    cert = session.get(Certificate, request.certificate_id)
    audit.record(session, actor=actor.email, action="revocation_request.reject",
                 object_type="revocation_request", object_id=request.id,
                 details={"certificate": cert.serial if cert else None, "note": note})
    return request


def list_requests(actor: StaffAccount, status: str | None = None) -> Select[tuple[RevocationRequest]]:
    """Requests on certificates the actor may see, pending first then newest."""
    require(actor, Action.VIEW_ORDERS)
    stmt = select(RevocationRequest)
    scope = certificate_scope(actor)
    if scope is not None:
        stmt = stmt.where(RevocationRequest.certificate_id.in_(select(Certificate.id).where(scope)))
    if status:
        if status not in set(RevocationRequestStatus):
            raise InvalidInput("Statut de demande inconnu.")
        stmt = stmt.where(RevocationRequest.status == status)
    return stmt.order_by(RevocationRequest.created_at.desc(), RevocationRequest.id.desc())


def certificates_of(session: Session, requests: list[RevocationRequest]) -> dict[int, Certificate]:
    ids = {r.certificate_id for r in requests}
    return {c.id: c for c in session.scalars(select(Certificate).where(Certificate.id.in_(ids)))} if ids else {}


def staff_names(session: Session, requests: list[RevocationRequest]) -> dict[int, str]:
    ids = {i for r in requests for i in (r.requested_by_id, r.processed_by_id) if i is not None}
    if not ids:
        return {}
    rows = session.execute(select(StaffAccount.id, StaffAccount.full_name).where(StaffAccount.id.in_(ids)))
    return {account_id: name for account_id, name in rows}


def rejection_notes(session: Session, requests: list[RevocationRequest]) -> dict[int, str]:
    """Request id → the note given when it was rejected (from the audit log)."""
    ids = [str(r.id) for r in requests if r.status == RevocationRequestStatus.REJECTED]
    if not ids:
        return {}
    rows = session.execute(select(AuditEvent.object_id, AuditEvent.details)
                           .where(AuditEvent.action == "revocation_request.reject")
                           .where(AuditEvent.object_id.in_(ids))).all()
    notes: dict[int, str] = {}
    for object_id, details in rows:
        try:
            notes[int(object_id)] = str(json.loads(details).get("note", ""))
        except (ValueError, AttributeError):
            continue
    return notes


def requests_for_certificate(session: Session, cert: Certificate) -> list[RevocationRequest]:
    return list(session.scalars(select(RevocationRequest).where(RevocationRequest.certificate_id == cert.id)
                                .order_by(RevocationRequest.created_at.desc())))


def last_crl(session: Session) -> CRL | None:
    return session.scalar(select(CRL).join(Authority, Authority.id == CRL.authority_id)
                          .where(Authority.slug == ISSUING_SLUG).order_by(CRL.number.desc()).limit(1))


def publish_crl_now(factory: sessionmaker[Session], ca: CertificationAuthority, settings: Settings,
                    actor: StaffAccount) -> CRL:
    """Publish the issuing CA's CRL at once (its own transactions: commit the caller's first)."""
    require(actor, Action.PROCESS_REVOCATIONS)
    return publish_crl(factory, ca, ISSUING_SLUG, actor=actor.email,
                       publication_dir=settings.publication_dir,
                       next_update_hours=settings.crl_next_update_hours)
